#include "gpu/context_executor.h"

#include <cstring>
#include <string>
#include <string_view>

#include "base/log.h"

namespace vgpu::gpu {
namespace {

std::string Id(uint32_t id) { return std::to_string(id); }

}  // namespace

CommandResult<Response> ContextExecutor::QueryCapsetInfo(const GetCapsetInfo& request) {
  // §5.7.6.8: capset_index < num_capsets.
  if (renderer_ == nullptr || request.capset_index >= renderer_->CapsetCount()) {
    return Fail(Failure::kInvalidParameter, "GET_CAPSET_INFO index " + Id(request.capset_index));
  }
  Result<renderer::CapsetInfo> info = renderer_->CapsetInfoAt(request.capset_index);
  if (!info) return FromRenderer(info.error(), "GET_CAPSET_INFO", Failure::kRenderer);
  RespCapsetInfo response{};  // Padding zeroed (CVE-2016-9845 / CVE-2021-3545 class).
  response.capset_id = info->id;
  response.capset_max_version = info->max_version;
  response.capset_max_size = info->max_size;
  return Response::Of(ResponseType::kOkCapsetInfo, response);
}

CommandResult<Response> ContextExecutor::QueryCapset(const GetCapset& request) {
  if (renderer_ == nullptr) {
    return Fail(Failure::kInvalidParameter,
                "GET_CAPSET id " + Id(request.capset_id) + ": no capsets");
  }
  // The renderer validates id and version and never returns an empty set (CVE-2021-3546: a zero
  // max_size made QEMU's daemon write past its response).
  Result<std::vector<uint8_t>> capset =
      renderer_->Capset(request.capset_id, request.capset_version);
  if (!capset || capset->empty()) {
    return Fail(Failure::kInvalidParameter, "GET_CAPSET id " + Id(request.capset_id) + " version " +
                                                Id(request.capset_version));
  }
  return Response{.type = ResponseType::kOkCapset, .body = std::move(*capset)};
}

CommandResult<Response> ContextExecutor::Create(const CtxCreate& request, uint64_t acked_features) {
  const ContextId context{request.hdr.ctx_id};
  if (context.value() == 0 || contexts_.Contains(context)) {
    return Fail(Failure::kUnknownContext, "CTX_CREATE context " + Id(context.value()));
  }
  if (request.nlen > sizeof(request.debug_name)) {
    return Fail(Failure::kInvalidParameter, "CTX_CREATE name length " + Id(request.nlen));
  }
  // §5.7.6.9: with CONTEXT_INIT the low 8 bits of context_init name the capset.
  uint32_t capset_id = 0;
  if (((acked_features >> kFeatureContextInit) & 1) != 0) {
    capset_id = request.context_init & kContextInitCapsetIdMask;
  } else if (request.context_init != 0) {
    return Fail(Failure::kInvalidParameter,
                "CTX_CREATE context_init without VIRTIO_GPU_F_CONTEXT_INIT");
  }
  Result<void> created = renderer_->CreateContext(renderer::ContextParams{
      context, capset_id, std::string_view(request.debug_name, request.nlen)});
  if (!created) return FromRenderer(created.error(), "CTX_CREATE", Failure::kRenderer);
  contexts_.Insert(context);
  return Response::Ok();
}

CommandResult<Response> ContextExecutor::Destroy(const CtrlHdr& header) {
  const ContextId context{header.ctx_id};
  if (!contexts_.Contains(context)) {
    return Fail(Failure::kUnknownContext, "CTX_DESTROY context " + Id(header.ctx_id));
  }
  renderer_->DestroyContext(context);
  contexts_.Erase(context);
  completions_.ReleaseContext(context);
  return Response::Ok();
}

CommandResult<Response> ContextExecutor::AttachResource(const CtxResourceRequest& attach) {
  const char* name = attach.attach ? "CTX_ATTACH_RESOURCE" : "CTX_DETACH_RESOURCE";
  const ContextId context{attach.request.hdr.ctx_id};
  if (!contexts_.Contains(context)) {
    return Fail(Failure::kUnknownContext, std::string(name) + " context " + Id(context.value()));
  }
  Resource* resource = resources_.Find(ResourceId{attach.request.resource_id});
  if (resource == nullptr) {
    return Fail(Failure::kUnknownResource,
                std::string(name) + " resource " + Id(attach.request.resource_id));
  }
  if (!resource->three_d) {
    // Linux attaches every GEM object its contexts open, dumb buffers (2D, in the software
    // renderer) included; the 3D renderer has nothing to attach for those.
    LogDebug("%s: resource %u is a 2D resource; nothing to do", name, resource->id.value());
    return Response::Ok();
  }
  Result<void> done = attach.attach ? renderer_->AttachResource(context, resource->id)
                                    : renderer_->DetachResource(context, resource->id);
  if (!done) return FromRenderer(done.error(), name, Failure::kRenderer);
  return Response::Ok();
}

CommandResult<Response> ContextExecutor::Submit(const Submit3dRequest& submit) {
  const ContextId context{submit.request.hdr.ctx_id};
  if (!contexts_.Contains(context)) {
    return Fail(Failure::kUnknownContext, "SUBMIT_3D context " + Id(context.value()));
  }
  // The stream is the command's own copy (command_decoder.h): guest memory cannot change under
  // the renderer.
  if (Result<void> submitted = renderer_->Submit(context, submit.stream); !submitted) {
    return FromRenderer(submitted.error(), "SUBMIT_3D");
  }
  return Response::Ok();
}

void ContextExecutor::Reset() {
  if (renderer_ != nullptr) {
    for (ContextId context : contexts_.ids()) renderer_->DestroyContext(context);
  }
  contexts_.Clear();
}

}  // namespace vgpu::gpu
