// Result<T>: the error-carrying return type used across the daemon.
//
//   Result<MappedRegion> region = MappedRegion::Map(fd, size, offset);
//   if (!region) {
//     LogError("mapping failed: %s", region.error().message.c_str());
//     return tl::unexpected(region.error());
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

template <class T>
using Result = tl::expected<T, Error>;

// Makes an error value: `return MakeError(ErrorKind::kOutOfRange, "ring outside memory");`.
inline tl::unexpected<Error> MakeError(ErrorKind kind, std::string message) {
  return tl::unexpected<Error>(Error{kind, std::move(message), 0});
}

// Makes an error from an errno value; `what` names the failed operation.
tl::unexpected<Error> MakeSystemError(const std::string& what, int error_number = errno);

// The text of an errno value ("Bad file descriptor").
std::string ErrnoText(int error_number);

}  // namespace vgpu
