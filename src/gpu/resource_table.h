// ResourceTable: the guest's resources, the one place that knows which ids exist, with the host
// memory they use capped.
//
//   ResourceTable table(256 << 20);
//   if (!table.Fits(bytes)) return Fail(Failure::kOutOfMemory, ...);
//   Result<Resource*> resource = table.Insert(id, &software, width, height, bytes);
//   Resource* found = table.Find(id);
//   table.Erase(id);
//
// Every byte a resource holds is accounted for, so a guest that creates resources until the cap
// gets errors, never an out-of-memory daemon (QEMU's max_hostmem). Beyond QEMU, the bookkeeping
// is charged too: each resource costs kResourceBookkeepingBytes and each backing entry
// kBackingEntryBytes, so a million 1x1 resources, or 16384-entry backings on many resources,
// reach the cap instead of exhausting the host.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>

#include "base/result.h"
#include "gpu/backing_store.h"
#include "gpu/protocol.h"
#include "renderer/renderer.h"

namespace vgpu::gpu {

// What one resource's table entry and its renderer's per-resource state cost on the heap,
// rounded up (measured about 600 bytes per 1x1 resource through the daemon's RSS).
inline constexpr uint64_t kResourceBookkeepingBytes = 1024;
// One backing entry: its span and start offset here, and an iovec where a renderer keeps one.
inline constexpr uint64_t kBackingEntryBytes = 48;

// What RESOURCE_CREATE_BLOB said of a blob (§5.7.6.8), and where it is mapped.
struct BlobInfo {
  uint32_t blob_mem = 0;
  uint32_t blob_flags = 0;
  uint64_t size = 0;
  // Its place in the host-visible region while RESOURCE_MAP_BLOB has it mapped there.
  std::optional<uint64_t> mapped_offset;
};

struct Resource {
  ResourceId id;
  // Where it lives: the software renderer (RESOURCE_CREATE_2D) or the 3D one.
  renderer::Renderer* renderer = nullptr;
  bool three_d = false;  // Made by RESOURCE_CREATE_3D.
  uint32_t width = 0;
  uint32_t height = 0;
  uint64_t host_bytes = 0;     // What it counts against the cap, bookkeeping included.
  uint64_t backing_bytes = 0;  // What its backing's entry table counts against the cap.
  std::optional<BackingStore> backing;
  std::optional<std::array<uint8_t, 16>> uuid;
  // A blob (RESOURCE_CREATE_BLOB) has no width or height of its own: SET_SCANOUT_BLOB says how
  // its bytes are laid out. A guest blob's pixels are its backing.
  std::optional<BlobInfo> blob;
  bool guest_memory_blob() const { return blob && blob->blob_mem != kBlobMemHost3d; }
  // The display's loan of its pixels' pages, from its last UPDATE sent that way
  // (DisplayChannel::SendUpdateLending); 0: none.
  uint64_t display_loan = 0;
};

class ResourceTable {
 public:
  explicit ResourceTable(uint64_t host_memory_limit) : host_memory_limit_(host_memory_limit) {}

  // Whether `bytes` more would still fit under the cap.
  bool Fits(uint64_t bytes) const;
  // A resource in `renderer`, counted as `bytes` (plus bookkeeping) against the cap. Fails if
  // the id is in use or it would exceed the cap.
  Result<Resource*> Insert(ResourceId id, renderer::Renderer* renderer, bool three_d,
                           uint32_t width, uint32_t height, uint64_t bytes);
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
