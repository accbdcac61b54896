#include "support/vhost_user_frontend.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace vgpu::test {

using vhost_user::MessageHeader;
using vhost_user::Request;

namespace {

constexpr const char* kNackPrefix = "nack";

std::span<const uint8_t> BytesOf(const auto& object) {
  return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&object), sizeof(object));
}

std::string Describe(Request request) {
  return vhost_user::RequestName(static_cast<uint32_t>(request));
}

}  // namespace

bool IsNack(const Error& error) { return error.message.rfind(kNackPrefix, 0) == 0; }
bool IsClosed(const Error& error) { return error.kind == ErrorKind::kClosed; }

Result<VhostUserFrontend> VhostUserFrontend::Connect(const std::string& path,
                                                     std::chrono::milliseconds timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    return MakeError(ErrorKind::kInvalidArgument, "socket path too long");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!socket) return MakeSystemError("socket");
    if (connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
      return VhostUserFrontend(std::move(socket));
    }
    const int error = errno;
    if (error != ENOENT && error != ECONNREFUSED && error != EAGAIN) {
      return MakeSystemError("connect " + path, error);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return MakeError(ErrorKind::kTimedOut, "connect " + path + ": " + ErrnoText(error));
    }
    // Nothing signals "the daemon is listening now"; retry at a short interval.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Result<void> VhostUserFrontend::SendBytes(std::span<const uint8_t> bytes,
                                          std::span<const int> fds) {
  if (!socket_) return MakeError(ErrorKind::kClosed, "frontend socket closed");
  iovec vector{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr message{};
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int) * 16)] = {};
  if (!fds.empty()) {
    if (fds.size() > 16) return MakeError(ErrorKind::kInvalidArgument, "too many fds");
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
  }
  if (bytes.empty()) return {};
  size_t sent_total = 0;
  while (sent_total < bytes.size()) {
    const ssize_t sent = sendmsg(socket_.get(), &message, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) {
        return MakeError(ErrorKind::kClosed, "send: " + ErrnoText(errno));
      }
      return MakeSystemError("sendmsg");
    }
    sent_total += static_cast<size_t>(sent);
    // The fds went with the first bytes; the rest (rare on a Unix socket) goes without them.
    vector.iov_base = const_cast<uint8_t*>(bytes.data()) + sent_total;
    vector.iov_len = bytes.size() - sent_total;
    message.msg_control = nullptr;
    message.msg_controllen = 0;
  }
  return {};
}

Result<void> VhostUserFrontend::SendRaw(const MessageHeader& header,
                                        std::span<const uint8_t> payload,
                                        std::span<const int> fds) {
  std::vector<uint8_t> bytes(sizeof(header) + payload.size());
  std::memcpy(bytes.data(), &header, sizeof(header));
  if (!payload.empty()) std::memcpy(bytes.data() + sizeof(header), payload.data(), payload.size());
  return SendBytes(bytes, fds);
}

Result<ReceivedReply> VhostUserFrontend::ReceiveRaw(std::chrono::milliseconds timeout) {
  if (!socket_) return MakeError(ErrorKind::kClosed, "frontend socket closed");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ReceivedReply reply;
  auto receive = [&](uint8_t* destination, size_t length, bool with_fds) -> Result<void> {
    size_t received_total = 0;
    while (received_total < length) {
      const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd descriptor{socket_.get(), POLLIN, 0};
      const int ready =
          poll(&descriptor, 1, static_cast<int>(std::max<int64_t>(0, remaining.count())));
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0) return MakeSystemError("poll");
      if (ready == 0) return MakeError(ErrorKind::kTimedOut, "no reply from the daemon");
      iovec vector{destination + received_total, length - received_total};
      msghdr message{};
      message.msg_iov = &vector;
      message.msg_iovlen = 1;
      alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int) * 8)] = {};
      if (with_fds) {
        message.msg_control = control;
        message.msg_controllen = sizeof(control);
      }
      const ssize_t received = recvmsg(socket_.get(), &message, MSG_CMSG_CLOEXEC);
      if (received < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        if (errno == ECONNRESET) return MakeError(ErrorKind::kClosed, "connection reset");
        return MakeSystemError("recvmsg");
      }
      if (received == 0) return MakeError(ErrorKind::kClosed, "daemon closed the connection");
      for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
           header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        const size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t position = 0; position < count; ++position) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(header) + position * sizeof(int), sizeof(int));
          reply.fds.emplace_back(fd);
        }
      }
      received_total += static_cast<size_t>(received);
    }
    return {};
  };
  if (Result<void> header =
          receive(reinterpret_cast<uint8_t*>(&reply.header), sizeof(reply.header), true);
      !header) {
    return ErrorOf(header);
  }
  if (reply.header.size > vhost_user::kMaxPayloadSize) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "bad reply: payload size " + std::to_string(reply.header.size));
  }
  reply.payload.resize(reply.header.size);
  if (reply.header.size > 0) {
    if (Result<void> payload = receive(reply.payload.data(), reply.payload.size(), false);
        !payload) {
      return ErrorOf(payload);
    }
  }
  return reply;
}

