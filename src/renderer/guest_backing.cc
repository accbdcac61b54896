#include "renderer/guest_backing.h"

#include <algorithm>
#include <cstring>

#include "base/checked_math.h"

namespace vgpu::renderer {

GuestBacking::GuestBacking(std::vector<std::span<uint8_t>> spans) : spans_(std::move(spans)) {
  span_starts_.reserve(spans_.size());
  for (std::span<uint8_t> span : spans_) {
    span_starts_.push_back(size_);
    size_ += span.size();
  }
}

std::vector<iovec> GuestBacking::Iovecs() const {
  std::vector<iovec> iovecs;
  iovecs.reserve(spans_.size());
  for (std::span<uint8_t> span : spans_) iovecs.push_back(iovec{span.data(), span.size()});
  return iovecs;
}

std::pair<size_t, uint64_t> GuestBacking::Locate(uint64_t offset) const {
  // The last span starting at or before offset.
  auto after = std::upper_bound(span_starts_.begin(), span_starts_.end(), offset);
  const size_t index = static_cast<size_t>(after - span_starts_.begin()) - 1;
  return {index, offset - span_starts_[index]};
}

Result<void> GuestBacking::CopyOut(uint64_t offset, std::span<uint8_t> destination) const {
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

Result<void> GuestBacking::CopyIn(uint64_t offset, std::span<const uint8_t> source) const {
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

Result<void> GuestBacking::AppendIovecs(uint64_t offset, uint64_t length,
                                        std::vector<iovec>& iovecs) const {
  if (!RangeFits<uint64_t>(offset, length, size_)) {
    return MakeError(ErrorKind::kOutOfRange, "rows outside the backing");
  }
  if (length == 0) return {};
  auto [index, inner] = Locate(offset);
  uint64_t appended = 0;
  while (appended < length) {
    const std::span<uint8_t> span = spans_[index];
    const size_t piece = std::min<uint64_t>(length - appended, span.size() - inner);
    uint8_t* start = span.data() + inner;
    if (!iovecs.empty() &&
        static_cast<uint8_t*>(iovecs.back().iov_base) + iovecs.back().iov_len == start) {
      iovecs.back().iov_len += piece;
    } else {
      iovecs.push_back(iovec{start, piece});
    }
    appended += piece;
    ++index;
    inner = 0;
  }
  return {};
}

}  // namespace vgpu::renderer
