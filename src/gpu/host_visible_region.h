// HostVisibleRegion: the device's host-visible shared memory region (shmid 1, §5.7.5) and the
// blobs mapped into it (RESOURCE_MAP_BLOB, §5.7.6.9). The VMM owns the region; a mapping is made
// and undone through the transport's SharedMemoryMapper (vhost-user BACKEND_SHMEM_MAP/UNMAP).
//
//   HostVisibleRegion region(size);
//   region.SetMapper(mapper);                              // When the transport has one.
//   Result<void> mapped = region.Map(offset, exported);    // The guest's offset, checked.
//   region.Unmap(offset);
//
// The guest picks the offset; it must be page-aligned, inside the region, and clear of every
// mapping there. Mappings are the VMM's: a device reset or a new mapper (a new connection)
// forgets them without unmapping, because the VMM dropped them already.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "base/result.h"
#include "renderer/renderer.h"
#include "virtio/shared_memory.h"

namespace vgpu::gpu {

class HostVisibleRegion {
 public:
  explicit HostVisibleRegion(uint64_t size) : size_(size) {}

  void SetMapper(std::shared_ptr<virtio::SharedMemoryMapper> mapper);
  bool can_map() const { return size_ != 0 && mapper_ != nullptr; }
  uint64_t size() const { return size_; }

  // Maps `blob` at `offset`. kInvalidArgument for a place the guest may not use; any other
  // failure is the VMM's (or no mapper).
  Result<void> Map(uint64_t offset, const renderer::ExportedBlob& blob);
  // Undoes the mapping at `offset` (made by Map).
  Result<void> Unmap(uint64_t offset);
  void Forget() { mappings_.clear(); }

  size_t mapping_count() const { return mappings_.size(); }

 private:
  const uint64_t size_;
  std::shared_ptr<virtio::SharedMemoryMapper> mapper_;
  std::map<uint64_t, uint64_t> mappings_;  // Offset -> length.
};

}  // namespace vgpu::gpu
