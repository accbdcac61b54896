#include "virtio/chain_io.h"

#include <algorithm>
#include <cstring>

namespace vgpu::virtio {

bool ChainReader::Read(std::span<uint8_t> destination) {
  if (destination.size() > remaining_) return false;
  size_t copied = 0;
  while (copied < destination.size()) {
    std::span<uint8_t> span = spans_[span_index_];
    const size_t piece = std::min(destination.size() - copied, span.size() - offset_in_span_);
    std::memcpy(destination.data() + copied, span.data() + offset_in_span_, piece);
    copied += piece;
    offset_in_span_ += piece;
    if (offset_in_span_ == span.size()) {
      ++span_index_;
      offset_in_span_ = 0;
    }
  }
  remaining_ -= destination.size();
  return true;
}

bool ChainReader::Skip(uint64_t length) {
  if (length > remaining_) return false;
  uint64_t skipped = 0;
  while (skipped < length) {
    const size_t available = spans_[span_index_].size() - offset_in_span_;
    const uint64_t piece = std::min<uint64_t>(length - skipped, available);
    skipped += piece;
    offset_in_span_ += static_cast<size_t>(piece);
    if (offset_in_span_ == spans_[span_index_].size()) {
      ++span_index_;
      offset_in_span_ = 0;
    }
  }
  remaining_ -= length;
  return true;
}

bool ChainWriter::Write(std::span<const uint8_t> source) {
  if (source.size() > remaining_) return false;
  size_t copied = 0;
  while (copied < source.size()) {
    std::span<uint8_t> span = spans_[span_index_];
    const size_t piece = std::min(source.size() - copied, span.size() - offset_in_span_);
    std::memcpy(span.data() + offset_in_span_, source.data() + copied, piece);
    copied += piece;
    offset_in_span_ += piece;
    if (offset_in_span_ == span.size()) {
      ++span_index_;
      offset_in_span_ = 0;
    }
  }
  remaining_ -= source.size();
  written_ += source.size();
  return true;
}

}  // namespace vgpu::virtio
