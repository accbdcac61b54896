// Connection: one vhost-user socket, framing messages and the fds that travel with them.
//
//   Connection connection(std::move(accepted_socket));
//   Result<ReceivedMessage> message = connection.Receive();   // ErrorKind::kClosed on EOF.
//   connection.Send(reply_header, reply_payload);
//
// Receive() reads exactly one message. It is called when the socket is readable; the rest of a
// message that has started to arrive is awaited with the socket's receive timeout, so a frontend
// that stalls mid-message costs a bounded wait, not a hung control thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vhost_user/message.h"

namespace vgpu::vhost_user {

struct ReceivedMessage {
  MessageHeader header{};
  std::vector<uint8_t> payload;  // header.size bytes, frontend-controlled.
  std::vector<UniqueFd> fds;     // Closed automatically unless a handler takes them.
};

class Connection {
 public:
  explicit Connection(UniqueFd socket) : socket_(std::move(socket)) {}

  // Applies the receive timeout used while the rest of a message is awaited.
  Result<void> SetReceiveTimeout(int milliseconds);

  Result<ReceivedMessage> Receive();
  // Sends header + payload with one sendmsg (and an optional fd). Never raises SIGPIPE.
  Result<void> Send(const MessageHeader& header, std::span<const uint8_t> payload, int fd = -1);

  int fd() const { return socket_.get(); }

 private:
  Result<void> ReceiveExactly(uint8_t* destination, size_t length);

  UniqueFd socket_;
};

}  // namespace vgpu::vhost_user
