// ResourceTable: the guest's 2D resources, with the host memory they use capped.
//
//   ResourceTable table(256 << 20);
//   Result<Resource*> resource = table.Insert(ResourceId{1}, std::move(image));
//   Resource* found = table.Find(ResourceId{1});
//   table.Erase(ResourceId{1});
//
// Every byte a resource holds is accounted for, so a guest that creates resources until the cap
// gets errors, never an out-of-memory daemon (QEMU's max_hostmem, commit 9b7621bca2). Beyond
// QEMU, the bookkeeping is charged too: each resource costs kResourceBookkeepingBytes and each
// backing entry kBackingEntryBytes, so a million 1x1 resources, or 16384-entry backings on many
// resources, reach the cap instead of exhausting the host (pixels alone would let a guest make
// ~67 million 1x1 resources under a 256 MiB cap).
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

// What one resource's table entry and image header cost on the heap, rounded up (measured about
// 600 bytes per 1x1 resource through the daemon's RSS).
inline constexpr uint64_t kResourceBookkeepingBytes = 1024;
// One backing entry: its span and start offset here, and an iovec where a renderer keeps one.
inline constexpr uint64_t kBackingEntryBytes = 48;

// A guest resource: host pixels of our own (2D, software) or an object of the 3D renderer.
struct Resource {
  ResourceId id;
  uint32_t width = 0;
  uint32_t height = 0;
  uint64_t host_bytes = 0;     // What it counts against the cap, bookkeeping included.
  uint64_t backing_bytes = 0;  // What its backing's entry table counts against the cap.
  std::optional<renderer::software2d::HostImage> image;  // Software 2D resources only.
  bool in_renderer = false;                              // Created in the 3D renderer.
  std::optional<BackingStore> backing;
  std::optional<std::array<uint8_t, 16>> uuid;
};

class ResourceTable {
 public:
  explicit ResourceTable(uint64_t host_memory_limit) : host_memory_limit_(host_memory_limit) {}

  // Whether `bytes` more would still fit under the cap.
  bool Fits(uint64_t bytes) const;
  // Fails if the id is in use or the image would exceed the cap.
  Result<Resource*> Insert(ResourceId id, renderer::software2d::HostImage image);
  // A resource that lives in the 3D renderer, counted as `host_bytes` against the cap.
  Result<Resource*> InsertRendererResource(ResourceId id, uint32_t width, uint32_t height,
                                           uint64_t host_bytes);
  // Charges the backing's entry table against the cap; fails (keeping nothing) over it.
  Result<void> SetBacking(Resource& resource, BackingStore backing);
  // Whether a backing of `entry_count` entries would fit (before handing it to a renderer).
  bool BackingFits(size_t entry_count) const;
  void ClearBacking(Resource& resource);
  Resource* Find(ResourceId id);
  template <class Visitor>
  void ForEach(Visitor visitor) {
    for (auto& [id, resource] : resources_) visitor(resource);
  }
  void Erase(ResourceId id);
  void Clear();

  size_t count() const { return resources_.size(); }
  uint64_t host_memory_used() const { return host_memory_used_; }
  uint64_t host_memory_limit() const { return host_memory_limit_; }

 private:
  const uint64_t host_memory_limit_;
  uint64_t host_memory_used_ = 0;
  std::map<ResourceId, Resource> resources_;
};

}  // namespace vgpu::gpu
