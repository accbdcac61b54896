// Structural checks of vhost-user messages: payload size and fd count.
//
//   Result<VringState> state = PayloadAs<VringState>(message);   // Exact size.
//
// A failure here is a malformed message (ErrorKind::kMalformed): the connection closes.
#pragma once

#include <cstring>
#include <string>
#include <type_traits>

#include "base/result.h"
#include "vhost_user/connection.h"

namespace vgpu::vhost_user {

// Checks that the message carries exactly `expected` fds.
Result<void> ExpectFdCount(const ReceivedMessage& message, size_t expected);

// Copies the payload out as a T after checking that its size is exactly sizeof(T).
template <class T>
Result<T> PayloadAs(const ReceivedMessage& message) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (message.payload.size() != sizeof(T)) {
    return MakeError(ErrorKind::kMalformed, "payload of " + std::to_string(message.payload.size()) +
                                                " bytes, expected " + std::to_string(sizeof(T)));
  }
  T value;
  std::memcpy(&value, message.payload.data(), sizeof(T));
  return value;
}

// A request that carries nothing: no payload, no fds.
Result<void> ExpectEmpty(const ReceivedMessage& message);

}  // namespace vgpu::vhost_user
