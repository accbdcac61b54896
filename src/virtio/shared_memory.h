// SharedMemoryMapper: how a device puts files into its VIRTIO shared memory regions (virtio 1.2
// §2.10), which the VMM owns: the transport sends the request (vhost-user BACKEND_SHMEM_MAP and
// BACKEND_SHMEM_UNMAP) and reports whether the VMM did it.
//
//   Result<void> mapped = mapper.Map(ShmemMapping{.shmid = 1, .fd = fd, .shm_offset = offset,
//                                                 .length = size, .writable = true});
//   mapper.Unmap(1, offset, size);   // Exactly a range mapped earlier.
//
// Device thread only. A call may wait for the VMM's answer, bounded by the transport's timeout.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace vgpu::virtio {

struct ShmemMapping {
  uint8_t shmid = 0;
  int fd = -1;  // Borrowed: the transport sends a copy.
  uint64_t fd_offset = 0;
  uint64_t shm_offset = 0;
  uint64_t length = 0;
  bool writable = false;
};

class SharedMemoryMapper {
 public:
  virtual ~SharedMemoryMapper() = default;
  virtual Result<void> Map(const ShmemMapping& mapping) = 0;
  virtual Result<void> Unmap(uint8_t shmid, uint64_t shm_offset, uint64_t length) = 0;
};

}  // namespace vgpu::virtio
