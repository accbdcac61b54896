#include "vhost_user/connection.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

namespace vgpu::vhost_user {

Result<void> Connection::SetReceiveTimeout(int milliseconds) {
  timeval timeout{};
  timeout.tv_sec = milliseconds / 1000;
  timeout.tv_usec = (milliseconds % 1000) * 1000;
  if (setsockopt(socket_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0) {
    return MakeSystemError("setsockopt(SO_RCVTIMEO)");
  }
  return {};
}

Result<void> Connection::ReceiveExactly(uint8_t* destination, size_t length) {
  size_t received = 0;
  while (received < length) {
    ssize_t count = recv(socket_.get(), destination + received, length - received, 0);
    if (count == 0) return MakeError(ErrorKind::kClosed, "frontend closed mid-message");
    if (count < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return MakeError(ErrorKind::kTimedOut, "frontend stalled mid-message");
      }
      return MakeSystemError("recv");
    }
    received += static_cast<size_t>(count);
  }
  return {};
}

Result<ReceivedMessage> Connection::Receive() {
  ReceivedMessage message;
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  iovec io{&message.header, sizeof(message.header)};
  msghdr header{};
  header.msg_iov = &io;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof(control);

  ssize_t count;
  do {
    count = recvmsg(socket_.get(), &header, MSG_CMSG_CLOEXEC);
  } while (count < 0 && errno == EINTR);
  if (count == 0) return MakeError(ErrorKind::kClosed, "frontend closed the connection");
  if (count < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return MakeError(ErrorKind::kTimedOut, "no message within the receive timeout");
    }
    return MakeSystemError("recvmsg");
  }

  // Take ownership of every fd first, so that each error path below closes them.
  for (cmsghdr* item = CMSG_FIRSTHDR(&header); item != nullptr; item = CMSG_NXTHDR(&header, item)) {
    if (item->cmsg_level != SOL_SOCKET || item->cmsg_type != SCM_RIGHTS) continue;
    const size_t fd_count = (item->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < fd_count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(item) + i * sizeof(int), sizeof(int));
      message.fds.emplace_back(fd);
    }
  }
  if (header.msg_flags & MSG_CTRUNC) {
    return MakeError(ErrorKind::kMalformed, "more fds than a vhost-user message may carry");
  }
  if (static_cast<size_t>(count) < sizeof(message.header)) {
    Result<void> rest = ReceiveExactly(reinterpret_cast<uint8_t*>(&message.header) + count,
                                       sizeof(message.header) - static_cast<size_t>(count));
    if (!rest) return ErrorOf(rest);
  }
  if ((message.header.flags & kVersionMask) != kVersion) {
    return MakeError(ErrorKind::kMalformed, "unsupported vhost-user version bits");
  }
  if (message.header.size > kMaxPayloadSize) {
    return MakeError(ErrorKind::kMalformed, "payload size over the protocol's maximum");
  }
  message.payload.resize(message.header.size);
  if (message.header.size > 0) {
    Result<void> payload = ReceiveExactly(message.payload.data(), message.payload.size());
    if (!payload) return ErrorOf(payload);
  }
  return message;
}

Result<void> Connection::Send(const MessageHeader& message_header, std::span<const uint8_t> payload,
                              int fd) {
  iovec io[2] = {{const_cast<MessageHeader*>(&message_header), sizeof(message_header)},
                 {const_cast<uint8_t*>(payload.data()), payload.size()}};
  msghdr header{};
  header.msg_iov = io;
  header.msg_iovlen = payload.empty() ? 1 : 2;
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    header.msg_control = control;
    header.msg_controllen = sizeof(control);
    cmsghdr* item = CMSG_FIRSTHDR(&header);
    item->cmsg_level = SOL_SOCKET;
    item->cmsg_type = SCM_RIGHTS;
    item->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(item), &fd, sizeof(int));
  }
  const size_t total = sizeof(message_header) + payload.size();
  ssize_t sent;
  do {
    sent = sendmsg(socket_.get(), &header, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return MakeSystemError("sendmsg");
  if (static_cast<size_t>(sent) != total) {
    // Replies are small; a short send on a blocking Unix socket means the peer is gone.
    return MakeError(ErrorKind::kClosed, "short write of a reply");
  }
  return {};
}

}  // namespace vgpu::vhost_user
