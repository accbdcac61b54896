#include "gpu/blob_executor.h"

#include <string>

namespace vgpu::gpu {
namespace {

std::string Id(uint64_t id) { return std::to_string(id); }

}  // namespace

CommandResult<Response> BlobExecutor::Create(const CreateBlobRequest& create) {
  const ResourceCreateBlob& request = create.request;
  const ResourceId id{request.resource_id};
  if (id.value() == 0 || resources_.Find(id) != nullptr) {
    return Fail(Failure::kUnknownResource, "RESOURCE_CREATE_BLOB id " + Id(id.value()));
  }
  const bool guest_pages =
      request.blob_mem == kBlobMemGuest || request.blob_mem == kBlobMemHost3dGuest;
  if (!guest_pages && request.blob_mem != kBlobMemHost3d) {
    return Fail(Failure::kInvalidParameter,
                "RESOURCE_CREATE_BLOB blob_mem " + Id(request.blob_mem));
  }
  constexpr uint32_t kKnownFlags =
      kBlobFlagUseMappable | kBlobFlagUseShareable | kBlobFlagUseCrossDevice;
  if ((request.blob_flags & ~kKnownFlags) != 0) {
    return Fail(Failure::kInvalidParameter,
                "RESOURCE_CREATE_BLOB blob_flags " + Id(request.blob_flags));
  }
  // Blobs are mapped and shared in whole pages (§5.7.6.8: the size is the guest's allocation).
  if (request.size == 0 || request.size % kBlobPageSize != 0) {
    return Fail(Failure::kInvalidParameter,
                "RESOURCE_CREATE_BLOB size " + std::to_string(request.size));
  }
  if (!guest_pages && !create.entries.empty()) {
    return Fail(Failure::kInvalidParameter, "RESOURCE_CREATE_BLOB of host memory with entries");
  }
  const ContextId context{request.hdr.ctx_id};
  const bool in_3d = request.blob_mem != kBlobMemGuest ||
                     (renderer_3d_ != nullptr && renderer_3d_->HoldsGuestBlobs());
  if (in_3d && (renderer_3d_ == nullptr || !renderer_3d_->HasBlobs())) {
    return Fail(Failure::kMalformed,
                "RESOURCE_CREATE_BLOB of host memory: this mode's renderer makes no host blobs");
  }
  if (request.blob_mem != kBlobMemGuest && !contexts_.Contains(context)) {
    return Fail(Failure::kUnknownContext, "RESOURCE_CREATE_BLOB context " + Id(context.value()));
  }
  std::optional<BackingStore> backing;
  if (guest_pages) {
    if (create.entries.empty()) {
      return Fail(Failure::kInvalidParameter,
                  "RESOURCE_CREATE_BLOB of guest memory without entries");
    }
    Result<BackingStore> made = BackingStore::Create(create.memory, create.entries);
    if (!made)
      return Fail(Failure::kInvalidParameter, "RESOURCE_CREATE_BLOB: " + made.error().message);
    // The entries are the blob: exactly `size` bytes of them (§5.7.6.8).
    if (made->size() != request.size) {
      return Fail(Failure::kInvalidParameter,
                  "RESOURCE_CREATE_BLOB entries hold " + std::to_string(made->size()) +
                      " bytes, size is " + std::to_string(request.size));
    }
    if (!resources_.BackingFits(made->span_count())) {
      return Fail(Failure::kOutOfMemory, "RESOURCE_CREATE_BLOB entry table over the memory cap");
    }
    backing = std::move(*made);
  }
  // Host memory counts against the cap; guest pages only for their entry table.
  const uint64_t host_bytes = guest_pages && request.blob_mem == kBlobMemGuest ? 0 : request.size;
  if (!resources_.Fits(host_bytes)) {
    return Fail(Failure::kOutOfMemory, "RESOURCE_CREATE_BLOB of " + std::to_string(request.size) +
                                           " bytes over the memory cap");
  }
  renderer::Renderer* home = in_3d ? renderer_3d_ : &software_;
  const renderer::BlobParams params{.id = id,
                                    .context = context,
                                    .blob_mem = request.blob_mem,
                                    .blob_flags = request.blob_flags,
                                    .blob_id = request.blob_id,
                                    .size = request.size};
  if (Result<void> created = home->CreateBlob(params, backing ? &backing->view() : nullptr);
      !created) {
    return FromRenderer(created.error(), "RESOURCE_CREATE_BLOB");
  }
  Result<Resource*> inserted = resources_.Insert(id, home, in_3d, 0, 0, host_bytes);
  if (!inserted) {
    home->DestroyResource(id);
    return Fail(Failure::kOutOfMemory, "RESOURCE_CREATE_BLOB over the memory cap");
  }
  Resource& resource = **inserted;
  resource.blob = BlobInfo{
      .blob_mem = request.blob_mem, .blob_flags = request.blob_flags, .size = request.size};
  // The table keeps the guest pages mapped for the renderer from here on.
  if (backing && !resources_.SetBacking(resource, std::move(*backing))) {
    resource_executor_.Destroy(resource);
    return Fail(Failure::kOutOfMemory, "RESOURCE_CREATE_BLOB entry table over the memory cap");
  }
  return Response::Ok();
}

CommandResult<Response> BlobExecutor::Map(const ResourceMapBlob& request) {
  Resource* resource = resources_.Find(ResourceId{request.resource_id});
  if (resource == nullptr || !resource->blob) {
    return Fail(Failure::kUnknownResource, "RESOURCE_MAP_BLOB resource " + Id(request.resource_id));
  }
  BlobInfo& blob = *resource->blob;
  if (blob.blob_mem == kBlobMemGuest || (blob.blob_flags & kBlobFlagUseMappable) == 0) {
    return Fail(Failure::kInvalidParameter,
                "RESOURCE_MAP_BLOB resource " + Id(request.resource_id) + " is not mappable");
  }
  if (blob.mapped_offset) {
    return Fail(Failure::kInvalidParameter,
                "RESOURCE_MAP_BLOB resource " + Id(request.resource_id) + " is mapped already");
  }
  if (!region_.can_map()) {
    return Fail(Failure::kRefused, "RESOURCE_MAP_BLOB: the VMM maps nothing (no SHMEM)");
  }
  Result<renderer::ExportedBlob> exported = resource->renderer->ExportBlob(resource->id);
  if (!exported) return FromRenderer(exported.error(), "RESOURCE_MAP_BLOB");
  // The VMM maps the blob's pages; the renderer's memory may be larger than the blob (a dmabuf
  // rounded up), never smaller.
  if (exported->size < blob.size) {
    return Fail(Failure::kRenderer, "RESOURCE_MAP_BLOB: the renderer's memory holds " +
                                        std::to_string(exported->size) + " of the blob's " +
                                        std::to_string(blob.size) + " bytes");
  }
  exported->size = blob.size;
  if (Result<void> mapped = region_.Map(request.offset, *exported); !mapped) {
    // A place the guest may not use is its parameter; the VMM failing it is not.
    return Fail(mapped.error().kind == ErrorKind::kInvalidArgument ? Failure::kInvalidParameter
                                                                   : Failure::kRenderer,
                "RESOURCE_MAP_BLOB: " + mapped.error().message);
  }
  blob.mapped_offset = request.offset;
  RespMapInfo response{};
  response.map_info = exported->map_info & kMapCacheMask;
  return Response::Of(ResponseType::kOkMapInfo, response);
}

CommandResult<Response> BlobExecutor::Unmap(const ResourceUnmapBlob& request) {
  Resource* resource = resources_.Find(ResourceId{request.resource_id});
  if (resource == nullptr || !resource->blob) {
    return Fail(Failure::kUnknownResource,
                "RESOURCE_UNMAP_BLOB resource " + Id(request.resource_id));
  }
  if (!resource->blob->mapped_offset) {
    return Fail(Failure::kInvalidParameter,
                "RESOURCE_UNMAP_BLOB resource " + Id(request.resource_id) + " is not mapped");
  }
  const uint64_t offset = *resource->blob->mapped_offset;
  resource->blob->mapped_offset.reset();
  if (Result<void> unmapped = region_.Unmap(offset); !unmapped) {
    return Fail(Failure::kRenderer, "RESOURCE_UNMAP_BLOB: " + unmapped.error().message);
  }
  return Response::Ok();
}

}  // namespace vgpu::gpu
