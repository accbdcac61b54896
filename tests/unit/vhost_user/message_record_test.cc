// The vhost-user message record (VHOST_DEVICE_GPU_RECORD_VHOST_USER): a received message's
// header, the kinds of its fds and its payload.
#include "vhost_user/message_record.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "message_channel.h"

namespace vgpu::vhost_user {
namespace {

using testing::MessageChannel;

TEST(MessageRecordTest, ReceivedMessageRoundTripsWithTheKindOfEachFd) {
  MessageChannel channel;
  UniqueFd event(eventfd(0, EFD_CLOEXEC));
  UniqueFd memory(memfd_create("message-record-test", MFD_CLOEXEC));
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd socket_end(pair[0]);
  UniqueFd other_end(pair[1]);
  const U64Payload payload{0x101};
  channel.SendObject(Request::kSetVringCall, payload, {event.get(), memory.get(), socket_end.get()},
                     kVersion | kNeedReplyFlag);
  Result<ReceivedMessage> message = channel.backend().Receive();
  ASSERT_TRUE(message) << message.error().message;

  const std::vector<uint8_t> record = EncodeMessageRecord(*message);

  ASSERT_EQ(record.size(), sizeof(MessageHeader) + 1 + 3 + sizeof(payload));
  MessageHeader header{};
  std::memcpy(&header, record.data(), sizeof(header));
  EXPECT_EQ(header.request, static_cast<uint32_t>(Request::kSetVringCall));
  EXPECT_EQ(header.flags, kVersion | kNeedReplyFlag);
  EXPECT_EQ(header.size, sizeof(payload));
  const uint8_t* fds = record.data() + sizeof(MessageHeader);
  EXPECT_EQ(fds[0], 3);
  EXPECT_EQ(fds[1], static_cast<uint8_t>(FdKind::kAnonymous));
  EXPECT_EQ(fds[2], static_cast<uint8_t>(FdKind::kFile));
  EXPECT_EQ(fds[3], static_cast<uint8_t>(FdKind::kSocket));
  U64Payload recorded{};
  std::memcpy(&recorded, fds + 4, sizeof(recorded));
  EXPECT_EQ(recorded.value, payload.value);
}

TEST(MessageRecordTest, PipesAndInvalidFdsHaveTheirOwnKinds) {
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  EXPECT_EQ(KindOfFd(read_end.get()), FdKind::kPipe);
  EXPECT_EQ(KindOfFd(-1), FdKind::kOther);
}

}  // namespace
}  // namespace vgpu::vhost_user
