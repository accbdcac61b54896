// GfxstreamBackend: the device model's Renderer interface over gfxstream's stream_renderer API,
// loaded at run time (GfxstreamLibrary).
//
//   GfxstreamOptions options{.library_path = GfxstreamLibraryPath(),
//                            .capsets = {kCapsetGfxstreamVulkan, kCapsetGfxstreamGles}};
//   Result<std::unique_ptr<Renderer>> renderer = GfxstreamBackend::Create(std::move(options));
//   loop.Watch((*renderer)->PollFd(), EPOLLIN, [&](uint32_t) { (*renderer)->Poll(); });
//
// Threading: every call, Create included, comes from the device thread. gfxstream's fence
// callback may run on its own threads or synchronously inside CreateFence; it only hands the
// fence over (FenceHandoff), and Poll() delivers to the fence handler on the device thread, in
// the order gfxstream reported them. gfxstream reports every fence (it does not merge them).
//
// Ids are the device model's (renderer.h). gfxstream trusts its caller with sizes too; this class
// does not: backings, resource shapes, transfer boxes, capset ids and command streams are checked
// before they reach the library (docs/SECURITY.md, "What each renderer library assumes of its
// caller").
//
// Blobs: HOST3D and HOST3D_GUEST only. gfxstream's create_blob makes host memory for blob_id 0
// (an address-space-graphics ring) whatever the blob_mem, and ignores guest pages, so guest
// blobs stay with the software renderer (HoldsGuestBlobs). It is initialised with EXTERNAL_BLOB
// and SYSTEM_BLOB, so that what it makes is exported as an fd a VMM can map (a memfd).
//
// Display (ReadRect) reads back through stream_renderer_transfer_read_iov into a host buffer, and
// only the damaged rectangle's rows are copied: gfxstream addresses the buffer as the whole
// resource (rows width * 4 apart) and copies just the box's byte range into it (§2.4).
#pragma once

#include <sys/uio.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/unique_fd.h"
#include "renderer/gfxstream/fence_handoff.h"
#include "renderer/gfxstream/gfxstream_commands.h"
#include "renderer/gfxstream/gfxstream_library.h"
#include "renderer/renderer.h"

namespace vgpu::renderer::gfxstream {

struct GfxstreamOptions {
  std::string library_path = kGfxstreamDefaultSoname;
  // Renderer flags (--use-egl, --use-gles, --use-surfaceless). GLX is accepted and ignored, as
  // gfxstream itself ignores it.
  bool use_egl = true;
  bool use_glx = false;
  bool use_gles = true;
  bool use_surfaceless = true;
  // --capset: kCapsetGfxstreamVulkan and/or kCapsetGfxstreamGles, in GET_CAPSET_INFO order. One
  // the library reports with size 0 is dropped with a warning.
  std::vector<uint32_t> capsets = {kCapsetGfxstreamVulkan, kCapsetGfxstreamGles};
  // The widest and tallest colour buffer passed to gfxstream, which checks neither against the
  // host's limits (an image over its Vulkan device's limit crashes it). 16384 is what llvmpipe,
  // lavapipe and most GPUs take; PrepareGfxstreamHost lowers it to the Vulkan device's limit.
  uint32_t max_image_dimension = 16384;
  // STREAM_RENDERER_PARAM_WIN0_WIDTH / _HEIGHT: the display's size.
  uint32_t window_width = 1280;
  uint32_t window_height = 800;
};

class GfxstreamBackend final : public Renderer {
 public:
  // Loads the library and initialises gfxstream (once per process: its state is global). The
  // error is one line fit for the daemon to print before exiting 1.
  static Result<std::unique_ptr<Renderer>> Create(GfxstreamOptions options);
  ~GfxstreamBackend() override;  // stream_renderer_teardown, after which no callback runs.

  const char* name() const override { return "gfxstream"; }
  uint32_t CapsetCount() const override { return static_cast<uint32_t>(capsets_.size()); }
  Result<CapsetInfo> CapsetInfoAt(uint32_t index) const override;
  Result<std::vector<uint8_t>> Capset(uint32_t capset_id, uint32_t version) const override;

  Result<void> CreateContext(const ContextParams& params) override;
  void DestroyContext(ContextId context) override;
  Result<void> AttachResource(ContextId context, ResourceId resource) override;
  Result<void> DetachResource(ContextId context, ResourceId resource) override;