PeerActivity VhostUserFrontend::WaitForClose(std::chrono::milliseconds timeout) {
  if (!socket_) return PeerActivity::kClosed;
  pollfd descriptor{socket_.get(), POLLIN | POLLRDHUP, 0};
  int ready = 0;
  do {
    ready = poll(&descriptor, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return PeerActivity::kTimedOut;
  uint8_t buffer[4096];
  const ssize_t received = recv(socket_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
  if (received == 0 || (received < 0 && errno == ECONNRESET)) return PeerActivity::kClosed;
  if (received > 0) return PeerActivity::kSentData;
  return PeerActivity::kTimedOut;
}

Result<ReceivedReply> VhostUserFrontend::ReceiveReply(Request request) {
  Result<ReceivedReply> reply = ReceiveRaw(reply_timeout_);
  if (!reply) {
    reply.error().message = Describe(request) + ": " + reply.error().message;
    return reply;
  }
  // QEMU's vhost_user_read_header(): exactly version 1 | REPLY.
  if (reply->header.flags != vhost_user::kReplyFlags) {
    return MakeError(
        ErrorKind::kInvalidArgument, "bad reply: " + Describe(request) + " reply flags 0x" + [&] {
          char text[16];
          std::snprintf(text, sizeof(text), "%x", reply->header.flags);
          return std::string(text);
        }() + ", expected 0x5");
  }
  if (reply->header.request != static_cast<uint32_t>(request)) {
    return MakeError(ErrorKind::kInvalidArgument, "bad reply: " + Describe(request) +
                                                      " answered with request " +
                                                      std::to_string(reply->header.request));
  }
  if (!reply->fds.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "bad reply: " + Describe(request) + " reply carries fds");
  }
  return reply;
}

Result<uint64_t> VhostUserFrontend::ReceiveU64Reply(Request request) {
  Result<ReceivedReply> reply = ReceiveReply(request);
  if (!reply) return ErrorOf(reply);
  if (reply->header.size != sizeof(uint64_t)) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "bad reply: " + Describe(request) + " reply size " +
                         std::to_string(reply->header.size) + ", expected 8");
  }
  uint64_t value = 0;
  std::memcpy(&value, reply->payload.data(), sizeof(value));
  return value;
}

Result<void> VhostUserFrontend::ReceiveAck(Request request) {
  Result<uint64_t> ack = ReceiveU64Reply(request);
  if (!ack) return ErrorOf(ack);
  if (*ack != 0) {
    return MakeError(ErrorKind::kInvalidArgument, std::string(kNackPrefix) + ": " +
                                                      Describe(request) + " acked with " +
                                                      std::to_string(*ack));
  }
  return {};
}

Result<void> VhostUserFrontend::SendRequest(Request request, std::span<const uint8_t> payload,
                                            std::span<const int> fds, bool want_ack) {
  const bool need_reply = want_ack && reply_ack_;
  MessageHeader header{static_cast<uint32_t>(request),
                       vhost_user::kVersion | (need_reply ? vhost_user::kNeedReplyFlag : 0u),
                       static_cast<uint32_t>(payload.size())};
  if (Result<void> sent = SendRaw(header, payload, fds); !sent) {
    sent.error().message = Describe(request) + ": " + sent.error().message;
    return sent;
  }
  if (need_reply) return ReceiveAck(request);
  return {};
}

Result<uint64_t> VhostUserFrontend::GetU64(Request request) {
  if (Result<void> sent = SendRequest(request, {}, {}, false); !sent) {
    return ErrorOf(sent);
  }
  return ReceiveU64Reply(request);
}

Result<void> VhostUserFrontend::SetU64(Request request, uint64_t value, bool want_ack) {
  vhost_user::U64Payload payload{value};
  return SendRequest(request, BytesOf(payload), {}, want_ack);
}

