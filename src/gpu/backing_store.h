// BackingStore: the guest pages behind a resource (RESOURCE_ATTACH_BACKING's mem_entry list),
// translated once and read with bounds checks.
//
//   Result<BackingStore> backing = BackingStore::Create(memory, entries);  // Validates every
//   entry. backing->CopyOut(offset, destination);                                  // Scatter ->
//   contiguous.
//
// Entries are guest-controlled: each must lie in guest RAM (it may cross from one memory region
// into an adjacent one, which QEMU allows too). The translated spans keep the GuestMemory they
// point into alive, so a later memory table change cannot leave them dangling.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "gpu/protocol.h"
#include "virtio/guest_memory.h"

namespace vgpu::gpu {

// QEMU's limit (virtio-gpu.c: 16384 entries), also the ARCHITECTURE.md default.
inline constexpr uint32_t kMaxBackingEntries = 16384;

class BackingStore {
 public:
  static Result<BackingStore> Create(std::shared_ptr<const virtio::GuestMemory> memory,
                                     std::span<const MemEntry> entries);

  uint64_t size() const { return size_; }
  // Copies destination.size() bytes starting `offset` bytes into the backing; fails (copying
  // nothing) if the range is not inside it.
  Result<void> CopyOut(uint64_t offset, std::span<uint8_t> destination) const;
  // Writes source into the backing at `offset` (TRANSFER_FROM_HOST); same bounds rule.
  Result<void> CopyIn(uint64_t offset, std::span<const uint8_t> source) const;
  const std::vector<std::span<uint8_t>>& spans() const { return spans_; }

 private:
  // The span containing byte `offset`, and the offset inside it.
  std::pair<size_t, uint64_t> Locate(uint64_t offset) const;

  std::shared_ptr<const virtio::GuestMemory> memory_;
  std::vector<std::span<uint8_t>> spans_;
  std::vector<uint64_t> span_starts_;  // Cumulative offsets, for binary search.
  uint64_t size_ = 0;
};

}  // namespace vgpu::gpu
