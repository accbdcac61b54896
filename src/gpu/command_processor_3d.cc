// The 3D half of CommandProcessor (§5.7.6.9): capsets, contexts, 3D resources, transfers and
// SUBMIT_3D, executed by the renderer. Every id is checked against what exists here before the
// renderer sees it, because the libraries behind it trust their caller (QEMU's contrib daemon
// notes "TODO add security" on context attach).
#include <algorithm>
#include <cstring>
#include <string_view>

#include "base/checked_math.h"
#include "gpu/command_processor.h"
#include "gpu/request_decoding.h"
#include "gpu/response.h"

namespace vgpu::gpu {
ControlOutcome CommandProcessor::GetCapsetInfo(const virtio::DescriptorChain& chain,
                                               const CtrlHdr& header, Completion& on_complete) {
  std::optional<gpu::GetCapsetInfo> request = ReadRequest<gpu::GetCapsetInfo>(chain);
  if (!request) {
    return FinishHeader(chain, header,
                        Reject(ResponseType::kErrUnspec, "GET_CAPSET_INFO truncated"), on_complete);
  }
  // §5.7.6.8: capset_index < num_capsets; in 2D mode there are none.
  if (renderer_ == nullptr || request->capset_index >= renderer_->CapsetCount()) {
    return FinishHeader(chain, header,
                        Reject(ResponseType::kErrInvalidParameter, "GET_CAPSET_INFO index %u",
                               request->capset_index),
                        on_complete);
  }
  Result<renderer::CapsetInfo> info = renderer_->CapsetInfoAt(request->capset_index);
  if (!info) {
    return FinishHeader(
        chain, header,
        Reject(ResponseType::kErrUnspec, "GET_CAPSET_INFO: %s", info.error().message.c_str()),
        on_complete);
  }
  RespCapsetInfo response{};  // Padding zeroed (CVE-2016-9845 / CVE-2021-3545 class).
  response.hdr = ResponseHeader(header, ResponseType::kOkCapsetInfo);
  response.capset_id = info->id;
  response.capset_max_version = info->max_version;
  response.capset_max_size = info->max_size;
  return FinishStruct(chain, header, response, on_complete);
}

ControlOutcome CommandProcessor::GetCapset(const virtio::DescriptorChain& chain,
                                           const CtrlHdr& header, Completion& on_complete) {
  std::optional<gpu::GetCapset> request = ReadRequest<gpu::GetCapset>(chain);
  if (!request) {
    return FinishHeader(chain, header, Reject(ResponseType::kErrUnspec, "GET_CAPSET truncated"),
                        on_complete);
  }
  if (renderer_ == nullptr) {
    return FinishHeader(chain, header,
                        Reject(ResponseType::kErrInvalidParameter, "GET_CAPSET id %u: no capsets",
                               request->capset_id),
                        on_complete);
  }
  // The renderer validates id and version and never returns an empty set (CVE-2021-3546: a zero
  // max_size made QEMU's daemon write past its response).
  Result<std::vector<uint8_t>> capset =
      renderer_->Capset(request->capset_id, request->capset_version);
  if (!capset || capset->empty()) {
    return FinishHeader(chain, header,
                        Reject(ResponseType::kErrInvalidParameter, "GET_CAPSET id %u version %u",
                               request->capset_id, request->capset_version),
                        on_complete);
  }
  std::vector<uint8_t> response(sizeof(RespCapset) + capset->size());
  const CtrlHdr response_header = ResponseHeader(header, ResponseType::kOkCapset);
  std::memcpy(response.data(), &response_header, sizeof(response_header));
  std::memcpy(response.data() + sizeof(RespCapset), capset->data(), capset->size());
  return Finish(chain, header, response, on_complete);
}

ResponseType CommandProcessor::ContextCreate(const virtio::DescriptorChain& chain,
                                             const CtrlHdr& header) {
  std::optional<CtxCreate> request = ReadRequest<CtxCreate>(chain);
  if (!request) return Reject(ResponseType::kErrUnspec, "CTX_CREATE truncated");
  recorder_.Record(*request);
  const uint32_t context_id = header.ctx_id;
  if (context_id == 0 ||
      std::find(contexts_.begin(), contexts_.end(), context_id) != contexts_.end()) {
    return Reject(ResponseType::kErrInvalidContextId, "CTX_CREATE context %u", context_id);
  }
  if (request->nlen > sizeof(request->debug_name)) {
    return Reject(ResponseType::kErrInvalidParameter, "CTX_CREATE name length %u", request->nlen);
  }
  // §5.7.6.9: with CONTEXT_INIT the low 8 bits of context_init name the capset.
  uint32_t capset_id = 0;
  if (FeatureAcked(acked_features_, kFeatureContextInit)) {
    capset_id = request->context_init & kContextInitCapsetIdMask;
  } else if (request->context_init != 0) {
    return Reject(ResponseType::kErrInvalidParameter,
                  "CTX_CREATE context_init without VIRTIO_GPU_F_CONTEXT_INIT");
  }
  Result<void> created = renderer_->CreateContext(renderer::ContextParams{
      context_id, capset_id, std::string_view(request->debug_name, request->nlen)});
  if (!created) {
    return Reject(ResponseType::kErrUnspec, "CTX_CREATE: %s", created.error().message.c_str());
  }
  contexts_.push_back(context_id);
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::ContextDestroy(const CtrlHdr& header) {
  recorder_.Record(CtxDestroy{header});
  auto context = std::find(contexts_.begin(), contexts_.end(), header.ctx_id);
  if (context == contexts_.end()) {
    return Reject(ResponseType::kErrInvalidContextId, "CTX_DESTROY context %u", header.ctx_id);
  }
  (void)renderer_->DestroyContext(header.ctx_id);
  contexts_.erase(context);
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::ContextResource(const virtio::DescriptorChain& chain,
                                               const CtrlHdr& header, bool attach) {
  std::optional<CtxResource> request = ReadRequest<CtxResource>(chain);
  const char* name = attach ? "CTX_ATTACH_RESOURCE" : "CTX_DETACH_RESOURCE";
  if (!request) return Reject(ResponseType::kErrUnspec, "%s truncated", name);
  recorder_.Record(*request);
  if (std::find(contexts_.begin(), contexts_.end(), header.ctx_id) == contexts_.end()) {
    return Reject(ResponseType::kErrInvalidContextId, "%s context %u", name, header.ctx_id);
  }
  Resource* resource = resources_.Find(ResourceId{request->resource_id});
  if (resource == nullptr) {
    return Reject(ResponseType::kErrInvalidResourceId, "%s resource %u", name,
                  request->resource_id);
  }
  if (!resource->in_renderer) {
    // Linux attaches every GEM object its contexts open, dumb buffers (2D, ours) included; the
    // renderer has nothing to attach for those.
    LogDebug("%s: resource %u is a 2D resource; nothing to do", name, request->resource_id);
    return ResponseType::kOkNodata;
  }
  Result<void> done = attach ? renderer_->AttachResource(header.ctx_id, request->resource_id)
                             : renderer_->DetachResource(header.ctx_id, request->resource_id);
  if (!done) return Reject(ResponseType::kErrUnspec, "%s: %s", name, done.error().message.c_str());
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::ResourceCreate3d(const virtio::DescriptorChain& chain) {
  std::optional<gpu::ResourceCreate3d> request = ReadRequest<gpu::ResourceCreate3d>(chain);
  if (!request) return Reject(ResponseType::kErrUnspec, "RESOURCE_CREATE_3D truncated");
  recorder_.Record(*request);
  const ResourceId id{request->resource_id};
  if (id.value() == 0 || resources_.Find(id) != nullptr) {
    return Reject(ResponseType::kErrInvalidResourceId, "RESOURCE_CREATE_3D id %u", id.value());
  }
  renderer::ResourceParams params;
  params.resource_id = request->resource_id;
  params.target = request->target;
  params.format = request->format;
  params.bind = request->bind;
  params.width = request->width;
  params.height = request->height;
  params.depth = request->depth;
  params.array_size = request->array_size;
  params.last_level = request->last_level;
  params.nr_samples = request->nr_samples;
  params.flags = request->flags;
  std::optional<uint64_t> bytes = renderer::ResourceBytes(params);
  if (!bytes || !resources_.Fits(*bytes)) {
    return Reject(ResponseType::kErrOutOfMemory, "RESOURCE_CREATE_3D %ux%ux%u over the memory cap",
                  request->width, request->height, request->depth);
  }
  Result<void> created = renderer_->CreateResource(params);
  if (!created) {
    return Reject(ResponseType::kErrInvalidParameter, "RESOURCE_CREATE_3D: %s",
                  created.error().message.c_str());
  }
  if (!resources_.InsertRendererResource(id, request->width, request->height, *bytes)) {
    (void)renderer_->UnrefResource(id.value());
    return Reject(ResponseType::kErrOutOfMemory, "RESOURCE_CREATE_3D over the memory cap");
  }
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::AttachRendererBacking(Resource& resource, BackingStore backing) {
  std::vector<iovec> iovecs;
  iovecs.reserve(backing.spans().size());
  for (std::span<uint8_t> span : backing.spans()) iovecs.push_back(iovec{span.data(), span.size()});
  Result<void> attached = renderer_->AttachBacking(resource.id.value(), std::move(iovecs));
  if (!attached) {
    // Nothing kept on failure (CVE-2017-5552 class). A backing of the wrong size for what the
    // renderer will copy is the guest's parameter; anything else the renderer's own failure.
    const bool bad_size = attached.error().kind == ErrorKind::kInvalidArgument ||
                          attached.error().kind == ErrorKind::kOutOfRange;
    return Reject(bad_size ? ResponseType::kErrInvalidParameter : ResponseType::kErrUnspec,
                  "RESOURCE_ATTACH_BACKING: %s", attached.error().message.c_str());
  }
  // Keeps the guest mapping alive for the renderer; fits (checked by the caller).
  (void)resources_.SetBacking(resource, std::move(backing));
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::TransferToRenderer2d(Resource& resource,
                                                    const gpu::TransferToHost2d& request) {
  renderer::TransferParams params;
  params.resource_id = resource.id.value();
  params.box = renderer::Box{request.r.x, request.r.y, 0, request.r.width, request.r.height, 1};
  params.offset = request.offset;
  Result<void> done = renderer_->TransferToHost(params);
  if (!done) {
    return Reject(ResponseType::kErrInvalidParameter, "TRANSFER_TO_HOST_2D: %s",
                  done.error().message.c_str());
  }
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::Transfer3d(const virtio::DescriptorChain& chain,
                                          const CtrlHdr& header, bool to_host) {
  std::optional<TransferHost3d> request = ReadRequest<TransferHost3d>(chain);
  const char* name = to_host ? "TRANSFER_TO_HOST_3D" : "TRANSFER_FROM_HOST_3D";
  if (!request) return Reject(ResponseType::kErrUnspec, "%s truncated", name);
  recorder_.Record(*request);
  Resource* resource = resources_.Find(ResourceId{request->resource_id});
  if (resource == nullptr || !resource->in_renderer) {
    return Reject(ResponseType::kErrInvalidResourceId, "%s resource %u", name,
                  request->resource_id);
  }
  if (header.ctx_id != 0 &&
      std::find(contexts_.begin(), contexts_.end(), header.ctx_id) == contexts_.end()) {
    return Reject(ResponseType::kErrInvalidContextId, "%s context %u", name, header.ctx_id);
  }
  if (!resource->backing) {
    return Reject(ResponseType::kErrUnspec, "%s resource %u has no backing", name,
                  request->resource_id);
  }
  renderer::TransferParams params;
  params.resource_id = request->resource_id;
  params.context_id = header.ctx_id;
  params.level = request->level;
  params.stride = request->stride;
  params.layer_stride = request->layer_stride;
  params.box = renderer::Box{request->box.x, request->box.y, request->box.z,
                             request->box.w, request->box.h, request->box.d};
  params.offset = request->offset;
  Result<void> done =
      to_host ? renderer_->TransferToHost(params) : renderer_->TransferFromHost(params);
  if (!done) {
    return Reject(ResponseType::kErrInvalidParameter, "%s: %s", name, done.error().message.c_str());
  }
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::Submit3d(const virtio::DescriptorChain& chain,
                                        const CtrlHdr& header) {
  virtio::ChainReader reader(chain);
  std::optional<CmdSubmit> request = reader.ReadObject<CmdSubmit>();
  if (!request) return Reject(ResponseType::kErrUnspec, "SUBMIT_3D truncated");
  if (std::find(contexts_.begin(), contexts_.end(), header.ctx_id) == contexts_.end()) {
    return Reject(ResponseType::kErrInvalidContextId, "SUBMIT_3D context %u", header.ctx_id);
  }
  // No guest-sized allocation without a cap, and the stream must be there (reference §5 class 8).
  if (request->size > kMaxSubmitBytes) {
    return Reject(ResponseType::kErrInvalidParameter, "SUBMIT_3D of %u bytes", request->size);
  }
  if (reader.remaining() < request->size) {
    return Reject(ResponseType::kErrInvalidParameter, "SUBMIT_3D claims %u bytes, carries %llu",
                  request->size, static_cast<unsigned long long>(reader.remaining()));
  }
  submit_buffer_.resize(request->size);
  (void)reader.Read(submit_buffer_);
  recorder_.Record(*request, submit_buffer_);
  Result<void> submitted = renderer_->Submit(header.ctx_id, submit_buffer_);
  if (!submitted) {
    return Reject(ResponseType::kErrInvalidParameter, "SUBMIT_3D: %s",
                  submitted.error().message.c_str());
  }
  return ResponseType::kOkNodata;
}

}  // namespace vgpu::gpu
