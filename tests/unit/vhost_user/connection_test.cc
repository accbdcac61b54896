#include "vhost_user/connection.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include "message_channel.h"

namespace vgpu::vhost_user {
namespace {

using testing::MessageChannel;

TEST(Connection, ReceivesHeaderPayloadAndFds) {
  MessageChannel channel;
  UniqueFd event(eventfd(0, EFD_CLOEXEC));
  U64Payload payload{0x101};
  channel.SendObject(Request::kSetVringCall, payload, {event.get()});
  Result<ReceivedMessage> message = channel.backend().Receive();
  ASSERT_TRUE(message) << message.error().message;
  EXPECT_EQ(message->header.request, static_cast<uint32_t>(Request::kSetVringCall));
  EXPECT_EQ(message->payload.size(), 8u);
  EXPECT_EQ(message->fds.size(), 1u);
}

TEST(Connection, EndOfStreamIsClosed) {
  MessageChannel channel;
  channel.CloseFrontend();
  Result<ReceivedMessage> message = channel.backend().Receive();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ErrorKind::kClosed);
}

TEST(Connection, TruncatedHeaderThenCloseIsAnError) {
  MessageChannel channel;
  const uint8_t partial[6] = {1, 0, 0, 0, 1, 0};
  channel.SendBytes(partial, sizeof(partial));
  channel.CloseFrontend();
  EXPECT_FALSE(channel.backend().Receive());
}

TEST(Connection, StalledPayloadTimesOut) {
  MessageChannel channel;
  MessageHeader header{static_cast<uint32_t>(Request::kSetFeatures), kVersion, 8};
  channel.SendBytes(&header, sizeof(header));  // Promised 8 bytes, sends none.
  Result<ReceivedMessage> message = channel.backend().Receive();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ErrorKind::kTimedOut);
}

TEST(Connection, RejectsHugeSizeBeforeReadingIt) {
  MessageChannel channel;
  MessageHeader header{static_cast<uint32_t>(Request::kSetMemTable), kVersion, 0xffffffff};
  channel.SendBytes(&header, sizeof(header));
  Result<ReceivedMessage> message = channel.backend().Receive();
  ASSERT_FALSE(message);
  EXPECT_EQ(message.error().kind, ErrorKind::kMalformed);
}

TEST(Connection, RejectsWrongVersionBits) {
  MessageChannel channel;
  channel.Send(Request::kGetFeatures, nullptr, 0, {}, /*flags=*/0x2);
  EXPECT_FALSE(channel.backend().Receive());
}

TEST(Connection, TooManyFdsAreRejectedAndClosed) {
  MessageChannel channel;
  std::vector<UniqueFd> owned;
  std::vector<int> fds;
  for (int i = 0; i < 12; ++i) {
    owned.emplace_back(eventfd(0, EFD_CLOEXEC));
    fds.push_back(owned.back().get());
  }
  channel.Send(Request::kSetMemTable, nullptr, 0, fds);
  EXPECT_FALSE(channel.backend().Receive());
}

}  // namespace
}  // namespace vgpu::vhost_user
