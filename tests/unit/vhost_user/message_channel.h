// A socketpair with a Connection on the backend end and helpers to write raw frontend messages
// on the other, for testing the vhost-user layer without a process boundary.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "base/unique_fd.h"
#include "vhost_user/connection.h"
#include "vhost_user/message.h"

namespace vgpu::vhost_user::testing {

class MessageChannel {
 public:
  MessageChannel() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    frontend_ = UniqueFd(fds[0]);
    backend_ = std::make_unique<Connection>(UniqueFd(fds[1]));
    EXPECT_TRUE(backend_->SetReceiveTimeout(200));
  }

  // Sends raw bytes with optional fds attached, as the frontend would.
  void SendBytes(const void* bytes, size_t length, const std::vector<int>& fds = {}) {
    iovec io{const_cast<void*>(bytes), length};
    msghdr header{};
    header.msg_iov = &io;
    header.msg_iovlen = 1;
    std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
      header.msg_control = control.data();
      header.msg_controllen = control.size();
      cmsghdr* item = CMSG_FIRSTHDR(&header);
      item->cmsg_level = SOL_SOCKET;
      item->cmsg_type = SCM_RIGHTS;
      item->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(item), fds.data(), sizeof(int) * fds.size());
    }
    ASSERT_EQ(sendmsg(frontend_.get(), &header, MSG_NOSIGNAL), static_cast<ssize_t>(length));
  }

  void Send(Request request, const void* payload, uint32_t size, const std::vector<int>& fds = {},
            uint32_t flags = kVersion) {
    std::vector<uint8_t> bytes(sizeof(MessageHeader) + size);
    MessageHeader header{static_cast<uint32_t>(request), flags, size};
    std::memcpy(bytes.data(), &header, sizeof(header));
    if (size > 0) std::memcpy(bytes.data() + sizeof(header), payload, size);
    SendBytes(bytes.data(), bytes.size(), fds);
  }

  template <class T>
  void SendObject(Request request, const T& payload, const std::vector<int>& fds = {},
                  uint32_t flags = kVersion) {
    Send(request, &payload, sizeof(T), fds, flags);
  }

  // Reads one reply if one arrives within `timeout_ms`.
  std::optional<std::pair<MessageHeader, std::vector<uint8_t>>> ReadReply(int timeout_ms = 500) {
    pollfd poll_fd{frontend_.get(), POLLIN, 0};
    if (poll(&poll_fd, 1, timeout_ms) != 1) return std::nullopt;
    MessageHeader header{};
    if (recv(frontend_.get(), &header, sizeof(header), MSG_WAITALL) != sizeof(header)) {
      return std::nullopt;
    }
    std::vector<uint8_t> payload(header.size);
    if (header.size > 0 && recv(frontend_.get(), payload.data(), payload.size(), MSG_WAITALL) !=
                               static_cast<ssize_t>(payload.size())) {
      return std::nullopt;
    }
    return std::make_pair(header, payload);
  }

  bool NoReplyPending() {
    pollfd poll_fd{frontend_.get(), POLLIN, 0};
    return poll(&poll_fd, 1, 0) == 0;
  }

  Connection& backend() { return *backend_; }
  int frontend_fd() const { return frontend_.get(); }
  void CloseFrontend() { frontend_.reset(); }

 private:
  UniqueFd frontend_;
  std::unique_ptr<Connection> backend_;
};

}  // namespace vgpu::vhost_user::testing
