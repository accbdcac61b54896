// VirglRenderer: the process's one virglrenderer instance, as a Renderer (renderer.h).
//
//   Result<std::unique_ptr<VirglRenderer>> renderer = VirglRenderer::Create(VirglOptions{
//       .use_egl = true, .use_surfaceless = true, .capsets = {kCapsetVirgl, kCapsetVirgl2}});
//   if (!renderer) { LogError("%s", renderer.error().message.c_str()); return 1; }
//   (*renderer)->SetFenceHandler([&](const FenceSignal& signal) { CompleteFenced(signal); });
//   loop.Watch((*renderer)->PollFd(), EPOLLIN, [&](uint32_t) { (*renderer)->Poll(); });
//
// Threading: every call, Create included, must come from one thread (the device thread): GL
// contexts are bound to the thread that made them current, and virglrenderer is not thread-safe.
//
// Fences: virgl runs with VIRGL_RENDERER_THREAD_SYNC and without ASYNC_FENCE_CB. Its sync thread
// waits on GL fences and makes PollFd() readable; Poll() then calls virgl_renderer_poll(), whose
// write_fence/write_context_fence callbacks run right there, on the calling thread. No lock and
// no hand-over queue are needed, and the handler never runs on a foreign thread. When virgl
// drops THREAD_SYNC (no eventfd, or VIRGL_DISABLE_MT set), PollFd() is -1 and the caller must
// call Poll() on a timer instead (QEMU uses 10 ms).
//
// Every fence created is reported exactly once, in creation order within its timeline, with the
// 64-bit id, context and ring it was created with (FenceTimelines explains virgl's merging).
//
// Ids are the device model's (renderer.h); virglrenderer checks guest values itself: formats,
// targets and sizes at creation, and every transfer against the attached backing
// (docs/SECURITY.md, "What each renderer library assumes of its caller").
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "renderer/renderer.h"
#include "renderer/virgl/fence_timelines.h"
#include "renderer/virgl/pixel_pack_reader.h"

struct virgl_renderer_callbacks;

namespace vgpu::renderer::virgl {

struct VirglOptions {
  // Winsys: exactly one of EGL and GLX. Surfaceless needs EGL; it is what works without a
  // display server or render node (Mesa llvmpipe, or NVIDIA's EGL).
  bool use_egl = true;
  bool use_glx = false;
  bool use_gles = false;
  bool use_surfaceless = false;
  // Optional render node for EGL; virglrenderer takes ownership (get_drm_fd callback). Without
  // one, virgl picks a node itself, or none with use_surfaceless.
  UniqueFd drm_fd;
  // Capset ids to offer (--capset): kCapsetVirgl and/or kCapsetVirgl2. Empty offers none. One that
  // this virglrenderer reports with version or size 0 is dropped with a warning.
  std::vector<uint32_t> capsets;
  // How the display's rows are read back (VHOST_DEVICE_GPU_VIRGL_READBACK, README).
  enum class DisplayReadback {
    kPackBuffer,            // PixelPackReader, its storage chosen by the driver's abilities.
    kPackBufferMapPerRead,  // PixelPackReader with Storage::kMapPerRead ("pbo-map").
    kTransfer,              // virgl_renderer_transfer_read_iov only ("transfer").
  };
  DisplayReadback display_readback = DisplayReadback::kPackBuffer;
  // With the Venus capset: run Venus in this process instead of virglrenderer's render server
  // (VHOST_DEVICE_GPU_VENUS=in-process, README). For host drivers that cannot be used in a
  // process forked after its parent loaded them, as virglrenderer 0.10.4's render server forks
  // its per-context workers: NVIDIA's vkCreateDevice fails there (docs/PERFORMANCE.md).
  bool venus_in_process = false;
};

// What virgl_renderer_resource_get_info reports (GL-backed resources only).
struct ResourceInfo {
  ResourceId id;
  uint32_t virgl_format = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t depth = 0;
  uint32_t flags = 0;  // kResourceFlagY0Top.
  uint32_t texture_id = 0;
  uint32_t stride = 0;
  int32_t drm_fourcc = 0;

