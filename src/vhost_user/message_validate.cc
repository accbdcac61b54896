#include "vhost_user/message_validate.h"

namespace vgpu::vhost_user {

Result<void> ExpectFdCount(const ReceivedMessage& message, size_t expected) {
  if (message.fds.size() != expected) {
    return MakeError(
        ErrorKind::kMalformed,
        std::to_string(message.fds.size()) + " fds attached, expected " + std::to_string(expected));
  }
  return {};
}

Result<void> ExpectEmpty(const ReceivedMessage& message) {
  if (!message.payload.empty()) {
    return MakeError(ErrorKind::kMalformed, "unexpected payload");
  }
  return ExpectFdCount(message, 0);
}

}  // namespace vgpu::vhost_user
