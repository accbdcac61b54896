// GuestMemory: the guest's RAM as mapped from the frontend's memory regions.
//
//   std::vector<GuestMemoryRegion> regions = ...;          // From SET_MEM_TABLE / ADD_MEM_REG.
//   Result<std::shared_ptr<const GuestMemory>> memory = GuestMemory::Create(std::move(regions));
//   Result<std::span<uint8_t>> bytes = (*memory)->Translate(GuestAddress{0x1000}, 64);
//
// A GuestMemory is immutable once created; a new memory table makes a new one. Holders (queues,
// pending commands) keep it alive through shared_ptr, so a mapping is never unmapped under a user.
// Every address here is guest-controlled: each translation checks bounds with overflow-safe math.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/mapped_region.h"
#include "base/result.h"
#include "base/strong_id.h"

namespace vgpu::virtio {

struct GuestAddressTag {};
using GuestAddress = StrongId<GuestAddressTag, uint64_t>;

struct GuestMemoryRegion {
  uint64_t guest_address = 0;  // Guest physical address of the first byte.
  uint64_t size = 0;
  uint64_t user_address = 0;  // The frontend's virtual address of the first byte (vring addresses).
  std::shared_ptr<const MappedRegion> mapping;  // At least `size` bytes.

  uint8_t* host() const { return mapping->data(); }
};

class GuestMemory {
 public:
  // Checks that regions are non-empty, fit their mappings, do not wrap the address space and do
  // not overlap in guest-physical or frontend-virtual space.
  static Result<std::shared_ptr<const GuestMemory>> Create(std::vector<GuestMemoryRegion> regions);

  // The host bytes of [address, address + length), which must lie inside one region.
  Result<std::span<uint8_t>> Translate(GuestAddress address, uint64_t length) const;

  // Appends the host spans covering [address, address + length), which may cross from one region
  // into an adjacent one, to `spans` (a SpanList or a vector of spans). Fails if any byte is
  // unmapped or `spans` would hold more than `max_spans`.
  template <class Spans>
  Result<void> TranslateRange(GuestAddress address, uint64_t length, Spans& spans,
                              size_t max_spans) const {
    if (Result<void> valid = CheckNoWrap(address, length); !valid) return valid;
    uint64_t current = address.value();
    uint64_t remaining = length;
    while (remaining > 0) {
      Result<std::span<uint8_t>> piece = PieceAt(current, remaining);
      if (!piece) return ErrorOf(piece);
      if (spans.size() >= max_spans) return TooManyPieces();
      spans.push_back(*piece);
      current += piece->size();
      remaining -= piece->size();
    }
    return {};
  }

  // The host bytes of a frontend-virtual range (vring addresses), inside one region.
  Result<std::span<uint8_t>> TranslateUserAddress(uint64_t user_address, uint64_t length) const;

  // Copies guest memory out / in; the range may cross adjacent regions.
  Result<void> Read(GuestAddress address, std::span<uint8_t> destination) const;
  Result<void> Write(GuestAddress address, std::span<const uint8_t> source) const;

  const std::vector<GuestMemoryRegion>& regions() const { return regions_; }
  uint64_t total_size() const;

 private:
  explicit GuestMemory(std::vector<GuestMemoryRegion> regions) : regions_(std::move(regions)) {}
  // The region containing `address`, or nullptr.
  const GuestMemoryRegion* FindRegion(uint64_t address) const;
  static Result<void> CheckNoWrap(GuestAddress address, uint64_t length);
  // The host bytes from `address` to the end of its region, at most `length` of them.
  Result<std::span<uint8_t>> PieceAt(uint64_t address, uint64_t length) const;
  static Result<void> TooManyPieces();

  std::vector<GuestMemoryRegion> regions_;  // Sorted by guest_address.
};

}  // namespace vgpu::virtio
