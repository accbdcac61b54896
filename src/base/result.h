// Result<T>: the error-carrying return type used across the daemon.
//
//   Result<MappedRegion> region = MappedRegion::Map(fd, size, offset);
//   if (!region) {
//     LogError("mapping failed: %s", region.error().message.c_str());
//     return ErrorOf(region);
//   }
//
// Built on tl::expected (Debian's libexpected-dev) so that moving to std::expected later is a
// one-line change.
#pragma once

#include <cerrno>
#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace vgpu {

// What went wrong, coarsely; the message says the rest.
enum class ErrorKind {
  kInvalidArgument,  // Out-of-range or inconsistent input (guest or frontend).
  kMalformed,        // A message that breaks the protocol's framing or layout rules.
  kOutOfRange,       // An address or index outside what is mapped or allowed.
  kResourceExhausted,
  kUnsupported,
  kNotFound,
  kSystem,  // A system call failed; `system_errno` says why.
  kClosed,  // The peer closed the connection.
  kTimedOut,
  kCancelled,  // Given up on request (a termination signal).
  kInternal,
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
  int system_errno = 0;
};

// A value or the Error that stopped it. [[nodiscard]]: a failure cannot be dropped silently;
// where ignoring one is right, the call says so with (void) and a comment.
template <class T>
class [[nodiscard]] Result : public tl::expected<T, Error> {
 public:
  using Base = tl::expected<T, Error>;
  using Base::Base;
  Result(const Base& base) : Base(base) {}        // NOLINT(google-explicit-constructor)
  Result(Base&& base) : Base(std::move(base)) {}  // NOLINT(google-explicit-constructor)
};

// The error of a failed Result, to return from a function with another value type: the one way
// errors are passed up.
//   Result<Image> image = Decode(bytes);
//   if (!image) return ErrorOf(image);
template <class T>
tl::unexpected<Error> ErrorOf(const tl::expected<T, Error>& failed) {
  return tl::unexpected<Error>(failed.error());
}

// Makes an error value: `return MakeError(ErrorKind::kOutOfRange, "ring outside memory");`.
inline tl::unexpected<Error> MakeError(ErrorKind kind, std::string message) {
  return tl::unexpected<Error>(Error{kind, std::move(message), 0});
}

// Makes an error from an errno value; `what` names the failed operation.
tl::unexpected<Error> MakeSystemError(const std::string& what, int error_number = errno);

// The text of an errno value ("Bad file descriptor").
std::string ErrnoText(int error_number);

}  // namespace vgpu
