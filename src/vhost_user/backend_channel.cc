#include "vhost_user/backend_channel.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <cstring>
#include <string>

#include "base/log.h"

namespace vgpu::vhost_user {

BackendChannel::BackendChannel(UniqueFd socket, bool reply_ack,
                               std::chrono::milliseconds reply_timeout)
    : connection_(std::move(socket)), reply_ack_(reply_ack) {
  const auto milliseconds = static_cast<int>(reply_timeout.count());
  // A frontend that stops reading or answering costs a bounded wait (the file comment).
  timeval timeout{.tv_sec = milliseconds / 1000, .tv_usec = (milliseconds % 1000) * 1000};
  if (!connection_.SetReceiveTimeout(milliseconds) ||
      setsockopt(connection_.fd(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) != 0) {
    LogWarning("backend channel: cannot bound its waits; it is not used");
    broken_ = true;
  }
}

Result<void> BackendChannel::Map(const virtio::ShmemMapping& mapping) {
  ShmemMap payload{};
  payload.shmid = mapping.shmid;
  payload.fd_offset = mapping.fd_offset;
  payload.shm_offset = mapping.shm_offset;
  payload.len = mapping.length;
  payload.flags = mapping.writable ? kShmemMapReadWrite : 0;
  return Request(BackendRequest::kShmemMap, payload, mapping.fd);
}

Result<void> BackendChannel::Unmap(uint8_t shmid, uint64_t shm_offset, uint64_t length) {
  ShmemMap payload{};
  payload.shmid = shmid;
  payload.shm_offset = shm_offset;
  payload.len = length;
  return Request(BackendRequest::kShmemUnmap, payload, -1);
}

Result<void> BackendChannel::Request(BackendRequest request, const ShmemMap& payload, int fd) {
  const char* name = request == BackendRequest::kShmemMap ? "SHMEM_MAP" : "SHMEM_UNMAP";
  if (broken_) {
    return MakeError(ErrorKind::kClosed,
                     std::string(name) + ": the backend channel no longer works");
  }
  const MessageHeader header{static_cast<uint32_t>(request),
                             kVersion | (reply_ack_ ? kNeedReplyFlag : 0), sizeof(payload)};
  Result<void> sent = connection_.Send(
      header, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&payload), sizeof(payload)),
      fd);
  if (!sent) {
    broken_ = true;
    return MakeError(ErrorKind::kClosed, std::string(name) + ": " + sent.error().message);
  }
  if (!reply_ack_) return {};
  Result<ReceivedMessage> reply = connection_.Receive();
  if (!reply) {
    broken_ = true;
    return MakeError(ErrorKind::kTimedOut,
                     std::string(name) + ": no reply from the frontend: " + reply.error().message);
  }
  uint64_t value = 0;
  if (reply->header.request != header.request || (reply->header.flags & kReplyFlag) == 0 ||
      reply->payload.size() != sizeof(value) || !reply->fds.empty()) {
    broken_ = true;
    return MakeError(ErrorKind::kMalformed,
                     std::string(name) + ": the frontend's reply is not one");
  }
  std::memcpy(&value, reply->payload.data(), sizeof(value));
  if (value != 0) {
    return MakeError(ErrorKind::kClosed, std::string(name) + ": the frontend failed it (" +
                                             std::to_string(value) + ")");
  }
  return {};
}

}  // namespace vgpu::vhost_user
