// Renderer: the one seam between the device model and a backend that holds resources. The
// software 2D renderer (software2d/), virglrenderer (virgl/) and gfxstream (gfxstream/) sit
// behind it; a device has the software one for 2D resources and at most one 3D one.
//
//   std::unique_ptr<Renderer> renderer = ...;                   // A backend's factory.
//   renderer->SetFenceHandler([&](const FenceSignal& fence) { ...answer held commands... });
//   loop.Watch(renderer->PollFd(), EPOLLIN, [&](uint32_t) { renderer->Poll(); });
//   renderer->CreateResource(ResourceParams{...});
//   renderer->AttachBacking(id, backing);                      // Guest pages, kept mapped.
//   renderer->TransferToHost(TransferParams{...});
//   renderer->ReadRect(id, rect, pixels, stride);              // For the display (UPDATE).
//   renderer->ExportScanout(id);                               // Or a dmabuf, where possible.
//
// Ids. A backend trusts the ids it is given: the device model's ResourceTable and ContextTable
// are the one place that knows which exist, and call in only for those (a resource created in
// this backend, a live context). A backend keeps per-resource state of its own (images, the
// iovec arrays its library points at), never a second table of which ids exist.
//
// Values. Everything else may come from the guest: formats, sizes, boxes, offsets, strides,
// capset ids, command streams. A backend checks what its library trusts (docs/SECURITY.md,
// "What each renderer library assumes of its caller") and fails the call instead.
//
// Threads. Every call comes from the device thread (GL contexts are bound to it), fence
// deliveries included.
#pragma once

#include <fcntl.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/checked_math.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "renderer/guest_backing.h"
#include "virtio_gpu/blob.h"
#include "virtio_gpu/formats.h"
#include "virtio_gpu/geometry.h"
#include "virtio_gpu/ids.h"

namespace vgpu::renderer {

using virtio_gpu::Box;
using virtio_gpu::ContextId;
using virtio_gpu::CursorImage;
using virtio_gpu::Rect;
using virtio_gpu::ResourceId;

struct CapsetInfo {
  uint32_t id = 0;
  uint32_t max_version = 0;
  uint32_t max_size = 0;
};

// A resource's shape: RESOURCE_CREATE_3D's fields (§5.7.6.9). RESOURCE_CREATE_2D is a 2D texture
// of one of the eight 2D formats (target kTargetTexture2d, depth and array_size 1).
struct ResourceParams {
  ResourceId id;
  uint32_t target = 0;
  uint32_t format = 0;
  uint32_t bind = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t depth = 0;
  uint32_t array_size = 0;
  uint32_t last_level = 0;
  uint32_t nr_samples = 0;
  uint32_t flags = 0;
};

inline constexpr uint32_t kTargetTexture2d = 2;  // PIPE_TEXTURE_2D

// Host bytes a resource is counted as against the memory cap: 4 per texel of every layer and
// slice, without overflow (nullopt when it would). Mip levels add at most a third; a 3D
// renderer's own memory cannot be seen, so this is the estimate.
inline std::optional<uint64_t> ResourceBytes(const ResourceParams& params) {
  std::optional<uint64_t> bytes = CheckedMul<uint64_t>(params.width, params.height);
  if (bytes) bytes = CheckedMul<uint64_t>(*bytes, std::max<uint32_t>(params.depth, 1));
  if (bytes) bytes = CheckedMul<uint64_t>(*bytes, std::max<uint32_t>(params.array_size, 1));
  if (bytes) bytes = CheckedMul<uint64_t>(*bytes, 4);
  return bytes;
}

// A transfer between a resource and its attached backing (TRANSFER_TO_HOST_2D/3D,
// TRANSFER_FROM_HOST_3D). TRANSFER_TO_HOST_2D has no stride: 0 means the resource's own row
// pitch, and no context (0).
struct TransferParams {
  ResourceId resource;
  ContextId context;
  uint32_t level = 0;
  uint32_t stride = 0;
  uint32_t layer_stride = 0;
  Box box{};
  uint64_t offset = 0;  // Into the backing.
};

struct ContextParams {
  ContextId id;
  uint32_t capset_id = 0;       // 0: the backend's default (CTX_CREATE without CONTEXT_INIT).
  std::string_view debug_name;  // Guest bytes, not NUL-terminated; at most 64.
};

// RESOURCE_CREATE_BLOB's fields (§5.7.6.8). blob_mem and the flags are the spec's values
// (VIRTIO_GPU_BLOB_MEM_*, VIRTIO_GPU_BLOB_FLAG_*), which virglrenderer and gfxstream share.
struct BlobParams {
  ResourceId id;
  ContextId context;  // 0 for a guest blob made outside any context.
  uint32_t blob_mem = 0;
  uint32_t blob_flags = 0;
  uint64_t blob_id = 0;
  uint64_t size = 0;
};

// A blob's memory as an fd the VMM can map into the guest's host-visible region
// (RESOURCE_MAP_BLOB): the blob's bytes start `offset` bytes into the fd, `size` of them are
// there, and the guest must map them with `map_info`'s caching.
struct ExportedBlob {
  UniqueFd fd;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t map_info = 0;  // VIRTIO_GPU_MAP_CACHE_* (§5.7.6.9).
  bool writable = true;
};

// A fence: ctx0's global timeline (per_context false: context and ring are only echoed), or one
// ring of a context (VIRTIO_GPU_FLAG_INFO_RING_IDX, §5.7.6.7).
struct FenceSignal {
  ContextId context;
  uint32_t ring_index = 0;
  uint64_t fence_id = 0;
  bool per_context = false;

