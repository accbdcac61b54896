// SpanList: the host spans of a chain's readable or writable part, in chain order.
//
//   SpanList spans;
//   spans.push_back(std::span<uint8_t>(bytes, 24));
//   for (std::span<uint8_t> span : spans) ...
//
// Nearly every chain has one or two spans per part (a descriptor, or one crossing into the next
// memory region), so the first kInline live inside the object and only longer chains allocate:
// a popped chain costs no heap allocation (docs/PERFORMANCE.md, "Per command").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

namespace vgpu::virtio {

class SpanList {
 public:
  static constexpr size_t kInline = 4;

  SpanList() = default;
  SpanList(std::initializer_list<std::span<uint8_t>> spans) {
    for (std::span<uint8_t> span : spans) push_back(span);
  }
  SpanList(const SpanList& other) { *this = other; }
  SpanList& operator=(const SpanList& other) {
    if (this == &other) return *this;
    clear();
    for (std::span<uint8_t> span : other) push_back(span);
    return *this;
  }
  SpanList(SpanList&& other) noexcept { *this = std::move(other); }
  SpanList& operator=(SpanList&& other) noexcept {
    if (this == &other) return *this;
    size_ = other.size_;
    inline_ = other.inline_;
    heap_ = std::move(other.heap_);
    other.size_ = 0;
    other.heap_.clear();
    return *this;
  }

  void push_back(std::span<uint8_t> span) {
    if (size_ < kInline) {
      inline_[size_++] = span;
      return;
    }
    if (size_ == kInline) heap_.assign(inline_.begin(), inline_.end());
    heap_.push_back(span);
    ++size_;
  }
  void emplace_back(uint8_t* data, size_t size) { push_back(std::span<uint8_t>(data, size)); }
  // Keeps the heap part's capacity.
  void clear() {
    size_ = 0;
    heap_.clear();
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<uint8_t>* data() { return size_ > kInline ? heap_.data() : inline_.data(); }
  const std::span<uint8_t>* data() const { return size_ > kInline ? heap_.data() : inline_.data(); }
  std::span<uint8_t>& operator[](size_t index) { return data()[index]; }
  const std::span<uint8_t>& operator[](size_t index) const { return data()[index]; }
  std::span<uint8_t>* begin() { return data(); }
  std::span<uint8_t>* end() { return data() + size_; }
  const std::span<uint8_t>* begin() const { return data(); }
  const std::span<uint8_t>* end() const { return data() + size_; }
  std::span<uint8_t>& front() { return data()[0]; }
  std::span<uint8_t>& back() { return data()[size_ - 1]; }

 private:
  size_t size_ = 0;
  std::array<std::span<uint8_t>, kInline> inline_{};
  std::vector<std::span<uint8_t>> heap_;  // All of them, once there are more than kInline.
};

}  // namespace vgpu::virtio
