#include "gpu/display_reply_parser.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "gpu/protocol.h"

namespace vgpu::gpu::display {
namespace {

std::vector<uint8_t> Message(uint32_t request, uint32_t flags, uint32_t size,
                             size_t payload_bytes) {
  const MessageHeader header{request, flags, size};
  std::vector<uint8_t> bytes(sizeof(header) + payload_bytes, 0xab);
  std::memcpy(bytes.data(), &header, sizeof(header));
  return bytes;
}

constexpr uint32_t kDisplayInfo = static_cast<uint32_t>(Request::kGetDisplayInfo);

TEST(DisplayReplyParserTest, IncompleteHeaderNeedsMoreBytes) {
  const std::vector<uint8_t> bytes = Message(kDisplayInfo, kReplyFlag, 408, 0);

  auto parsed = ParseDisplayReply(std::span(bytes).first(11), Request::kGetDisplayInfo);

  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->has_value());
}

TEST(DisplayReplyParserTest, IncompletePayloadNeedsMoreBytes) {
  const std::vector<uint8_t> bytes = Message(kDisplayInfo, kReplyFlag, 408, 407);

  auto parsed = ParseDisplayReply(bytes, Request::kGetDisplayInfo);

  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->has_value());
}

TEST(DisplayReplyParserTest, CompleteReplyIsParsedAndTrailingBytesLeft) {
  std::vector<uint8_t> bytes = Message(kDisplayInfo, kReplyFlag, 408, 408);
  bytes.push_back(0x11);

  auto parsed = ParseDisplayReply(bytes, Request::kGetDisplayInfo);

  ASSERT_TRUE(parsed);
  ASSERT_TRUE(parsed->has_value());
  EXPECT_EQ((*parsed)->consumed, 420u);
  EXPECT_EQ((*parsed)->payload.size(), sizeof(RespDisplayInfo));
  EXPECT_EQ((*parsed)->payload.data(), bytes.data() + 12);
}

TEST(DisplayReplyParserTest, ReplyFlagAmongOtherBitsIsAccepted) {
  const std::vector<uint8_t> bytes = Message(1, kReplyFlag | 1, 8, 8);

  auto parsed = ParseDisplayReply(bytes, Request::kGetProtocolFeatures);

  ASSERT_TRUE(parsed);
  EXPECT_TRUE(parsed->has_value());
}

TEST(DisplayReplyParserTest, EmptyDmabufUpdateReplyIsParsed) {
  const std::vector<uint8_t> bytes = Message(10, kReplyFlag, 0, 0);

  auto parsed = ParseDisplayReply(bytes, Request::kDmabufUpdate);

  ASSERT_TRUE(parsed);
  ASSERT_TRUE(parsed->has_value());
  EXPECT_EQ((*parsed)->consumed, 12u);
}

struct BadHeader {
  const char* name;
  uint32_t request;
  uint32_t flags;
  uint32_t size;
  std::optional<Request> expected;
};

class DisplayReplyParserRejectTest : public ::testing::TestWithParam<BadHeader> {};

TEST_P(DisplayReplyParserRejectTest, RejectsFromTheHeaderAlone) {
  const BadHeader& bad = GetParam();
  const std::vector<uint8_t> bytes = Message(bad.request, bad.flags, bad.size, 0);

  auto parsed = ParseDisplayReply(bytes, bad.expected);

  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().kind, ErrorKind::kMalformed);
}

INSTANTIATE_TEST_SUITE_P(
    Headers, DisplayReplyParserRejectTest,
    ::testing::Values(
        BadHeader{"NoReplyFlag", kDisplayInfo, 0, 408, Request::kGetDisplayInfo},
        BadHeader{"Oversized", kDisplayInfo, kReplyFlag, kMaxReplyPayload + 1,
                  Request::kGetDisplayInfo},
        BadHeader{"MaxUint", kDisplayInfo, kReplyFlag, 0xffffffffu, Request::kGetDisplayInfo},
        BadHeader{"Unsolicited", kDisplayInfo, kReplyFlag, 408, std::nullopt},
        BadHeader{"OtherRequest", 11, kReplyFlag, 1056, Request::kGetDisplayInfo},
        BadHeader{"WrongSize", kDisplayInfo, kReplyFlag, 407, Request::kGetDisplayInfo},
        BadHeader{"EdidTooShort", 11, kReplyFlag, 1024, Request::kGetEdid},
        BadHeader{"RequestWithoutReply", 7, kReplyFlag, 0, Request::kScanout}),
    [](const ::testing::TestParamInfo<BadHeader>& info) { return info.param.name; });

}  // namespace
}  // namespace vgpu::gpu::display
