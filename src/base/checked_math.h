// Overflow-checked arithmetic for values that come from the guest or the frontend.
//
//   std::optional<uint64_t> end = CheckedAdd<uint64_t>(address, length);
//   if (!end || *end > region_end) return Reject();
//
// Each function returns std::nullopt when the exact result does not fit in T.
#pragma once

#include <optional>
#include <type_traits>

namespace vgpu {

template <class T, class A, class B>
constexpr std::optional<T> CheckedAdd(A a, B b) {
  static_assert(std::is_integral_v<T> && std::is_integral_v<A> && std::is_integral_v<B>);
  T result{};
  if (__builtin_add_overflow(a, b, &result)) return std::nullopt;
  return result;
}

template <class T, class A, class B>
constexpr std::optional<T> CheckedMul(A a, B b) {
  static_assert(std::is_integral_v<T> && std::is_integral_v<A> && std::is_integral_v<B>);
  T result{};
  if (__builtin_mul_overflow(a, b, &result)) return std::nullopt;
  return result;
}

template <class T, class A, class B>
constexpr std::optional<T> CheckedSub(A a, B b) {
  static_assert(std::is_integral_v<T> && std::is_integral_v<A> && std::is_integral_v<B>);
  T result{};
  if (__builtin_sub_overflow(a, b, &result)) return std::nullopt;
  return result;
}

// True when [offset, offset + length) lies inside [0, limit), computed without overflow.
template <class T>
constexpr bool RangeFits(T offset, T length, T limit) {
  static_assert(std::is_unsigned_v<T>);
  return offset <= limit && length <= limit - offset;
}

}  // namespace vgpu
