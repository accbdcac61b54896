// VirglRenderer: the process's one virglrenderer instance, behind checked, RAII calls.
//
//   Result<std::unique_ptr<VirglRenderer>> renderer = VirglRenderer::Create(VirglOptions{
//       .use_egl = true, .use_surfaceless = true, .capsets = {kCapsetVirgl, kCapsetVirgl2}});
//   if (!renderer) { LogError("%s", renderer.error().message.c_str()); return 1; }
//   (*renderer)->SetFenceHandler([&](const FenceSignal& signal) { CompleteFenced(signal); });
//   loop.Add((*renderer)->PollFd(), [&] { (*renderer)->Poll(); });   // Device thread's epoll.
//
//   (*renderer)->CreateContext(ContextId{1}, 0, debug_name);
//   (*renderer)->Create2d(ResourceId{5}, format, 1280, 800);
//   (*renderer)->AttachBacking(ResourceId{5}, std::move(iovecs));     // Guest pages, host-mapped.
//   (*renderer)->Submit(ContextId{1}, command_bytes, kMaxSubmitBytes);
//   (*renderer)->CreateFence(fence_id, ContextId{1}, 0, FenceScope::kGlobal);
//   (*renderer)->ReadRect(ResourceId{5}, damage, frame_bytes, frame_stride);   // For UPDATE.
//   (*renderer)->ExportScanout(ResourceId{5});   // Or a dmabuf, where EGL can export one.
//
// Threading: every call, Create included, must come from one thread (the device thread): GL
// contexts are bound to the thread that made them current, and virglrenderer is not thread-safe.
//
// Fences: virgl runs with VIRGL_RENDERER_THREAD_SYNC and without ASYNC_FENCE_CB. Its sync thread
// waits on GL fences and makes PollFd() readable; Poll() then calls virgl_renderer_poll(), whose
// write_fence/write_context_fence callbacks run right there, on the calling thread. No lock and
// no hand-over queue are needed, and the handler never runs on a foreign thread. (ASYNC_FENCE_CB
// would only save the epoll wake-up, at the price of a cross-thread queue.) When virgl drops
// THREAD_SYNC (no eventfd, or VIRGL_DISABLE_MT set), PollFd() is -1 and the caller must call
// Poll() on a timer instead (QEMU uses 10 ms).
//
// Every fence created is reported exactly once, in creation order within its timeline, with the
// 64-bit id, context and ring it was created with (FenceTimelines explains virgl's merging).
//
// virglrenderer trusts its caller with ids; this class does not: contexts and resources are
// tracked, and calls naming unknown ones fail before reaching virgl. Guest-controlled values
// reach virgl only through these checks.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "gpu/ids.h"
#include "renderer/renderer.h"
#include "renderer/software2d/image_view.h"
#include "renderer/virgl/fence_timelines.h"

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
};

// The renderer interface's types, shared rather than copied.
using CapsetInfo = renderer::CapsetInfo;  // Spec: struct virtio_gpu_resp_capset_info.
using Box = renderer::Box;                // Spec: struct virtio_gpu_box.

// Spec: struct virtio_gpu_resource_create_3d (§5.7.6.8, RESOURCE_CREATE_3D). Guest-controlled;
// virglrenderer validates target/format/bind/sizes and fails the call when they are wrong.
struct ResourceCreateArgs {
  gpu::ResourceId id;
  uint32_t target = 0;
  uint32_t format = 0;  // A virgl format (the eight virtio-gpu 2D formats share their numbers).
  uint32_t bind = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t depth = 0;
  uint32_t array_size = 0;
  uint32_t last_level = 0;
  uint32_t nr_samples = 0;
  uint32_t flags = 0;
};

