// GfxstreamBackend's blobs: RESOURCE_CREATE_BLOB of host memory, its export for RESOURCE_MAP_BLOB,
// and the gfxstream commands that name blobs (CONTEXT_CREATE) or prepare them
// (RESOURCE_CREATE_3D), checked before gfxstream acts on them.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>

#include "base/log.h"
#include "renderer/gfxstream/gfxstream_backend.h"
#include "renderer/gfxstream/gfxstream_commands.h"
#include "renderer/gfxstream/gfxstream_layout.h"
#include "virtio_gpu/blob.h"

namespace vgpu::renderer::gfxstream {
namespace {

// Shapes a context may have recorded and not yet used: gfxstream keeps each one until a blob
// takes it, so an unbounded number would be host memory the guest grows at will. A guest driver
// records one just before each blob it makes.
constexpr size_t kMaxPendingShapesPerContext = 1024;

std::string Blob(ResourceId resource) { return "blob " + std::to_string(resource.value()); }

}  // namespace

Result<void> GfxstreamBackend::CreateBlob(const BlobParams& params, const GuestBacking* backing) {
  const uint32_t id = params.id.value();
  const uint32_t context = params.context.value();
  if (id == 0 || id > static_cast<uint32_t>(INT_MAX) || context > static_cast<uint32_t>(INT_MAX)) {
    return MakeError(ErrorKind::kInvalidArgument, "blob " + std::to_string(id) + " in context " +
                                                      std::to_string(context) +
                                                      ": id out of range");
  }
  if (params.blob_mem == virtio_gpu::blob::kBlobMemGuest) {
    return MakeError(ErrorKind::kUnsupported, "gfxstream holds no guest blobs");
  }
  // A shape recorded for this blob id becomes a colour buffer or buffer of that shape, which
  // gfxstream allocates whatever the blob's size: the size is what the memory cap counted.
  if (auto shapes = pending_shapes_.find(params.context); shapes != pending_shapes_.end()) {
    if (auto pending = shapes->second.find(static_cast<uint32_t>(params.blob_id));
        pending != shapes->second.end()) {
      if (params.size < pending->second) {
        return MakeError(ErrorKind::kInvalidArgument,
                         Blob(params.id) + " of " + std::to_string(params.size) +
                             " bytes for blob_id " + std::to_string(params.blob_id) +
                             ", whose resource shape needs " + std::to_string(pending->second));
      }
      shapes->second.erase(pending);
    }
  }
  const struct stream_renderer_create_blob args {
    .blob_mem = params.blob_mem, .blob_flags = params.blob_flags, .blob_id = params.blob_id,
    .size = params.size
  };
  std::vector<iovec> entries;
  if (backing != nullptr) entries = backing->Iovecs();
  const int result =
      api_.create_blob(context, id, &args, entries.empty() ? nullptr : entries.data(),
                       static_cast<uint32_t>(entries.size()), nullptr);
  // create_blob returns 0 even where gfxstream made nothing (an unknown context, a blob_id no
  // Vulkan allocation exported): only a blob it made has map info.
  uint32_t map_info = 0;
  if (result != 0 || api_.resource_map_info(id, &map_info) != 0) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "gfxstream made no " + Blob(params.id) + " for blob_id " +
                         std::to_string(params.blob_id) + " in context " + std::to_string(context) +
                         " (returned " + std::to_string(result) + ")");
  }
  resources_.insert_or_assign(
      params.id, ResourceState{.params = {.id = params.id},
                               .backing = {},
                               .blob = BlobMemory{.size = params.size, .map_info = map_info}});
  return {};
}

