// BackingStore: the guest pages behind a resource (RESOURCE_ATTACH_BACKING's mem_entry list),
// translated once into host spans and kept mapped while the resource holds them.
//
//   Result<BackingStore> backing = BackingStore::Create(memory, entries);  // Validates every
//   entry. renderer.AttachBacking(id, backing->view());                           // What renderers
//   read.
//
// Entries are guest-controlled: each must lie in guest RAM (it may cross from one memory region
// into an adjacent one, which QEMU allows too). The store keeps the GuestMemory its spans point
// into alive, so a later memory table change cannot leave them dangling.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "base/result.h"
#include "gpu/protocol.h"
#include "renderer/guest_backing.h"
#include "virtio/guest_memory.h"

namespace vgpu::gpu {

class BackingStore {
 public:
  static Result<BackingStore> Create(std::shared_ptr<const virtio::GuestMemory> memory,
                                     std::span<const MemEntry> entries);

  const renderer::GuestBacking& view() const { return backing_; }
  uint64_t size() const { return backing_.size(); }
  size_t span_count() const { return backing_.spans().size(); }

 private:
  std::shared_ptr<const virtio::GuestMemory> memory_;
  renderer::GuestBacking backing_;
};

}  // namespace vgpu::gpu