// Spec: struct virtio_gpu_transfer_host_3d (§5.7.6.8, TRANSFER_TO_HOST_3D / FROM_HOST_3D).
struct TransferArgs {
  gpu::ResourceId resource;
  gpu::ContextId context;  // 0: virgl's ctx0 (what TRANSFER_TO_HOST_2D uses).
  uint32_t level = 0;
  uint32_t stride = 0;
  uint32_t layer_stride = 0;
  Box box;
  uint64_t offset = 0;  // Into the attached backing.
};

// What virgl_renderer_resource_get_info reports (GL-backed resources only).
struct ResourceInfo {
  gpu::ResourceId id;
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
  // when the flag is clear. Transfers, ReadRect and CursorData already return the guest's order.
  bool y_0_top() const;
};

inline constexpr uint32_t kCursorSize = 64;
using CursorImage = std::array<uint32_t, kCursorSize * kCursorSize>;

class VirglRenderer {
 public:
  using FenceHandler = std::function<void(const FenceSignal&)>;

  // Initialises virglrenderer (once per process: a second Create fails while an instance lives).
  // Fails with a message fit for the daemon to print before exiting 1 when the options are
  // inconsistent, a capset is not one virgl provides, or virgl_renderer_init fails.
  static Result<std::unique_ptr<VirglRenderer>> Create(VirglOptions options);
  ~VirglRenderer();  // virgl_renderer_cleanup, then frees the backing copies.

  VirglRenderer(const VirglRenderer&) = delete;
  VirglRenderer& operator=(const VirglRenderer&) = delete;

  // Capsets, over the enabled ones (GET_CAPSET_INFO index order = the order given in options).
  size_t CapsetCount() const { return capsets_.size(); }
  Result<CapsetInfo> CapsetInfoAt(uint32_t index) const;
  // The capset's bytes, max_size of them, zero-filled before virgl writes (CVE-2016-9908 class).
  // Fails for a capset that is not enabled, a version above max_version, or a size of 0
  // (CVE-2021-3546: virgl's fill_caps would write past a zero-size buffer).
  Result<std::vector<uint8_t>> Capset(uint32_t id, uint32_t version) const;

  // capset_id 0 creates a legacy context (virgl_renderer_context_create, like QEMU); otherwise
  // the capset must be enabled. debug_name is guest-controlled and need not be NUL-terminated:
  // at most its first 64 bytes (virtio_gpu_ctx_create.debug_name), up to a NUL, are used.
  Result<void> CreateContext(gpu::ContextId context, uint32_t capset_id,
                             std::span<const char> debug_name);
  // Also forgets the context's pending per-context fences (virgl drops them unsignalled).
  Result<void> DestroyContext(gpu::ContextId context);
  Result<void> AttachResource(gpu::ContextId context, gpu::ResourceId resource);
  Result<void> DetachResource(gpu::ContextId context, gpu::ResourceId resource);

  // Unknown-context and unknown-resource failures are told apart by these predicates
  // (the device answers ERR_INVALID_CONTEXT_ID or ERR_INVALID_RESOURCE_ID).
  static bool IsUnknownContext(const Error& error);
  static bool IsUnknownResource(const Error& error);

  Result<void> CreateResource(const ResourceCreateArgs& args);
  // RESOURCE_CREATE_2D as QEMU does it: a 2D render-target texture flagged Y_0_TOP.
  Result<void> Create2d(gpu::ResourceId resource, uint32_t format, uint32_t width, uint32_t height);
  // Detaches and frees the backing first (CVE-2017-5857 / CVE-2021-3544 class), then unrefs.
  Result<void> Unref(gpu::ResourceId resource);

  // `entries` point at host mappings of guest memory that must stay valid until detach or
  // unref. The renderer keeps the array (virgl keeps a pointer to it). A second attach fails.
  Result<void> AttachBacking(gpu::ResourceId resource, std::vector<iovec> entries);
  Result<void> DetachBacking(gpu::ResourceId resource);
  // Resources with a backing attached: what this class holds on their behalf.
  size_t LiveBackingCount() const { return live_backings_; }