Result<uint64_t> VhostUserFrontend::GetFeatures() { return GetU64(Request::kGetFeatures); }
Result<void> VhostUserFrontend::SetFeatures(uint64_t features) {
  return SetU64(Request::kSetFeatures, features);
}
Result<void> VhostUserFrontend::SetOwner() {
  return SendRequest(Request::kSetOwner, {}, {}, false);
}
Result<uint64_t> VhostUserFrontend::GetProtocolFeatures() {
  return GetU64(Request::kGetProtocolFeatures);
}
Result<void> VhostUserFrontend::SetProtocolFeatures(uint64_t features) {
  Result<void> sent = SetU64(Request::kSetProtocolFeatures, features);
  if (sent) reply_ack_ = (features & vhost_user::kProtocolReplyAck) != 0;
  return sent;
}
Result<uint64_t> VhostUserFrontend::GetQueueNum() { return GetU64(Request::kGetQueueNum); }
Result<uint64_t> VhostUserFrontend::GetMaxMemSlots() { return GetU64(Request::kGetMaxMemSlots); }

Result<void> VhostUserFrontend::SetVringFd(Request request, uint32_t index, int fd) {
  vhost_user::U64Payload payload{(index & vhost_user::kVringIndexMask) |
                                 (fd < 0 ? vhost_user::kVringNoFdFlag : 0)};
  if (fd < 0) return SendRequest(request, BytesOf(payload), {}, false);
  const int fds[] = {fd};
  return SendRequest(request, BytesOf(payload), fds, false);
}
Result<void> VhostUserFrontend::SetVringKick(uint32_t index, int fd) {
  return SetVringFd(Request::kSetVringKick, index, fd);
}
Result<void> VhostUserFrontend::SetVringCall(uint32_t index, int fd) {
  return SetVringFd(Request::kSetVringCall, index, fd);
}
Result<void> VhostUserFrontend::SetVringErr(uint32_t index, int fd) {
  return SetVringFd(Request::kSetVringErr, index, fd);
}

Result<void> VhostUserFrontend::SetMemTable(
    std::span<const vhost_user::MemoryRegionDescription> regions, std::span<const int> fds) {
  // QEMU sends nregions, padding and only the regions in use (vhost_user_set_mem_table()).
  vhost_user::MemoryTableHeader table{static_cast<uint32_t>(regions.size()), 0};
  std::vector<uint8_t> payload(sizeof(table) + regions.size_bytes());
  std::memcpy(payload.data(), &table, sizeof(table));
  if (!regions.empty()) {
    std::memcpy(payload.data() + sizeof(table), regions.data(), regions.size_bytes());
  }
  return SendRequest(Request::kSetMemTable, payload, fds, true);
}

Result<void> VhostUserFrontend::SetMemTable(const GuestRam& ram) {
  std::vector<UniqueFd> owned;
  std::vector<int> fds;
  for (size_t region = 0; region < ram.regions().size(); ++region) {
    Result<UniqueFd> fd = ram.DuplicateFd();
    if (!fd) return ErrorOf(fd);
    fds.push_back(fd->get());
    owned.push_back(std::move(*fd));
  }
  return SetMemTable(ram.Descriptions(), fds);
}

Result<void> VhostUserFrontend::AddMemReg(const vhost_user::MemoryRegionDescription& region,
                                          int fd) {
  vhost_user::SingleMemoryRegion payload{0, region};
  const int fds[] = {fd};
  return SendRequest(Request::kAddMemReg, BytesOf(payload), fds, true);
}

Result<void> VhostUserFrontend::RemMemReg(const vhost_user::MemoryRegionDescription& region) {
  vhost_user::SingleMemoryRegion payload{0, region};
  return SendRequest(Request::kRemMemReg, BytesOf(payload), {}, true);
}

Result<void> VhostUserFrontend::SetVringState(Request request, uint32_t index, uint32_t num,
                                              bool want_ack) {
  vhost_user::VringState payload{index, num};
  return SendRequest(request, BytesOf(payload), {}, want_ack);
}
Result<void> VhostUserFrontend::SetVringNum(uint32_t index, uint32_t size) {
  return SetVringState(Request::kSetVringNum, index, size, false);
}
Result<void> VhostUserFrontend::SetVringBase(uint32_t index, uint32_t base) {
  return SetVringState(Request::kSetVringBase, index, base, false);
}
Result<void> VhostUserFrontend::SetVringEnable(uint32_t index, bool enable) {
  // QEMU 8.2+ sends SET_VRING_ENABLE synchronously (d7dc0682f5).
  return SetVringState(Request::kSetVringEnable, index, enable ? 1 : 0, true);
}

