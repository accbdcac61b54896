// Where a blob's bytes are in the fd virglrenderer exports for it (RESOURCE_MAP_BLOB), so that the
// VMM maps the right bytes: shared memory and dmabufs from their start; an opaque Vulkan memory
// fd only where its layout is known.
//
//   Result<MemoryFdLayout> layout = LayoutOfExportedFd(fd, VIRGL_RENDERER_BLOB_FD_TYPE_OPAQUE);
//   // Map layout->size bytes from layout->offset.
//
// An opaque fd (VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT) means something only to the driver
// that made it. Mesa's software drivers (lavapipe here) make one as a memfd that starts with a
// header, {u64 size; u64 offset; driver id}: the memory is at `offset` (a page in, for lavapipe's
// page alignment) and `size` is the whole file (seen on Debian 12's lavapipe: a 64 KiB allocation
// is a 69672-byte memfd with the memory at 4096, and the guest's bytes written at 0 landed a page
// before where lavapipe's copy read them). That layout is recognised (a first u64 equal to the
// file's size, a page-aligned offset inside it); any other opaque fd is refused, since the VMM
// would map the wrong bytes. NVIDIA's driver exports dmabufs, which need none of this.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace vgpu::renderer::virgl {

struct MemoryFdLayout {
  uint64_t offset = 0;  // Of the blob's first byte in the fd.
  uint64_t size = 0;    // Bytes there from `offset`.
};

// `fd_type`: VIRGL_RENDERER_BLOB_FD_TYPE_*. Reads the fd's size (and an opaque fd's header,
// moving its file offset).
Result<MemoryFdLayout> LayoutOfExportedFd(int fd, uint32_t fd_type);

}  // namespace vgpu::renderer::virgl