  // Between the resource and its attached backing. virgl checks the box and offset against the
  // resource and the backing; any failure it reports (positive or negative codes) is an error.
  Result<void> TransferToHost(const TransferArgs& args);
  Result<void> TransferFromHost(const TransferArgs& args);

  // SUBMIT_3D: `commands` (guest-controlled) must be whole dwords and at most max_bytes long;
  // they are copied into an aligned buffer before virgl decodes them. Empty is a no-op.
  Result<void> Submit(gpu::ContextId context, std::span<const uint8_t> commands, size_t max_bytes);

  // kGlobal: virgl's ctx0 timeline (virtio fences without INFO_RING_IDX); context and ring are
  // only echoed back. kContext: the context's ring (virglrenderer 0.10.4's GL contexts have ring
  // 0 only, so another ring fails). The fence signals through PollFd()/Poll().
  Result<void> CreateFence(uint64_t fence_id, gpu::ContextId context, uint32_t ring_index,
                           FenceScope scope);
  int PollFd() const { return poll_fd_; }
  // Retires what virgl finished and calls the handler for each signalled fence, here.
  void Poll();
  void SetFenceHandler(FenceHandler handler) { fence_handler_ = std::move(handler); }
  size_t PendingFenceCount() const { return fences_.pending_count(); }

  Result<ResourceInfo> Info(gpu::ResourceId resource) const;
  // Reads `rect` of the rendered resource (level 0, layer 0) into destination as x8r8g8b8,
  // rect row r at destination[r * destination_stride], in the guest's row order (top first).
  // The eight virtio-gpu 2D formats are converted; any other format fails with kUnsupported.
  Result<void> ReadRect(gpu::ResourceId resource, const software2d::PixelRect& rect,
                        std::span<uint8_t> destination, uint32_t destination_stride);
  // UPDATE_CURSOR: the resource's 64x64 pixels (virgl_renderer_get_cursor_data) in the guest's
  // row order, as the resource holds them (not converted); any other size fails.
  Result<CursorImage> CursorData(gpu::ResourceId resource);

  // The resource's texture as a dmabuf for DMABUF_SCANOUT (virgl_export.cc): a new export per
  // call. Fails (kUnsupported) where EGL cannot export, e.g. llvmpipe on the surfaceless
  // platform, and for textures that are not one plane at offset 0.
  Result<renderer::ScanoutExport> ExportScanout(gpu::ResourceId resource);
  // Before DMABUF_UPDATE: flushes the GL work that drew into exported textures.
  void FlushForScanout();

 private:
  struct ResourceState {
    std::vector<iovec> backing;  // Non-empty while attached; virgl holds backing.data().
  };

  VirglRenderer() = default;
  Result<void> Initialize(int flags);
  void LoadCapsets(const std::vector<uint32_t>& requested);
  Result<ResourceState*> FindResource(gpu::ResourceId resource);
  Result<void> CheckContext(gpu::ContextId context) const;
  Result<void> Transfer(const TransferArgs& args, bool to_host);

  static void WriteFence(void* cookie, uint32_t fence);
  static void WriteContextFence(void* cookie, uint32_t context, uint32_t ring_index,
                                uint64_t fence_id);
  static int GetDrmFd(void* cookie);

  std::unique_ptr<virgl_renderer_callbacks> callbacks_;  // virgl keeps a pointer to it.
  UniqueFd drm_fd_;
  int poll_fd_ = -1;
  bool initialized_ = false;
  std::vector<CapsetInfo> capsets_;
  std::unordered_set<uint32_t> contexts_;
  std::unordered_map<uint32_t, ResourceState> resources_;
  size_t live_backings_ = 0;
  FenceTimelines fences_;
  FenceHandler fence_handler_;
  std::vector<uint32_t> submit_buffer_;  // Dword-aligned copy of the last command stream.
  std::vector<uint8_t> read_buffer_;     // Packed rows of the last ReadRect.
};

}  // namespace vgpu::renderer::virgl
