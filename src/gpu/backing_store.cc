#include "gpu/backing_store.h"

#include <algorithm>
#include <cstring>

#include "base/checked_math.h"

namespace vgpu::gpu {

Result<BackingStore> BackingStore::Create(std::shared_ptr<const virtio::GuestMemory> memory,
                                          std::span<const MemEntry> entries) {
  if (entries.empty() || entries.size() > kMaxBackingEntries) {
    return MakeError(ErrorKind::kInvalidArgument, "backing entry count out of range");
  }
  BackingStore store;
  // Each entry adds at most one span per memory region it crosses.
  const size_t max_spans = entries.size() * memory->regions().size();
  for (const MemEntry& entry : entries) {
    if (entry.length == 0) {
      return MakeError(ErrorKind::kInvalidArgument, "backing entry of length zero");
    }
    const size_t before = store.spans_.size();
    Result<void> translated = memory->TranslateRange(virtio::GuestAddress{entry.addr}, entry.length,
                                                     store.spans_, max_spans);
    if (!translated) {
      return MakeError(ErrorKind::kOutOfRange, "backing entry outside guest memory");
    }
    for (size_t i = before; i < store.spans_.size(); ++i) {
      store.span_starts_.push_back(store.size_);
      store.size_ += store.spans_[i].size();
    }
  }
  store.memory_ = std::move(memory);
  return store;
}

std::pair<size_t, uint64_t> BackingStore::Locate(uint64_t offset) const {
  // The last span starting at or before offset.
  auto after = std::upper_bound(span_starts_.begin(), span_starts_.end(), offset);
  const size_t index = static_cast<size_t>(after - span_starts_.begin()) - 1;
  return {index, offset - span_starts_[index]};
}

Result<void> BackingStore::CopyOut(uint64_t offset, std::span<uint8_t> destination) const {
  if (!RangeFits<uint64_t>(offset, destination.size(), size_)) {
    return MakeError(ErrorKind::kOutOfRange, "transfer outside the backing");
  }
  if (destination.empty()) return {};
  auto [index, inner] = Locate(offset);
  size_t copied = 0;
  while (copied < destination.size()) {
    const std::span<uint8_t> span = spans_[index];
    const size_t piece = std::min<uint64_t>(destination.size() - copied, span.size() - inner);
    std::memcpy(destination.data() + copied, span.data() + inner, piece);
    copied += piece;
    ++index;
    inner = 0;
  }
  return {};
}

Result<void> BackingStore::CopyIn(uint64_t offset, std::span<const uint8_t> source) const {
  if (!RangeFits<uint64_t>(offset, source.size(), size_)) {
    return MakeError(ErrorKind::kOutOfRange, "transfer outside the backing");
  }
  if (source.empty()) return {};
  auto [index, inner] = Locate(offset);
  size_t copied = 0;
  while (copied < source.size()) {
    const std::span<uint8_t> span = spans_[index];
    const size_t piece = std::min<uint64_t>(source.size() - copied, span.size() - inner);
    std::memcpy(span.data() + inner, source.data() + copied, piece);
    copied += piece;
    ++index;
    inner = 0;
  }
  return {};
}

}  // namespace vgpu::gpu
