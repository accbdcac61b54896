// StrongId: an integer id that cannot be mixed up with another kind of id.
//
//   struct ResourceIdTag {};
//   using ResourceId = StrongId<ResourceIdTag, uint32_t>;
//   ResourceId id{7};
//   uint32_t raw = id.value();
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace vgpu {

template <class Tag, class Value = uint32_t>
class StrongId {
 public:
  using ValueType = Value;

  constexpr StrongId() = default;
  constexpr explicit StrongId(Value value) : value_(value) {}

  constexpr Value value() const { return value_; }

  friend constexpr auto operator<=>(StrongId, StrongId) = default;

 private:
  Value value_ = 0;
};

}  // namespace vgpu

template <class Tag, class Value>
struct std::hash<vgpu::StrongId<Tag, Value>> {
  size_t operator()(vgpu::StrongId<Tag, Value> id) const noexcept {
    return std::hash<Value>()(id.value());
  }
};
