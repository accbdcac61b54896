// ChainReader / ChainWriter: sequential access to a descriptor chain's readable and writable
// buffers, so that commands are copied out of guest memory (decode before use) and responses are
// copied in without caring where one descriptor ends and the next begins.
//
//   ChainReader reader(chain);
//   std::optional<Header> header = reader.ReadObject<Header>();   // nullopt if truncated.
//   ChainWriter writer(chain);
//   writer.WriteObject(response);
//   queue.PushUsed(chain.head_index, writer.bytes_written());
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

#include "virtio/descriptor_chain.h"

namespace vgpu::virtio {

class ChainReader {
 public:
  explicit ChainReader(const DescriptorChain& chain)
      : spans_(chain.readable), remaining_(chain.readable_length) {}

  uint64_t remaining() const { return remaining_; }

  // Copies exactly destination.size() bytes, or returns false (consuming nothing) if fewer remain.
  bool Read(std::span<uint8_t> destination);
  bool Skip(uint64_t length);

  template <class T>
  std::optional<T> ReadObject() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    if (!Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof(T)))) {
      return std::nullopt;
    }
    return value;
  }

 private:
  std::span<const std::span<uint8_t>> spans_;
  size_t span_index_ = 0;
  size_t offset_in_span_ = 0;
  uint64_t remaining_ = 0;
};

class ChainWriter {
 public:
  explicit ChainWriter(const DescriptorChain& chain)
      : spans_(chain.writable), remaining_(chain.writable_length) {}

  uint64_t remaining() const { return remaining_; }
  uint64_t bytes_written() const { return written_; }

  // Copies all of `source`, or returns false (writing nothing) if it does not fit.
  bool Write(std::span<const uint8_t> source);

  template <class T>
  bool WriteObject(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    return Write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

 private:
  std::span<const std::span<uint8_t>> spans_;
  size_t span_index_ = 0;
  size_t offset_in_span_ = 0;
  uint64_t remaining_ = 0;
  uint64_t written_ = 0;
};

}  // namespace vgpu::virtio