Result<ExportedBlob> GfxstreamBackend::ExportBlob(ResourceId resource) {
  auto found = resources_.find(resource);
  if (found == resources_.end() || !found->second.blob) {
    return MakeError(ErrorKind::kInvalidArgument, Blob(resource) + " is not a gfxstream blob");
  }
  BlobMemory& blob = *found->second.blob;
  if (!blob.exported) {
    stream_renderer_handle handle{.os_handle = -1, .handle_type = 0};
    const int result = api_.export_blob(resource.value(), &handle);
    if (result != 0 || handle.os_handle < 0 || handle.os_handle > INT_MAX) {
      return MakeError(ErrorKind::kUnsupported, "gfxstream cannot export " + Blob(resource) +
                                                    " as an fd (returned " +
                                                    std::to_string(result) + ")");
    }
    UniqueFd fd(static_cast<int>(handle.os_handle));
    // Shared memory and dmabufs map from their start for anyone; an opaque fd means something
    // only to the Vulkan driver that made it (SYSTEM_BLOB not in effect for this memory).
    if (handle.handle_type != STREAM_HANDLE_TYPE_MEM_SHM &&
        handle.handle_type != STREAM_HANDLE_TYPE_MEM_DMABUF) {
      return MakeError(ErrorKind::kUnsupported, Blob(resource) + " exported as handle type " +
                                                    std::to_string(handle.handle_type) +
                                                    ", which a VMM cannot map");
    }
    struct stat status {};
    if (fstat(fd.get(), &status) != 0) return MakeSystemError("fstat(blob)", errno);
    blob.exported = std::move(fd);
    blob.exported_size = static_cast<uint64_t>(std::max<off_t>(status.st_size, 0));
  }
  UniqueFd copy = DuplicateFd(blob.exported.get());
  if (!copy) return MakeSystemError("dup(blob)", errno);
  return ExportedBlob{.fd = std::move(copy),
                      .offset = 0,
                      .size = blob.exported_size,
                      .map_info = blob.map_info & STREAM_RENDERER_MAP_CACHE_MASK};
}

Result<void> GfxstreamBackend::CheckCommand(ContextId context,
                                            const GfxstreamCommand& command) const {
  if (const auto* create = std::get_if<GfxstreamContextCreate>(&command)) {
    auto ring = resources_.find(create->ring);
    // gfxstream refuses (without harm) a resource it has no ring memory for. For a blob it
    // trusts the caller: one smaller than the ring it lays into it aborts the process; and the
    // ring's reader thread, which reads the blob's memory, is stopped only when the blob leaves
    // the context that made the ring (unref detaches it), keeping the memory alive until then.
    // A ring made in a context the blob is not attached to, or a second ring on the same blob
    // (gfxstream forgets the first reader), would read the memory after it is freed.
    if (ring == resources_.end() || !ring->second.blob) return {};
    const std::string what = "CONTEXT_CREATE on " + Blob(create->ring) + ": ";
    if (ring->second.blob->size < kGfxstreamRingBlobMinBytes) {
      return MakeError(ErrorKind::kInvalidArgument, what + std::to_string(ring->second.blob->size) +
                                                        " bytes, and gfxstream's ring needs " +
                                                        std::to_string(kGfxstreamRingBlobMinBytes));
    }
    if (!ring->second.contexts.contains(context)) {
      return MakeError(ErrorKind::kInvalidArgument,
                       what + "not attached to context " + std::to_string(context.value()));
    }
    if (ring->second.blob->ring_of) {
      return MakeError(ErrorKind::kInvalidArgument,
                       what + "already a ring of context " +
                           std::to_string(ring->second.blob->ring_of->value()));
    }
    return {};
  }
  if (const auto* shape = std::get_if<GfxstreamResourceCreate3d>(&command)) {
    if (Result<void> checked = CheckShape(shape->shape); !checked) {
      return MakeError(ErrorKind::kInvalidArgument, "RESOURCE_CREATE_3D for blob_id " +
                                                        std::to_string(shape->blob_id) + ": " +
                                                        checked.error().message);
    }
    if (!GfxstreamCopyBytes(shape->shape)) {
      return MakeError(ErrorKind::kInvalidArgument, "RESOURCE_CREATE_3D: size overflows");
    }
    const auto shapes = pending_shapes_.find(context);
    const size_t recorded = shapes == pending_shapes_.end() ? 0 : shapes->second.size();
    if (recorded >= kMaxPendingShapesPerContext) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "RESOURCE_CREATE_3D: context " + std::to_string(context.value()) + " has " +
                           std::to_string(recorded) + " shapes no blob has used");
    }
  }
  return {};
}

void GfxstreamBackend::RecordCommand(ContextId context, const GfxstreamCommand& command) {
  if (const auto* create = std::get_if<GfxstreamContextCreate>(&command)) {
    auto ring = resources_.find(create->ring);
    if (ring != resources_.end() && ring->second.blob) ring->second.blob->ring_of = context;
    return;
  }
  if (const auto* shape = std::get_if<GfxstreamResourceCreate3d>(&command)) {
    // gfxstream refuses a blob id already recorded (the submit fails), so this is a new one.
    pending_shapes_[context].insert_or_assign(shape->blob_id, *GfxstreamCopyBytes(shape->shape));
  }
}

}  // namespace vgpu::renderer::gfxstream
