#include "vhost_user/message_record.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

namespace vgpu::vhost_user {

FdKind KindOfFd(int fd) {
  struct stat status {};
  if (fstat(fd, &status) != 0) return FdKind::kOther;
  switch (status.st_mode & S_IFMT) {
    case S_IFREG:
      return FdKind::kFile;
    case S_IFSOCK:
      return FdKind::kSocket;
    case S_IFIFO:
      return FdKind::kPipe;
    case 0:  // Anonymous inodes (eventfd, timerfd, ...) have no file type bits.
      return FdKind::kAnonymous;
    default:
      return FdKind::kOther;
  }
}

std::vector<uint8_t> EncodeMessageRecord(const ReceivedMessage& message) {
  // Connection::Receive takes at most kMaxFdsPerMessage fds and kMaxPayloadSize bytes; the
  // bounds are applied here again so that the record's size never depends on the frontend.
  const size_t fd_count = std::min(message.fds.size(), kMaxFdsPerMessage);
  const size_t payload_size = std::min<size_t>(message.payload.size(), kMaxPayloadSize);
  MessageHeader header = message.header;
  header.size = static_cast<uint32_t>(payload_size);
  std::vector<uint8_t> record(sizeof(MessageHeader) + 1);
  std::memcpy(record.data(), &header, sizeof(header));
  record[sizeof(MessageHeader)] = static_cast<uint8_t>(fd_count);
  for (size_t i = 0; i < fd_count; ++i) {
    record.push_back(static_cast<uint8_t>(KindOfFd(message.fds[i].get())));
  }
  record.insert(record.end(), message.payload.begin(), message.payload.begin() + payload_size);
  return record;
}

}  // namespace vgpu::vhost_user