  // Y_0_TOP: the GL texture holds the guest's last row at GL row 0, i.e. upright in GL's
  // bottom-up convention; without the flag it holds the guest's row 0 there. A consumer of the
  // texture itself (dmabuf scanout: pass the flag on, as QEMU's DMABUF_SCANOUT flags do) flips
  // when the flag is clear. Transfers, ReadRect and ReadCursor already return the guest's order.
  bool y_0_top() const;
};

class VirglRenderer final : public Renderer {
 public:
  // Initialises virglrenderer (once per process: a second Create fails while an instance lives).
  // Fails with a message fit for the daemon to print before exiting 1 when the options are
  // inconsistent, a capset is not one virgl provides, or virgl_renderer_init fails.
  static Result<std::unique_ptr<VirglRenderer>> Create(VirglOptions options);
  ~VirglRenderer() override;  // virgl_renderer_cleanup, then frees the backing arrays.

  VirglRenderer(const VirglRenderer&) = delete;
  VirglRenderer& operator=(const VirglRenderer&) = delete;

  const char* name() const override { return "virglrenderer"; }

  // Capsets, over the enabled ones (GET_CAPSET_INFO index order = the order given in options).
  uint32_t CapsetCount() const override { return static_cast<uint32_t>(capsets_.size()); }
  Result<CapsetInfo> CapsetInfoAt(uint32_t index) const override;
  // The capset's bytes, max_size of them, zero-filled before virgl writes (CVE-2016-9908 class).
  // Fails for a capset that is not enabled, a version above max_version, or a size of 0
  // (CVE-2021-3546: virgl's fill_caps would write past a zero-size buffer).
  Result<std::vector<uint8_t>> Capset(uint32_t capset_id, uint32_t version) const override;

  // capset_id 0 creates a legacy context (virgl_renderer_context_create, like QEMU); otherwise
  // the capset must be enabled. At most the first 64 bytes of the debug name, up to a NUL, are
  // used.
  Result<void> CreateContext(const ContextParams& params) override;
  // Also forgets the context's pending per-context fences (virgl drops them unsignalled).
  void DestroyContext(ContextId context) override;
  Result<void> AttachResource(ContextId context, ResourceId resource) override;
  Result<void> DetachResource(ContextId context, ResourceId resource) override;

  Result<void> CreateResource(const ResourceParams& params) override;
  // Detaches the backing first (CVE-2017-5857 / CVE-2021-3544 class), then unrefs.
  void DestroyResource(ResourceId resource) override;
  // The renderer keeps the backing's iovec array (virgl keeps a pointer to it).
  Result<void> AttachBacking(ResourceId resource, const GuestBacking& backing) override;
  void DetachBacking(ResourceId resource) override;
  // RESOURCE_CREATE_BLOB: virgl_renderer_resource_create_blob (guest blobs keep their iovec
  // array here, like a backing); RESOURCE_MAP_BLOB: virgl_renderer_resource_export_blob.
  bool HasBlobs() const override { return true; }
  Result<void> CreateBlob(const BlobParams& params, const GuestBacking* backing) override;
  Result<ExportedBlob> ExportBlob(ResourceId resource) override;
  // Resources with a backing attached: what this class holds on their behalf.
  size_t LiveBackingCount() const { return live_backings_; }

  // Between the resource and its attached backing. virgl checks the box and offset against the
  // resource and the backing; any failure it reports (positive or negative codes) is an error.
  Result<void> TransferToHost(const TransferParams& params) override;
  Result<void> TransferFromHost(const TransferParams& params) override;

  // SUBMIT_3D: `commands` must be whole dwords; they are copied into an aligned buffer before
  // virgl decodes them. Empty is a no-op.
  Result<void> Submit(ContextId context, std::span<const uint8_t> commands) override;

