#include "gpu/resource_table.h"

namespace vgpu::gpu {

bool ResourceTable::Fits(uint64_t bytes) const {
  return bytes <= host_memory_limit_ && host_memory_used_ <= host_memory_limit_ - bytes;
}

Result<Resource2d*> ResourceTable::Insert(ResourceId id, renderer::software2d::HostImage image) {
  if (resources_.contains(id)) return MakeError(ErrorKind::kInvalidArgument, "resource id in use");
  const uint64_t bytes = image.size_bytes();
  if (!Fits(bytes)) return MakeError(ErrorKind::kResourceExhausted, "host memory cap reached");
  host_memory_used_ += bytes;
  auto [it, inserted] = resources_.emplace(id, Resource2d{id, std::move(image), {}, {}});
  return &it->second;
}

Resource2d* ResourceTable::Find(ResourceId id) {
  auto it = resources_.find(id);
  return it == resources_.end() ? nullptr : &it->second;
}

void ResourceTable::Erase(ResourceId id) {
  auto it = resources_.find(id);
  if (it == resources_.end()) return;
  host_memory_used_ -= it->second.image.size_bytes();
  resources_.erase(it);
}

void ResourceTable::Clear() {
  resources_.clear();
  host_memory_used_ = 0;
}

}  // namespace vgpu::gpu