  friend bool operator==(const FenceSignal&, const FenceSignal&) = default;
};

// DRM_FORMAT_MOD_INVALID (drm_fourcc.h): no explicit modifier; the importer assumes the
// driver's implicit layout, as QEMU does for DMABUF_SCANOUT (which carries none).
inline constexpr uint64_t kDrmFormatModInvalid = 0x00ffffffffffffffull;

// A resource's texture exported as a dmabuf for the display (vhost-user-gpu DMABUF_SCANOUT):
// one plane at offset 0, described the way VhostUserGpuDMABUFScanout describes it.
struct ScanoutExport {
  UniqueFd dmabuf;
  uint32_t width = 0;  // The buffer's size (fd_width, fd_height), not the scanout's.
  uint32_t height = 0;
  uint32_t stride = 0;  // Bytes per row.
  uint32_t fourcc = 0;  // DRM_FORMAT_*.
  uint64_t modifier = kDrmFormatModInvalid;
  bool y0_top = false;  // Row 0 of the buffer is the top row (else the display flips it).

  // The same buffer described the same way, through a second fd (for a second scanout).
  Result<ScanoutExport> Duplicate() const {
    UniqueFd copy = DuplicateFd(dmabuf.get());
    if (!copy) return MakeSystemError("dup(dmabuf)", errno);
    return ScanoutExport{.dmabuf = std::move(copy),
                         .width = width,
                         .height = height,
                         .stride = stride,
                         .fourcc = fourcc,
                         .modifier = modifier,
                         .y0_top = y0_top};
  }
};

// Rows of a resource already in the display's format (x8r8g8b8) in host memory: sent to the
// display from where they are, with no copy.
struct DisplayRows {
  const uint8_t* first_pixel = nullptr;  // The rectangle's top-left pixel.
  size_t stride = 0;                     // Bytes from one row to the next.
  // The rows' pages may be lent to the kernel (an UPDATE spliced, not copied, into the display
  // socket): they are a mapping of the resource's own, and MovePixelsToNewPages() keeps lent
  // pages unchanged when the pixels change afterwards.
  bool lendable = false;
};

class Renderer {
 public:
  virtual ~Renderer() = default;

  virtual const char* name() const = 0;

  // Resources (every backend).
  virtual Result<void> CreateResource(const ResourceParams& params) = 0;
  // Lets go of the backing first, then destroys the resource.
  virtual void DestroyResource(ResourceId resource) = 0;
  // The backing stays mapped until DetachBacking or DestroyResource (the device model's
  // BackingStore). A resource has at most one.
  virtual Result<void> AttachBacking(ResourceId resource, const GuestBacking& backing) = 0;
  virtual void DetachBacking(ResourceId resource) = 0;
  virtual Result<void> TransferToHost(const TransferParams& params) = 0;
  virtual Result<void> TransferFromHost(const TransferParams& params) = 0;