  // ctx0's timeline (not per_context: context and ring are only echoed back), or the context's
  // ring (virglrenderer 0.10.4's GL contexts have ring 0 only, so another ring fails). The fence
  // signals through PollFd()/Poll().
  Result<void> CreateFence(const FenceSignal& fence) override;
  // An epoll set of virgl's own fence fd and each context's (Venus contexts retire their fences
  // on their own fd: virgl_renderer_context_get_poll_fd); readable when any of them is.
  int PollFd() const override { return poll_set_.get(); }
  // Retires what virgl finished and calls the handler for each signalled fence, here.
  void Poll() override;
  void SetFenceHandler(std::function<void(const FenceSignal&)> handler) override {
    fence_handler_ = std::move(handler);
  }
  size_t PendingFenceCount() const { return fences_.pending_count(); }

  Result<ResourceInfo> Info(ResourceId resource) const;
  // Reads `rect` of the rendered resource (level 0, layer 0) into destination as x8r8g8b8, in the
  // guest's row order (top first). The eight virtio-gpu 2D formats are converted; any other
  // format fails with kUnsupported.
  // Display-native formats (B8G8R8X8, B8G8R8A8) of 2D textures, read into a pixel-pack buffer
  // and sent from its mapping; nullopt elsewhere, or once the driver has refused it (logged
  // once), and then ReadRect.
  std::optional<DisplayRows> DirectRows(ResourceId resource, const Rect& rect) override;
  void ReleaseRows() override;
  Result<void> ReadRect(ResourceId resource, const Rect& rect, std::span<uint8_t> destination,
                        uint32_t destination_stride) override;
  // UPDATE_CURSOR: the resource's 64x64 pixels (virgl_renderer_get_cursor_data) in the guest's
  // row order, as the resource holds them (not converted); any other size fails.
  Result<CursorImage> ReadCursor(ResourceId resource) override;

  // The resource's texture as a dmabuf for DMABUF_SCANOUT (virgl_export.cc): a new export per
  // call. Fails (kUnsupported) where EGL cannot export, e.g. llvmpipe on the surfaceless
  // platform, and for textures that are not one plane at offset 0.
  Result<ScanoutExport> ExportScanout(ResourceId resource) override;
  // Before DMABUF_UPDATE: flushes the GL work that drew into exported textures.
  void FlushForScanout() override;

 private:
  VirglRenderer() = default;
  Result<void> Initialize(int flags);
  void LoadCapsets(const std::vector<uint32_t>& requested);
  Result<void> Transfer(const TransferParams& params, bool to_host);

  static void WriteFence(void* cookie, uint32_t fence);
  static void WriteContextFence(void* cookie, uint32_t context, uint32_t ring_index,
                                uint64_t fence_id);
  static int GetDrmFd(void* cookie);

  std::unique_ptr<virgl_renderer_callbacks> callbacks_;  // virgl keeps a pointer to it.
  UniqueFd drm_fd_;
  int poll_fd_ = -1;
  UniqueFd poll_set_;  // Made before the sandbox (epoll_create1 is not allowed after it).
  UniqueFd wakeup_;    // In poll_set_: fences retired outside Poll() wait for it.
  std::unordered_map<ContextId, int> context_poll_fds_;  // virgl owns the fds.
  bool initialized_ = false;
  std::vector<CapsetInfo> capsets_;
  // The iovec array of each resource with a backing (virgl holds backing.data()).
  std::unordered_map<ResourceId, std::vector<iovec>> backings_;
  size_t live_backings_ = 0;
  FenceTimelines fences_;
  std::function<void(const FenceSignal&)> fence_handler_;
  std::vector<uint32_t> submit_buffer_;  // Dword-aligned copy of the last command stream.
  std::vector<uint8_t> read_buffer_;     // Packed rows of the last ReadRect.
  // Display read-backs (DirectRows); null when not used or after the driver refused it.
  std::unique_ptr<PixelPackReader> pack_reader_;
};

}  // namespace vgpu::renderer::virgl
