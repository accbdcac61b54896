#include "virtio/guest_memory.h"

#include <algorithm>
#include <cstring>

#include "base/checked_math.h"

namespace vgpu::virtio {

Result<std::shared_ptr<const GuestMemory>> GuestMemory::Create(
    std::vector<GuestMemoryRegion> regions) {
  for (const GuestMemoryRegion& region : regions) {
    if (region.size == 0) return MakeError(ErrorKind::kInvalidArgument, "empty memory region");
    if (!region.mapping || region.mapping->size() < region.size) {
      return MakeError(ErrorKind::kInvalidArgument, "memory region larger than its mapping");
    }
    // The last byte's address must be representable: [start, start + size) may end at 2^64.
    if (!CheckedAdd<uint64_t>(region.guest_address, region.size - 1) ||
        !CheckedAdd<uint64_t>(region.user_address, region.size - 1)) {
      return MakeError(ErrorKind::kOutOfRange, "memory region wraps the address space");
    }
  }
  for (size_t i = 0; i < regions.size(); ++i) {
    for (size_t j = i + 1; j < regions.size(); ++j) {
      // Compare through the last byte to stay clear of overflow at the top of the space.
      const GuestMemoryRegion& a = regions[i];
      const GuestMemoryRegion& b = regions[j];
      if (a.guest_address <= b.guest_address + (b.size - 1) &&
          b.guest_address <= a.guest_address + (a.size - 1)) {
        return MakeError(ErrorKind::kInvalidArgument, "memory regions overlap (guest physical)");
      }
      if (a.user_address <= b.user_address + (b.size - 1) &&
          b.user_address <= a.user_address + (a.size - 1)) {
        return MakeError(ErrorKind::kInvalidArgument, "memory regions overlap (frontend virtual)");
      }
    }
  }
  std::sort(regions.begin(), regions.end(),
            [](const GuestMemoryRegion& a, const GuestMemoryRegion& b) {
              return a.guest_address < b.guest_address;
            });
  return std::shared_ptr<const GuestMemory>(new GuestMemory(std::move(regions)));
}

uint64_t GuestMemory::total_size() const {
  uint64_t total = 0;
  for (const GuestMemoryRegion& region : regions_) total += region.size;
  return total;
}

const GuestMemoryRegion* GuestMemory::FindRegion(uint64_t address) const {
  // The first region starting after `address`; the candidate is the one before it.
  auto after = std::upper_bound(
      regions_.begin(), regions_.end(), address,
      [](uint64_t value, const GuestMemoryRegion& region) { return value < region.guest_address; });
  if (after == regions_.begin()) return nullptr;
  const GuestMemoryRegion& candidate = *(after - 1);
  if (address - candidate.guest_address >= candidate.size) return nullptr;
  return &candidate;
}

Result<std::span<uint8_t>> GuestMemory::Translate(GuestAddress address, uint64_t length) const {
  const GuestMemoryRegion* region = FindRegion(address.value());
  if (region == nullptr) return MakeError(ErrorKind::kOutOfRange, "guest address not mapped");
  const uint64_t offset = address.value() - region->guest_address;
  // Bounds: offset < size (FindRegion), so size - offset cannot underflow.
  if (length > region->size - offset) {
    return MakeError(ErrorKind::kOutOfRange, "guest range crosses the end of its region");
  }
  return std::span<uint8_t>(region->host() + offset, static_cast<size_t>(length));
}

Result<void> GuestMemory::CheckNoWrap(GuestAddress address, uint64_t length) {
  if (!CheckedAdd<uint64_t>(address.value(), length)) {
    return MakeError(ErrorKind::kOutOfRange, "guest range wraps the address space");
  }
  return {};
}

Result<std::span<uint8_t>> GuestMemory::PieceAt(uint64_t address, uint64_t length) const {
  const GuestMemoryRegion* region = FindRegion(address);
  if (region == nullptr) return MakeError(ErrorKind::kOutOfRange, "guest address not mapped");
  const uint64_t offset = address - region->guest_address;
  // Bounds: offset < size (FindRegion), so size - offset cannot underflow.
  const uint64_t piece = std::min(length, region->size - offset);
  return std::span<uint8_t>(region->host() + offset, static_cast<size_t>(piece));
}

Result<void> GuestMemory::TooManyPieces() {
  return MakeError(ErrorKind::kResourceExhausted, "guest range needs too many pieces");
}

Result<std::span<uint8_t>> GuestMemory::TranslateUserAddress(uint64_t user_address,
                                                             uint64_t length) const {
  for (const GuestMemoryRegion& region : regions_) {
    if (user_address < region.user_address) continue;
    const uint64_t offset = user_address - region.user_address;
    if (offset >= region.size) continue;
    if (length > region.size - offset) {
      return MakeError(ErrorKind::kOutOfRange, "ring crosses the end of its memory region");
    }
    return std::span<uint8_t>(region.host() + offset, static_cast<size_t>(length));
  }
  return MakeError(ErrorKind::kOutOfRange, "frontend address not in any memory region");
}

Result<void> GuestMemory::Read(GuestAddress address, std::span<uint8_t> destination) const {
  if (Result<void> valid = CheckNoWrap(address, destination.size()); !valid) return valid;
  // On failure part of `destination` may have been written; it is the caller's, and unused then.
  size_t copied = 0;
  while (copied < destination.size()) {
    Result<std::span<uint8_t>> piece =
        PieceAt(address.value() + copied, destination.size() - copied);
    if (!piece) return ErrorOf(piece);
    std::memcpy(destination.data() + copied, piece->data(), piece->size());
    copied += piece->size();
  }
  return {};
}

Result<void> GuestMemory::Write(GuestAddress address, std::span<const uint8_t> source) const {
  if (Result<void> valid = CheckNoWrap(address, source.size()); !valid) return valid;
  // Every byte is checked before any is written: a range that is partly unmapped writes nothing.
  size_t written = 0;
  while (written < source.size()) {
    Result<std::span<uint8_t>> piece = PieceAt(address.value() + written, source.size() - written);
    if (!piece) return ErrorOf(piece);
    written += piece->size();
  }
  written = 0;
  while (written < source.size()) {
    std::span<uint8_t> piece = *PieceAt(address.value() + written, source.size() - written);
    std::memcpy(piece.data(), source.data() + written, piece.size());
    written += piece.size();
  }
  return {};
}

}  // namespace vgpu::virtio