vhost_user::VringAddress VhostUserFrontend::VringAddressOf(uint32_t index,
                                                           const DriverQueue& queue) {
  vhost_user::VringAddress address{};
  address.index = index;
  address.descriptor_user_address = queue.layout().descriptor_user_address;
  address.used_user_address = queue.layout().used_user_address;
  address.available_user_address = queue.layout().available_user_address;
  return address;
}

Result<void> VhostUserFrontend::SetVringAddr(const vhost_user::VringAddress& address) {
  return SendRequest(Request::kSetVringAddr, BytesOf(address), {}, false);
}

Result<uint32_t> VhostUserFrontend::GetVringBase(uint32_t index) {
  vhost_user::VringState payload{index, 0};
  if (Result<void> sent = SendRequest(Request::kGetVringBase, BytesOf(payload), {}, false); !sent) {
    return ErrorOf(sent);
  }
  Result<ReceivedReply> reply = ReceiveReply(Request::kGetVringBase);
  if (!reply) return ErrorOf(reply);
  if (reply->header.size != sizeof(vhost_user::VringState)) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "bad reply: GET_VRING_BASE reply size " + std::to_string(reply->header.size));
  }
  vhost_user::VringState state{};
  std::memcpy(&state, reply->payload.data(), sizeof(state));
  if (state.index != index) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "bad reply: GET_VRING_BASE answered for queue " + std::to_string(state.index));
  }
  return static_cast<uint32_t>(state.num);
}

Result<std::vector<uint8_t>> VhostUserFrontend::GetConfig(uint32_t offset, uint32_t size) {
  std::vector<uint8_t> payload(sizeof(vhost_user::ConfigHeader) + size, 0);
  vhost_user::ConfigHeader header{offset, size, 0};
  std::memcpy(payload.data(), &header, sizeof(header));
  if (Result<void> sent = SendRequest(Request::kGetConfig, payload, {}, false); !sent) {
    return ErrorOf(sent);
  }
  Result<ReceivedReply> reply = ReceiveReply(Request::kGetConfig);
  if (!reply) return ErrorOf(reply);
  // QEMU's vhost_user_get_config(): hdr.size must be 12 + len.
  if (reply->header.size != payload.size()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "bad reply: GET_CONFIG reply size " + std::to_string(reply->header.size) +
                         ", expected " + std::to_string(payload.size()));
  }
  return std::vector<uint8_t>(reply->payload.begin() + sizeof(vhost_user::ConfigHeader),
                              reply->payload.end());
}

Result<void> VhostUserFrontend::SetConfig(uint32_t offset, std::span<const uint8_t> bytes) {
  std::vector<uint8_t> payload(sizeof(vhost_user::ConfigHeader) + bytes.size());
  vhost_user::ConfigHeader header{offset, static_cast<uint32_t>(bytes.size()), 0};
  std::memcpy(payload.data(), &header, sizeof(header));
  if (!bytes.empty()) {
    std::memcpy(payload.data() + sizeof(header), bytes.data(), bytes.size());
  }
  return SendRequest(Request::kSetConfig, payload, {}, true);
}

Result<void> VhostUserFrontend::GpuSetSocket(int fd) {
  const int fds[] = {fd};
  return SendRequest(Request::kGpuSetSocket, {}, fds, false);
}

Result<void> VhostUserFrontend::SetBackendReqFd(int fd) {
  const int fds[] = {fd};
  return SendRequest(Request::kSetBackendReqFd, {}, fds, true);
}

Result<vhost_user::ShmemConfig> VhostUserFrontend::GetShmemConfig() {
  if (Result<void> sent = SendRequest(Request::kGetShmemConfig, {}, {}, false); !sent) {
    return ErrorOf(sent);
  }
  Result<ReceivedReply> reply = ReceiveReply(Request::kGetShmemConfig);
  if (!reply) return ErrorOf(reply);
  vhost_user::ShmemConfig config{};
  if (reply->payload.size() != sizeof(config)) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        "bad reply: GET_SHMEM_CONFIG of " + std::to_string(reply->payload.size()) + " bytes");
  }
  std::memcpy(&config, reply->payload.data(), sizeof(config));
  return config;
}

Result<void> VhostUserFrontend::ResetDevice() {
  return SendRequest(Request::kResetDevice, {}, {}, false);
}

Result<void> VhostUserFrontend::ResetOwner() {
  return SendRequest(Request::kResetOwner, {}, {}, false);
}

}  // namespace vgpu::test
