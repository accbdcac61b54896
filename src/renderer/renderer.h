// Renderer: what the device model needs from a 3D backend (virglrenderer, gfxstream).
//
//   std::unique_ptr<Renderer> renderer = ...;          // A backend's factory.
//   renderer->SetFenceHandler([&](const FenceSignal& fence) { ...complete responses... });
//   loop.Watch(renderer->PollFd(), EPOLLIN, [&](uint32_t) { renderer->Poll(); });
//   renderer->CreateContext(ContextParams{...});
//   renderer->Submit(ctx_id, command_bytes);
//   renderer->CreateFence(FenceSignal{ctx_id, ring_idx, fence_id, per_context});
//   renderer->ExportScanout(resource_id);   // A dmabuf for the display, else ReadRect.
//
// Everything runs on the device thread (GL contexts are thread-bound), fence callbacks included.
// Ids are the guest's virtio-gpu ids; a backend validates them against what exists, because the
// libraries behind it trust their caller. Parameters come from the guest and were decoded, but
// not range-checked against backend limits: that is the backend's job.
#pragma once

#include <fcntl.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/checked_math.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vgpu::renderer {

struct CapsetInfo {
  uint32_t id = 0;
  uint32_t max_version = 0;
  uint32_t max_size = 0;
};

// RESOURCE_CREATE_3D's parameters (virtio 1.2 §5.7.6.9); RESOURCE_CREATE_2D maps onto them.
struct ResourceParams {
  uint32_t resource_id = 0;
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

// Host bytes a 3D resource is counted as: 4 per texel of every layer and slice, without
// overflow (nullopt when it would). Mip levels add at most a third; the renderer's own memory
// cannot be seen, so this is the estimate the memory cap and the backends' limits use.
inline std::optional<uint64_t> ResourceBytes(const ResourceParams& params) {
  std::optional<uint64_t> bytes = CheckedMul<uint64_t>(params.width, params.height);
  if (bytes) bytes = CheckedMul<uint64_t>(*bytes, std::max<uint32_t>(params.depth, 1));
  if (bytes) bytes = CheckedMul<uint64_t>(*bytes, std::max<uint32_t>(params.array_size, 1));
  if (bytes) bytes = CheckedMul<uint64_t>(*bytes, 4);
  return bytes;
}

struct Box {
  uint32_t x = 0, y = 0, z = 0;
  uint32_t width = 0, height = 0, depth = 0;
};

// TRANSFER_TO_HOST_2D/3D and TRANSFER_FROM_HOST_3D, through the resource's attached backing.
struct TransferParams {
  uint32_t resource_id = 0;
  uint32_t context_id = 0;
  uint32_t level = 0;
  uint32_t stride = 0;
  uint32_t layer_stride = 0;
  Box box;
  uint64_t offset = 0;
};

struct ContextParams {
  uint32_t context_id = 0;
  uint32_t capset_id = 0;       // 0: the backend's default (CTX_CREATE without CONTEXT_INIT).
  std::string_view debug_name;  // Not NUL-terminated; at most 64 bytes.
};

// A fence: ctx0's global timeline (per_context false) or a context's ring (CONTEXT_INIT).
struct FenceSignal {
  uint32_t context_id = 0;
  uint32_t ring_index = 0;
  uint64_t fence_id = 0;
  bool per_context = false;
};

inline constexpr uint32_t kCursorPixels = 64 * 64;

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
    UniqueFd copy(fcntl(dmabuf.get(), F_DUPFD_CLOEXEC, 0));
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

class Renderer {
 public:
  virtual ~Renderer() = default;

  virtual const char* name() const = 0;

  // Capsets over the enabled set, by index (GET_CAPSET_INFO) and by id (GET_CAPSET).
  virtual uint32_t CapsetCount() const = 0;
  virtual Result<CapsetInfo> CapsetInfoAt(uint32_t index) const = 0;
  virtual Result<std::vector<uint8_t>> Capset(uint32_t capset_id, uint32_t version) const = 0;

  virtual Result<void> CreateContext(const ContextParams& params) = 0;
  virtual Result<void> DestroyContext(uint32_t context_id) = 0;
  virtual Result<void> AttachResource(uint32_t context_id, uint32_t resource_id) = 0;
  virtual Result<void> DetachResource(uint32_t context_id, uint32_t resource_id) = 0;

  virtual Result<void> CreateResource(const ResourceParams& params) = 0;
  // Detaches and frees the backing first, then destroys the resource.
  virtual Result<void> UnrefResource(uint32_t resource_id) = 0;
  // The iovecs point into guest memory that the caller keeps mapped until DetachBacking/Unref.
  virtual Result<void> AttachBacking(uint32_t resource_id, std::vector<iovec> backing) = 0;
  virtual Result<void> DetachBacking(uint32_t resource_id) = 0;
  virtual Result<void> TransferToHost(const TransferParams& params) = 0;
  virtual Result<void> TransferFromHost(const TransferParams& params) = 0;

  virtual Result<void> Submit(uint32_t context_id, std::span<const uint8_t> commands) = 0;

  virtual Result<void> CreateFence(const FenceSignal& fence) = 0;
  virtual void SetFenceHandler(std::function<void(const FenceSignal&)> handler) = 0;
  // An fd that becomes readable when Poll() has fences to deliver; -1 if none.
  virtual int PollFd() const = 0;
  virtual void Poll() = 0;

  // Reads `width` x `height` pixels at (x, y) back as x8r8g8b8 rows (top row first) into
  // `destination`, `stride` bytes apart: how 3D results reach a display without a dmabuf.
  virtual Result<void> ReadRect(uint32_t resource_id, uint32_t x, uint32_t y, uint32_t width,
                                uint32_t height, std::span<uint8_t> destination,
                                uint32_t stride) = 0;
  virtual Result<std::array<uint32_t, kCursorPixels>> CursorImage(uint32_t resource_id) = 0;

  // Exports the resource's texture as a dmabuf that the display can show itself (no read-back).
  // Each call makes a new export; the caller owns the fd. Fails where the backend cannot export
  // (no render node, no EGL_MESA_image_dma_buf_export, a texture that is not one 2D plane): the
  // caller then reads flushed rectangles back with ReadRect. Unsupported by default.
  virtual Result<ScanoutExport> ExportScanout(uint32_t resource_id) {
    (void)resource_id;
    return MakeError(ErrorKind::kUnsupported, std::string(name()) + " exports no dmabufs");
  }
  // Before DMABUF_UPDATE: makes what was rendered into exported textures visible to the
  // display's own GL context (QEMU's daemon calls glFlush there). Nothing to do by default.
  virtual void FlushForScanout() {}
};

}  // namespace vgpu::renderer
