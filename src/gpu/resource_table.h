// ResourceTable: the guest's 2D resources, with the host memory they use capped.
//
//   ResourceTable table(256 << 20);
//   Result<Resource2d*> resource = table.Create(ResourceId{1}, std::move(image));
//   Resource2d* found = table.Find(ResourceId{1});
//   table.Erase(ResourceId{1});
//
// Every byte a resource holds is accounted for, so a guest that creates resources until the cap
// gets errors, never an out-of-memory daemon (QEMU's max_hostmem, commit 9b7621bca2).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>

#include "base/result.h"
#include "gpu/backing_store.h"
#include "gpu/ids.h"
#include "renderer/software2d/host_image.h"

namespace vgpu::gpu {

struct Resource2d {
  ResourceId id;
  renderer::software2d::HostImage image;
  std::optional<BackingStore> backing;
  std::optional<std::array<uint8_t, 16>> uuid;
};

class ResourceTable {
 public:
  explicit ResourceTable(uint64_t host_memory_limit) : host_memory_limit_(host_memory_limit) {}

  // Whether `bytes` more would still fit under the cap.
  bool Fits(uint64_t bytes) const;
  // Fails if the id is in use or the image would exceed the cap.
  Result<Resource2d*> Insert(ResourceId id, renderer::software2d::HostImage image);
  Resource2d* Find(ResourceId id);
  void Erase(ResourceId id);
  void Clear();

  size_t count() const { return resources_.size(); }
  uint64_t host_memory_used() const { return host_memory_used_; }
  uint64_t host_memory_limit() const { return host_memory_limit_; }

 private:
  const uint64_t host_memory_limit_;
  uint64_t host_memory_used_ = 0;
  std::map<ResourceId, Resource2d> resources_;
};

}  // namespace vgpu::gpu
