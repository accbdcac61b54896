#include "gpu/command_dispatcher.h"

#include <string>
#include <type_traits>
#include <variant>

#include "base/log.h"

namespace vgpu::gpu {
namespace {

template <class... Handlers>
struct Overloaded : Handlers... {
  using Handlers::operator()...;
};
template <class... Handlers>
Overloaded(Handlers...) -> Overloaded<Handlers...>;

}  // namespace

CommandDispatcher::CommandDispatcher(const DispatcherConfig& config, DisplayChannel* display,
                                     renderer::Renderer* renderer_3d)
    : config_(config),
      renderer_3d_(renderer_3d),
      resources_(config.max_host_memory),
      region_(config.host_visible_size),
      completions_(renderer_3d, diagnostics_),
      dmabuf_(renderer_3d != nullptr && display != nullptr
                  ? std::make_unique<DmabufScanouts>(scanouts_, *display, *renderer_3d,
                                                     completions_, diagnostics_)
                  : nullptr),
      scanout_executor_(scanouts_, resources_, display, dmabuf_.get(), completions_, diagnostics_,
                        config.readback_interval),
      display_info_(scanouts_, display, completions_, config.edid_offered),
      resource_executor_(resources_, contexts_, software_, renderer_3d, scanout_executor_, region_),
      blob_executor_(resources_, contexts_, software_, renderer_3d, resource_executor_, region_),
      context_executor_(contexts_, resources_, completions_, renderer_3d),
      cursor_executor_(resources_, display, diagnostics_) {}

void CommandDispatcher::Dispatch(DecodedCommand decoded, Reply reply) {
  ++diagnostics_.statistics.commands;
  if (!decoded.body) {
    completions_.Finish(std::move(reply), tl::unexpected(decoded.body.error()));
    return;
  }
  LogTrace("command %s", CommandName(decoded.header.type));
  if (recorder_.enabled()) Record3d(*decoded.body);
  const CtrlHdr& header = decoded.header;
  // Blob commands only where the driver took RESOURCE_BLOB (§5.7.6.8).
  auto blobs = [&](const char* name, auto run) -> CommandResult<Response> {
    if (!Acked(kFeatureResourceBlob)) {
      return Fail(Failure::kMalformed, std::string(name) + " without VIRTIO_GPU_F_RESOURCE_BLOB");
    }
    return run();
  };
  // Commands answered at once, or after their fence.
  auto execute = Overloaded{
      [&](const ResourceCreate2d& r) { return resource_executor_.Create2d(r); },
      [&](const ResourceCreate3d& r) { return resource_executor_.Create3d(r); },
      [&](const ResourceUnref& r) { return resource_executor_.Unref(r); },
      [&](const AttachBackingRequest& r) { return resource_executor_.AttachBacking(r); },
      [&](const ResourceDetachBacking& r) { return resource_executor_.DetachBacking(r); },
      [&](const TransferToHost2d& r) { return resource_executor_.Transfer2d(r); },
      [&](const Transfer3dRequest& r) { return resource_executor_.Transfer3d(r); },
      [&](const ResourceAssignUuid& r) { return resource_executor_.AssignUuid(r); },
      [&](const SetScanout& r) { return scanout_executor_.Set(r); },
      [&](const GetCapsetInfo& r) { return context_executor_.QueryCapsetInfo(r); },
      [&](const GetCapset& r) { return context_executor_.QueryCapset(r); },
      [&](const CtxCreate& r) { return context_executor_.Create(r, acked_features_); },
      [&](const CtxDestroyRequest&) { return context_executor_.Destroy(header); },
      [&](const CtxResourceRequest& r) { return context_executor_.AttachResource(r); },
      [&](const Submit3dRequest& r) { return context_executor_.Submit(r); },
      [&](const CreateBlobRequest& r) {
        return blobs("RESOURCE_CREATE_BLOB", [&] { return blob_executor_.Create(r); });
      },
      [&](const SetScanoutBlob& r) {
        return blobs("SET_SCANOUT_BLOB", [&] { return scanout_executor_.SetBlob(r); });
      },
      [&](const ResourceMapBlob& r) {
        return blobs("RESOURCE_MAP_BLOB", [&] { return blob_executor_.Map(r); });
      },
      [&](const ResourceUnmapBlob& r) {
        return blobs("RESOURCE_UNMAP_BLOB", [&] { return blob_executor_.Unmap(r); });
      },
  };
  // The three that may answer later (the VMM's answer, a dmabuf update's reply) take their reply.
  std::visit(
      Overloaded{
          [&](const GetDisplayInfoRequest&) { display_info_.QueryDisplayInfo(std::move(reply)); },
          [&](const GetEdid& request) {
            display_info_.QueryEdid(request, std::move(reply), acked_features_);
          },
          [&](const ResourceFlush& request) { scanout_executor_.Flush(request, std::move(reply)); },
          [&](const auto& request) { completions_.Finish(std::move(reply), execute(request)); },
      },
      *decoded.body);
}

void CommandDispatcher::Record3d(const CommandBody& body) {
  std::visit(Overloaded{
                 [&](const CtxCreate& r) { recorder_.Record(r); },
                 [&](const CtxDestroyRequest&) {},
                 [&](const CtxResourceRequest& r) { recorder_.Record(r.request); },
                 [&](const ResourceCreate3d& r) { recorder_.Record(r); },
                 [&](const Transfer3dRequest& r) { recorder_.Record(r.request); },
                 [&](const Submit3dRequest& r) { recorder_.Record(r.request, r.stream); },
                 [&](const auto&) {},
             },
             body);
}

void CommandDispatcher::DispatchCursor(const CommandResult<CursorCommand>& command) {
  if (!command) {
    ++diagnostics_.statistics.cursor_commands;
    ++diagnostics_.statistics.errors;
    diagnostics_.GuestWarning("guest: %s -> ERR_UNSPEC", command.error().message.c_str());
    return;
  }
  cursor_executor_.Run(*command);
}

void CommandDispatcher::DropHeld() {
  completions_.DropHeld();
  display_info_.DropHeld();
  if (dmabuf_) dmabuf_->DropHeld();
}

size_t CommandDispatcher::held_commands() const {
  return completions_.held() + display_info_.held() + (dmabuf_ ? dmabuf_->held() : 0);
}

void CommandDispatcher::Reset() {
  DropHeld();
  if (dmabuf_) dmabuf_->Reset();
  // The VMM dropped the region's mappings with the reset (vhost-user SHMEM): forget, not unmap.
  region_.Forget();
  resource_executor_.Reset();
  context_executor_.Reset();
  scanout_executor_.Reset();
  scanouts_ = InitialScanouts();
  acked_features_ = 0;
}

}  // namespace vgpu::gpu
