// FuzzInput: reads the fuzzer's bytes as a stream of little structured values.
//
//   FuzzInput input(data, size);
//   const uint8_t kind = input.Take<uint8_t>();          // Zero once the input has run out.
//   std::span<const uint8_t> bytes = input.TakeBytes(input.Take<uint16_t>());
//
// Running out is never an error: values read past the end are zero and byte spans are cut short,
// so that every input, however short, is a valid one (libFuzzer explores better that way).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

#include "base/log.h"

namespace vgpu::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : bytes_(data, size) {}

  bool empty() const { return offset_ >= bytes_.size(); }
  size_t remaining() const { return bytes_.size() - offset_; }

  template <class T>
  T Take() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value{};
    const size_t count = std::min(sizeof(T), remaining());
    std::memcpy(&value, bytes_.data() + offset_, count);
    offset_ += count;
    return value;
  }

  // Up to `length` bytes (fewer when the input ends first).
  std::span<const uint8_t> TakeBytes(size_t length) {
    const size_t count = std::min(length, remaining());
    std::span<const uint8_t> taken = bytes_.subspan(offset_, count);
    offset_ += count;
    return taken;
  }

  std::span<const uint8_t> TakeRest() { return TakeBytes(remaining()); }

 private:
  std::span<const uint8_t> bytes_;
  size_t offset_ = 0;
};

// The code under test logs every rejected request; while fuzzing that is noise and costs time.
// VGPU_FUZZ_LOG=warning (or debug, trace...) brings it back when looking at one input.
inline void SetFuzzLogLevel() {
  const char* requested = std::getenv("VGPU_FUZZ_LOG");
  std::optional<LogLevel> level = requested != nullptr ? ParseLogLevel(requested) : std::nullopt;
  SetLogLevel(level.value_or(LogLevel::kError));
}

}  // namespace vgpu::fuzz
