#include "gpu/resource_executor.h"

#include <sys/random.h>

#include <cstring>
#include <string>

#include "base/log.h"
#include "gpu/scanout_executor.h"
#include "renderer/software2d/pixel_format.h"

namespace vgpu::gpu {
namespace {

std::string Id(uint32_t id) { return std::to_string(id); }

}  // namespace

CommandResult<Response> ResourceExecutor::Create2d(const ResourceCreate2d& request) {
  const ResourceId id{request.resource_id};
  if (id.value() == 0 || resources_.Find(id) != nullptr) {
    return Fail(Failure::kUnknownResource, "RESOURCE_CREATE_2D id " + Id(id.value()));
  }
  if (!renderer::software2d::PixmanFormatFor(request.format)) {
    return Fail(Failure::kInvalidParameter, "RESOURCE_CREATE_2D format " + Id(request.format));
  }
  if (request.width == 0 || request.height == 0) {
    return Fail(Failure::kInvalidParameter,
                "RESOURCE_CREATE_2D size " + Id(request.width) + "x" + Id(request.height));
  }
  // The cap before anything is allocated (u64: 0xffffffff^2 * 4 fits).
  const uint64_t bytes =
      uint64_t{request.width} * request.height * renderer::software2d::kBytesPerPixel;
  if (!resources_.Fits(bytes)) {
    return Fail(Failure::kOutOfMemory, "RESOURCE_CREATE_2D " + Id(request.width) + "x" +
                                           Id(request.height) + " over the memory cap");
  }
  const renderer::ResourceParams params{.id = id,
                                        .target = renderer::kTargetTexture2d,
                                        .format = request.format,
                                        .width = request.width,
                                        .height = request.height,
                                        .depth = 1,
                                        .array_size = 1};
  if (Result<void> created = software_.CreateResource(params); !created) {
    return FromRenderer(created.error(), "RESOURCE_CREATE_2D");
  }
  if (!resources_.Insert(id, &software_, false, request.width, request.height, bytes)) {
    software_.DestroyResource(id);
    return Fail(Failure::kOutOfMemory, "RESOURCE_CREATE_2D over the memory cap");
  }
  return Response::Ok();
}

CommandResult<Response> ResourceExecutor::Create3d(const ResourceCreate3d& request) {
  const ResourceId id{request.resource_id};
  if (id.value() == 0 || resources_.Find(id) != nullptr) {
    return Fail(Failure::kUnknownResource, "RESOURCE_CREATE_3D id " + Id(id.value()));
  }
  const renderer::ResourceParams params{.id = id,
                                        .target = request.target,
                                        .format = request.format,
                                        .bind = request.bind,
                                        .width = request.width,
                                        .height = request.height,
                                        .depth = request.depth,
                                        .array_size = request.array_size,
                                        .last_level = request.last_level,
                                        .nr_samples = request.nr_samples,
                                        .flags = request.flags};
  const std::optional<uint64_t> bytes = renderer::ResourceBytes(params);
  if (!bytes || !resources_.Fits(*bytes)) {
    return Fail(Failure::kOutOfMemory, "RESOURCE_CREATE_3D " + Id(request.width) + "x" +
                                           Id(request.height) + "x" + Id(request.depth) +
                                           " over the memory cap");
  }
  if (Result<void> created = renderer_3d_->CreateResource(params); !created) {
    return FromRenderer(created.error(), "RESOURCE_CREATE_3D");
  }
  if (!resources_.Insert(id, renderer_3d_, true, request.width, request.height, *bytes)) {
    renderer_3d_->DestroyResource(id);
    return Fail(Failure::kOutOfMemory, "RESOURCE_CREATE_3D over the memory cap");
  }
  return Response::Ok();
}

void ResourceExecutor::Destroy(Resource& resource) {
  // A head showing the resource goes dark rather than showing freed memory.
  scanouts_.ForgetResource(resource.id);
  // A blob still mapped leaves the guest's region before its memory goes (§5.7.6.9).
  if (resource.blob && resource.blob->mapped_offset) {
    if (Result<void> unmapped = region_.Unmap(*resource.blob->mapped_offset); !unmapped) {
      LogWarning("RESOURCE_UNREF of mapped blob %u: %s", resource.id.value(),
                 unmapped.error().message.c_str());
    }
  }
  // The renderer lets go of the backing before destroying (CVE-2021-3544 / CVE-2017-5857 class);
  // the table then drops our mapping of it (CVE-2016-9912 class).
  resource.renderer->DestroyResource(resource.id);
  resources_.Erase(resource.id);
}

CommandResult<Response> ResourceExecutor::Unref(const ResourceUnref& request) {
  Resource* resource = resources_.Find(ResourceId{request.resource_id});
  if (resource == nullptr) {
    return Fail(Failure::kUnknownResource, "RESOURCE_UNREF id " + Id(request.resource_id));
  }
  Destroy(*resource);
  return Response::Ok();
}

CommandResult<Response> ResourceExecutor::AttachBacking(const AttachBackingRequest& attach) {
  const uint32_t id = attach.request.resource_id;
  Resource* resource = resources_.Find(ResourceId{id});
  if (resource == nullptr) {
    return Fail(Failure::kUnknownResource, "RESOURCE_ATTACH_BACKING resource " + Id(id));
  }
  if (resource->blob) {
    return Fail(Failure::kRefused, "RESOURCE_ATTACH_BACKING resource " + Id(id) +
                                       " is a blob (its memory came with it)");
  }
  if (resource->backing) {
    // A second attach would leak the first (CVE-2017-5578 class): refuse it.
    return Fail(Failure::kRefused,
                "RESOURCE_ATTACH_BACKING resource " + Id(id) + " already backed");
  }
  Result<BackingStore> backing = BackingStore::Create(attach.memory, attach.entries);
  if (!backing) {
    return Fail(Failure::kRefused, "RESOURCE_ATTACH_BACKING: " + backing.error().message);
  }
  if (!resources_.BackingFits(backing->span_count())) {
    return Fail(Failure::kOutOfMemory,
                "RESOURCE_ATTACH_BACKING resource " + Id(id) + ": entry table over the memory cap");
  }
  // A backing of the wrong size for what the renderer copies is the guest's parameter; anything
  // else is the renderer's own failure. Nothing is kept on failure (CVE-2017-5552 class).
  if (Result<void> attached = resource->renderer->AttachBacking(resource->id, backing->view());
      !attached) {
    return FromRenderer(attached.error(), "RESOURCE_ATTACH_BACKING");
  }
  // Keeps the guest mapping alive for the renderer; fits (checked above).
  (void)resources_.SetBacking(*resource, std::move(*backing));
  return Response::Ok();
}

CommandResult<Response> ResourceExecutor::DetachBacking(const ResourceDetachBacking& request) {
  const uint32_t id = request.resource_id;
  Resource* resource = resources_.Find(ResourceId{id});
  if (resource == nullptr) {
    return Fail(Failure::kUnknownResource, "RESOURCE_DETACH_BACKING resource " + Id(id));
  }
  if (!resource->backing || resource->blob) {
    return Fail(Failure::kRefused, "RESOURCE_DETACH_BACKING resource " + Id(id) +
                                       (resource->blob ? " is a blob" : " has none"));
  }
  // The renderer lets go of the guest pages before we unmap our view of them.
  resource->renderer->DetachBacking(resource->id);
  resources_.ClearBacking(*resource);
  return Response::Ok();
}

CommandResult<Response> ResourceExecutor::Transfer2d(const TransferToHost2d& request) {
  const uint32_t id = request.resource_id;
  Resource* resource = resources_.Find(ResourceId{id});
  if (resource == nullptr) {
    return Fail(Failure::kUnknownResource, "TRANSFER_TO_HOST_2D resource " + Id(id));
  }
  if (resource->guest_memory_blob()) {
    // The guest's pages are the blob: there is nothing to copy (Linux still sends this for dumb
    // buffers it made as guest blobs).
    return Response::Ok();
  }
  if (!resource->backing) {
    return Fail(Failure::kRefused, "TRANSFER_TO_HOST_2D resource " + Id(id) + " has no backing");
  }
  const Rect rect = request.r;
  if (!RectInside(rect, resource->width, resource->height)) {
    return Fail(Failure::kInvalidParameter, "TRANSFER_TO_HOST_2D rect outside resource");
  }
  const renderer::TransferParams params{.resource = resource->id,
                                        .box = Box{rect.x, rect.y, 0, rect.width, rect.height, 1},
                                        .offset = request.offset};
  if (Result<void> kept = scanouts_.BeforePixelsChange(*resource); !kept) {
    return FromRenderer(kept.error(), "TRANSFER_TO_HOST_2D");
  }
  if (Result<void> done = resource->renderer->TransferToHost(params); !done) {
    return FromRenderer(done.error(), "TRANSFER_TO_HOST_2D");
  }
  return Response::Ok();
}

CommandResult<Response> ResourceExecutor::Transfer3d(const Transfer3dRequest& transfer) {
  const TransferHost3d& request = transfer.request;
  const char* name = transfer.to_host ? "TRANSFER_TO_HOST_3D" : "TRANSFER_FROM_HOST_3D";
  Resource* resource = resources_.Find(ResourceId{request.resource_id});
  if (resource == nullptr || !resource->three_d) {
    return Fail(Failure::kUnknownResource,
                std::string(name) + " resource " + Id(request.resource_id));
  }
  const ContextId context{request.hdr.ctx_id};
  if (context.value() != 0 && !contexts_.Contains(context)) {
    return Fail(Failure::kUnknownContext, std::string(name) + " context " + Id(context.value()));
  }
  if (!resource->backing) {
    return Fail(Failure::kRefused,
                std::string(name) + " resource " + Id(request.resource_id) + " has no backing");
  }
  const renderer::TransferParams params{.resource = resource->id,
                                        .context = context,
                                        .level = request.level,
                                        .stride = request.stride,
                                        .layer_stride = request.layer_stride,
                                        .box = request.box,
                                        .offset = request.offset};
  Result<void> done = transfer.to_host ? resource->renderer->TransferToHost(params)
                                       : resource->renderer->TransferFromHost(params);
  if (!done) return FromRenderer(done.error(), name);
  return Response::Ok();
}

CommandResult<Response> ResourceExecutor::AssignUuid(const ResourceAssignUuid& request) {
  Resource* resource = resources_.Find(ResourceId{request.resource_id});
  if (resource == nullptr) {
    return Fail(Failure::kUnknownResource, "RESOURCE_ASSIGN_UUID: no such resource");
  }
  if (!resource->uuid) {
    std::array<uint8_t, 16> uuid{};
    if (getrandom(uuid.data(), uuid.size(), 0) != static_cast<ssize_t>(uuid.size())) {
      return Fail(Failure::kRenderer, "RESOURCE_ASSIGN_UUID: no randomness for a UUID");
    }
    uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0f) | 0x40);  // RFC 4122 version 4.
    uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3f) | 0x80);  // RFC 4122 variant.
    resource->uuid = uuid;
  }
  RespResourceUuid response{};
  std::memcpy(response.uuid, resource->uuid->data(), 16);
  return Response::Of(ResponseType::kOkResourceUuid, response);
}

void ResourceExecutor::Reset() {
  resources_.ForEach([](Resource& resource) { resource.renderer->DestroyResource(resource.id); });
  resources_.Clear();
}

}  // namespace vgpu::gpu