  // Display. Reads `rect` (inside the resource) as x8r8g8b8 rows, top row first, into
  // `destination`, rect row r at destination[r * stride].
  virtual Result<void> ReadRect(ResourceId resource, const Rect& rect,
                                std::span<uint8_t> destination, uint32_t stride) = 0;
  // The rectangle's rows where they already are in the display's format, or nullopt (then
  // ReadRect). Valid until ReleaseRows(), which comes before the next call into the renderer.
  virtual std::optional<DisplayRows> DirectRows(ResourceId resource, const Rect& rect) {
    (void)resource;
    (void)rect;
    return std::nullopt;
  }
  // The rows DirectRows gave are no longer used (a read-back's mapping can go).
  virtual void ReleaseRows() {}
  // Before the pixels of a resource whose rows were lent (DisplayRows::lendable) change while the
  // VMM may still be reading them: they move to new pages with the same content, the lent ones
  // stay as they are with the kernel. Fails when no memory is left.
  virtual Result<void> MovePixelsToNewPages(ResourceId resource) {
    (void)resource;
    return {};
  }
  // A 64x64 resource as the cursor image (a8r8g8b8, top row first).
  virtual Result<CursorImage> ReadCursor(ResourceId resource) = 0;
  // The resource's texture as a dmabuf the display can show itself (no read-back); each call
  // makes a new export. Fails where the backend cannot export: the caller then reads back.
  virtual Result<ScanoutExport> ExportScanout(ResourceId resource) {
    (void)resource;
    return MakeError(ErrorKind::kUnsupported, std::string(name()) + " exports no dmabufs");
  }
  // Before DMABUF_UPDATE: makes what was rendered into exported textures visible to the
  // display's own GL context.
  virtual void FlushForScanout() {}

  // Blobs (RESOURCE_CREATE_BLOB). `backing` is the guest's pages for BLOB_MEM_GUEST and
  // HOST3D_GUEST (kept mapped until DestroyResource, like an attached backing), null for HOST3D.
  // Backends without blobs refuse; the software renderer takes guest blobs only.
  virtual bool HasBlobs() const { return false; }
  // Whether BLOB_MEM_GUEST blobs go to this renderer too; where not, the software renderer holds
  // them (and shows them) in every mode.
  virtual bool HoldsGuestBlobs() const { return HasBlobs(); }
  virtual Result<void> CreateBlob(const BlobParams& params, const GuestBacking* backing);
  // A mappable blob's memory for the VMM to map (a new fd each call).
  virtual Result<ExportedBlob> ExportBlob(ResourceId resource);

  // 3D (virgl, gfxstream). The software renderer has no capsets and refuses the rest.
  virtual uint32_t CapsetCount() const { return 0; }
  virtual Result<CapsetInfo> CapsetInfoAt(uint32_t index) const;
  virtual Result<std::vector<uint8_t>> Capset(uint32_t capset_id, uint32_t version) const;
  virtual Result<void> CreateContext(const ContextParams& params);
  virtual void DestroyContext(ContextId context) { (void)context; }
  virtual Result<void> AttachResource(ContextId context, ResourceId resource);
  virtual Result<void> DetachResource(ContextId context, ResourceId resource);
  // SUBMIT_3D. `commands` is the device model's own copy; the backend may copy it again where
  // its library needs alignment or padding.
  virtual Result<void> Submit(ContextId context, std::span<const uint8_t> commands);
  virtual Result<void> CreateFence(const FenceSignal& fence);
  // Signalled fences are delivered to the handler from Poll(), in order within each timeline.
  virtual void SetFenceHandler(std::function<void(const FenceSignal&)> handler) { (void)handler; }
  // An fd that becomes readable when Poll() has fences to deliver; -1 if none.
  virtual int PollFd() const { return -1; }
  virtual void Poll() {}

 protected:
  tl::unexpected<Error> No3d() const {
    return MakeError(ErrorKind::kUnsupported, std::string(name()) + " has no 3D");
  }
};

inline Result<void> Renderer::CreateBlob(const BlobParams&, const GuestBacking*) {
  return MakeError(ErrorKind::kUnsupported, std::string(name()) + " has no blob resources");
}
inline Result<ExportedBlob> Renderer::ExportBlob(ResourceId) {
  return MakeError(ErrorKind::kUnsupported, std::string(name()) + " maps no blobs");
}
inline Result<CapsetInfo> Renderer::CapsetInfoAt(uint32_t) const { return No3d(); }
inline Result<std::vector<uint8_t>> Renderer::Capset(uint32_t, uint32_t) const { return No3d(); }
inline Result<void> Renderer::CreateContext(const ContextParams&) { return No3d(); }
inline Result<void> Renderer::AttachResource(ContextId, ResourceId) { return No3d(); }
inline Result<void> Renderer::DetachResource(ContextId, ResourceId) { return No3d(); }
inline Result<void> Renderer::Submit(ContextId, std::span<const uint8_t>) { return No3d(); }
inline Result<void> Renderer::CreateFence(const FenceSignal&) { return No3d(); }

}  // namespace vgpu::renderer