  Result<void> CreateResource(const ResourceParams& params) override;
  void DestroyResource(ResourceId resource) override;
  Result<void> AttachBacking(ResourceId resource, const GuestBacking& backing) override;
  void DetachBacking(ResourceId resource) override;
  Result<void> TransferToHost(const TransferParams& params) override;
  Result<void> TransferFromHost(const TransferParams& params) override;
  Result<void> Submit(ContextId context, std::span<const uint8_t> commands) override;

  bool HasBlobs() const override { return true; }
  bool HoldsGuestBlobs() const override { return false; }
  Result<void> CreateBlob(const BlobParams& params, const GuestBacking* backing) override;
  Result<ExportedBlob> ExportBlob(ResourceId resource) override;

  Result<void> CreateFence(const FenceSignal& fence) override;
  void SetFenceHandler(std::function<void(const FenceSignal&)> handler) override {
    fence_handler_ = std::move(handler);
  }
  int PollFd() const override { return handoff_->fd(); }
  void Poll() override;

  Result<void> ReadRect(ResourceId resource, const Rect& rect, std::span<uint8_t> destination,
                        uint32_t stride) override;
  Result<CursorImage> ReadCursor(ResourceId resource) override;

 private:
  struct BlobMemory {
    uint64_t size = 0;  // The guest's RESOURCE_CREATE_BLOB size.
    uint32_t map_info = 0;
    // gfxstream gives its handle up at the first export; later exports are duplicates of it.
    UniqueFd exported;
    uint64_t exported_size = 0;  // Of the exported fd's file.
    // The context whose CONTEXT_CREATE made this blob a ring (gfxstream_commands.h): gfxstream
    // stops the ring's reader only when the blob leaves that context.
    std::optional<ContextId> ring_of;
  };
  struct ResourceState {
    ResourceParams params;
    std::vector<iovec> backing;  // Non-empty while attached.
    std::optional<BlobMemory> blob;
    std::set<ContextId> contexts;  // Attached to (CTX_ATTACH_RESOURCE).
  };
  // Per blob id (its low 32 bits), the bytes of a shape GFXSTREAM_RESOURCE_CREATE_3D recorded.
  using PendingShapes = std::map<uint32_t, uint64_t>;

  GfxstreamBackend(std::unique_ptr<GfxstreamLibrary> library, std::unique_ptr<FenceHandoff> handoff,
                   uint32_t max_image_dimension)
      : library_(std::move(library)),
        api_(library_->api()),
        handoff_(std::move(handoff)),
        max_image_dimension_(max_image_dimension) {}
  Result<void> Initialize(const GfxstreamOptions& options);
  void LoadCapsets(const std::vector<uint32_t>& requested);
  ResourceState& StateOf(ResourceId resource);
  // What gfxstream would make of a shape without checking it (CreateResource, and the shapes
  // GFXSTREAM_RESOURCE_CREATE_3D records for blobs).
  Result<void> CheckShape(const ResourceParams& params) const;
  // Looks into the gfxstream commands that act on unchecked fields (gfxstream_commands.h).
  Result<void> CheckCommand(ContextId context, const GfxstreamCommand& command) const;
  // After gfxstream ran a checked command: what it now holds (a ring, a recorded shape).
  void RecordCommand(ContextId context, const GfxstreamCommand& command);
  Result<void> Transfer(const TransferParams& params, bool to_host);
  // Reads the box (z 0, depth 1) of a resource with a backing into read_buffer_, laid out as
  // gfxstream addresses it; returns the byte offset of the box's first pixel there.
  Result<size_t> ReadBack(ResourceId resource, const ResourceState& state, const Rect& rect);

  static void OnFence(void* user_data, stream_renderer_fence* fence);
  static void OnDebugMessage(void* user_data, stream_renderer_debug* debug);

  std::unique_ptr<GfxstreamLibrary> library_;
  const StreamRendererApi& api_;
  std::unique_ptr<FenceHandoff> handoff_;  // gfxstream's user data; outlives teardown.
  const uint32_t max_image_dimension_;
  bool initialized_ = false;
  std::vector<CapsetInfo> capsets_;
  std::unordered_map<ResourceId, ResourceState> resources_;
  std::unordered_map<ContextId, PendingShapes> pending_shapes_;
  std::function<void(const FenceSignal&)> fence_handler_;
  std::vector<uint8_t> submit_buffer_;  // Private copy of the last command stream.
  std::vector<uint8_t> read_buffer_;    // The last read-back, in gfxstream's layout.
};

}  // namespace vgpu::renderer::gfxstream
