#include "gpu/resource_table.h"

namespace vgpu::gpu {

bool ResourceTable::Fits(uint64_t bytes) const {
  return bytes <= host_memory_limit_ && host_memory_used_ <= host_memory_limit_ - bytes;
}

Result<Resource*> ResourceTable::Insert(ResourceId id, renderer::Renderer* renderer, bool three_d,
                                        uint32_t width, uint32_t height, uint64_t bytes) {
  if (resources_.contains(id)) return MakeError(ErrorKind::kInvalidArgument, "resource id in use");
  const uint64_t host_bytes = bytes + kResourceBookkeepingBytes;
  if (host_bytes < bytes || !Fits(host_bytes)) {
    return MakeError(ErrorKind::kResourceExhausted, "host memory cap reached");
  }
  host_memory_used_ += host_bytes;
  auto [it, inserted] = resources_.emplace(id, Resource{.id = id,
                                                        .renderer = renderer,
                                                        .three_d = three_d,
                                                        .width = width,
                                                        .height = height,
                                                        .host_bytes = host_bytes});
  return &it->second;
}

bool ResourceTable::BackingFits(size_t entry_count) const {
  return Fits(uint64_t{entry_count} * kBackingEntryBytes);
}

Result<void> ResourceTable::SetBacking(Resource& resource, BackingStore backing) {
  const uint64_t bytes = uint64_t{backing.span_count()} * kBackingEntryBytes;
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
