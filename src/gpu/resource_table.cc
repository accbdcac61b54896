#include "gpu/resource_table.h"

namespace vgpu::gpu {

bool ResourceTable::Fits(uint64_t bytes) const {
  return bytes <= host_memory_limit_ && host_memory_used_ <= host_memory_limit_ - bytes;
}

Result<Resource*> ResourceTable::Insert(ResourceId id, renderer::software2d::HostImage image) {
  if (resources_.contains(id)) return MakeError(ErrorKind::kInvalidArgument, "resource id in use");
  const uint64_t bytes = image.size_bytes() + kResourceBookkeepingBytes;
  if (!Fits(bytes)) return MakeError(ErrorKind::kResourceExhausted, "host memory cap reached");
  host_memory_used_ += bytes;
  Resource resource;
  resource.id = id;
  resource.width = image.width();
  resource.height = image.height();
  resource.host_bytes = bytes;
  resource.image = std::move(image);
  auto [it, inserted] = resources_.emplace(id, std::move(resource));
  return &it->second;
}

Result<Resource*> ResourceTable::InsertRendererResource(ResourceId id, uint32_t width,
                                                        uint32_t height, uint64_t renderer_bytes) {
  if (resources_.contains(id)) return MakeError(ErrorKind::kInvalidArgument, "resource id in use");
  const uint64_t host_bytes = renderer_bytes + kResourceBookkeepingBytes;
  if (!Fits(host_bytes)) return MakeError(ErrorKind::kResourceExhausted, "host memory cap reached");
  host_memory_used_ += host_bytes;
  Resource resource;
  resource.id = id;
  resource.width = width;
  resource.height = height;
  resource.host_bytes = host_bytes;
  resource.in_renderer = true;
  auto [it, inserted] = resources_.emplace(id, std::move(resource));
  return &it->second;
}

bool ResourceTable::BackingFits(size_t entry_count) const {
  return Fits(uint64_t{entry_count} * kBackingEntryBytes);
}

Result<void> ResourceTable::SetBacking(Resource& resource, BackingStore backing) {
  const uint64_t bytes = uint64_t{backing.spans().size()} * kBackingEntryBytes;
  if (!Fits(bytes)) return MakeError(ErrorKind::kResourceExhausted, "host memory cap reached");
  ClearBacking(resource);
  host_memory_used_ += bytes;
  resource.backing_bytes = bytes;
  resource.backing = std::move(backing);
  return {};
}

void ResourceTable::ClearBacking(Resource& resource) {
  host_memory_used_ -= resource.backing_bytes;
  resource.backing_bytes = 0;
  resource.backing.reset();
}

Resource* ResourceTable::Find(ResourceId id) {
  auto it = resources_.find(id);
  return it == resources_.end() ? nullptr : &it->second;
}

void ResourceTable::Erase(ResourceId id) {
  auto it = resources_.find(id);
  if (it == resources_.end()) return;
  host_memory_used_ -= it->second.host_bytes + it->second.backing_bytes;
  resources_.erase(it);
}

void ResourceTable::Clear() {
  resources_.clear();
  host_memory_used_ = 0;
}

}  // namespace vgpu::gpu
