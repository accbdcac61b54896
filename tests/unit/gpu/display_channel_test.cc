// DisplayChannel against FakeDisplay (QEMU's side) over a socketpair, with the channel's event
// loop pumped by the test.
#include "gpu/display_channel.h"

#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/event_fd.h"
#include "base/event_loop.h"
#include "base/mapped_region.h"
#include "display_channel_fixture.h"
#include "support/fake_display.h"

namespace vgpu::gpu {
namespace {

using display::MessageHeader;
using display::Request;
using std::chrono::milliseconds;
using test::FakeDisplay;
using test::FakeDisplayOptions;
using test::FakeDisplayState;

constexpr uint64_t kEdid = uint64_t{1} << display::kFeatureEdid;
constexpr uint64_t kDmabuf2 = uint64_t{1} << display::kFeatureDmabuf2;
constexpr milliseconds kWait{5000};

template <class T>
std::vector<uint8_t> Reply(Request request, const T& payload,
                           uint32_t flags = display::kReplyFlag) {
  const MessageHeader header{static_cast<uint32_t>(request), flags, sizeof(T)};
  std::vector<uint8_t> bytes(sizeof(header) + sizeof(T));
  std::memcpy(bytes.data(), &header, sizeof(header));
  std::memcpy(bytes.data() + sizeof(header), &payload, sizeof(T));
  return bytes;
}

std::vector<uint8_t> Header(uint32_t request, uint32_t flags, uint32_t size) {
  const MessageHeader header{request, flags, size};
  std::vector<uint8_t> bytes(sizeof(header));
  std::memcpy(bytes.data(), &header, sizeof(header));
  return bytes;
}

// Waits until the fake has received `count` messages of type `request`.
bool Saw(const FakeDisplay& display, Request request, size_t count = 1) {
  return display.WaitFor(
      [&](const FakeDisplayState& state) { return state.Count(request) >= count; }, kWait);
}

using DisplayChannelTest = testing::DisplayChannelFixture;

// --- Handshake ----------------------------------------------------------------------------------

TEST_F(DisplayChannelTest, HandshakeWithQemu10NegotiatesEdidAndDmabuf2) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.protocol_features = kEdid | kDmabuf2});

  EXPECT_TRUE(channel.supports_edid());
  EXPECT_TRUE(channel.supports_dmabuf2());
  ASSERT_TRUE(display.WaitFor(
      [](const FakeDisplayState& state) { return state.negotiated_features.has_value(); }, kWait));
  EXPECT_EQ(display.Snapshot().negotiated_features, kEdid | kDmabuf2);
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, HandshakeWithQemu81NegotiatesEdidOnly) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.protocol_features = kEdid});

  EXPECT_TRUE(channel.supports_edid());
  EXPECT_FALSE(channel.supports_dmabuf2());
  ASSERT_TRUE(display.WaitFor(
      [](const FakeDisplayState& state) { return state.negotiated_features.has_value(); }, kWait));
  EXPECT_EQ(display.Snapshot().negotiated_features, kEdid);
}

TEST_F(DisplayChannelTest, HandshakeWithQemu72NegotiatesNothing) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.protocol_features = 0});

  EXPECT_FALSE(channel.supports_edid());
  EXPECT_FALSE(channel.supports_dmabuf2());
  ASSERT_TRUE(display.WaitFor(
      [](const FakeDisplayState& state) { return state.negotiated_features.has_value(); }, kWait));
  EXPECT_EQ(display.Snapshot().negotiated_features, 0u);
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, HandshakeAcceptsOnlyKnownFeatures) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.protocol_features = 0xffff});

  ASSERT_TRUE(display.WaitFor(
      [](const FakeDisplayState& state) { return state.negotiated_features.has_value(); }, kWait));
  EXPECT_EQ(display.Snapshot().negotiated_features, kEdid | kDmabuf2);
}

TEST_F(DisplayChannelTest, AttachSendsOnlyGetProtocolFeaturesFirst) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);

  ASSERT_TRUE(Saw(display, Request::kSetProtocolFeatures));
  const FakeDisplayState state = display.Snapshot();
  ASSERT_EQ(state.messages.size(), 2u);
  EXPECT_EQ(state.messages[0].request, static_cast<uint32_t>(Request::kGetProtocolFeatures));
  EXPECT_EQ(state.messages[0].size, 0u);
  EXPECT_EQ(state.messages[1].request, static_cast<uint32_t>(Request::kSetProtocolFeatures));
  EXPECT_EQ(state.messages[1].size, 8u);
}

// --- Requests -----------------------------------------------------------------------------------

TEST_F(DisplayChannelTest, DisplayInfoRequestedBeforeHandshakeIsAnswered) {
  DisplayChannel channel(loop_);
  FakeDisplay display =
      Connect(channel, {.outputs = {{true, 1920, 1080}, {false, 640, 480}, {true, 800, 600}}});
  std::optional<std::optional<RespDisplayInfo>> result;

  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { result = info; });
  ASSERT_TRUE(PumpUntil([&] { return result.has_value(); }));

  ASSERT_TRUE(result->has_value());
  const RespDisplayInfo& info = **result;
  EXPECT_EQ(info.hdr.type, static_cast<uint32_t>(ResponseType::kOkDisplayInfo));
  EXPECT_EQ(info.pmodes[0].enabled, 1u);
  EXPECT_EQ(info.pmodes[0].r.width, 1920u);
  EXPECT_EQ(info.pmodes[0].r.height, 1080u);
  EXPECT_EQ(info.pmodes[1].enabled, 0u);
  EXPECT_EQ(info.pmodes[2].enabled, 1u);
  EXPECT_EQ(info.pmodes[2].r.width, 800u);
  EXPECT_EQ(info.pmodes[2].r.height, 600u);
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, SeveralRequestsAreAnsweredInOrder) {
  DisplayChannel channel(loop_);
  const std::vector<uint8_t> edid_bytes = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x42};
  FakeDisplay display = Connect(channel, {.edid = edid_bytes});
  std::vector<int> order;
  std::optional<RespEdid> edid;

  channel.RequestDisplayInfo(
      [&](std::optional<RespDisplayInfo> info) { order.push_back(info ? 1 : -1); });
  channel.RequestEdid(0, [&](std::optional<RespEdid> reply) {
    order.push_back(reply ? 2 : -2);
    edid = reply;
  });
  channel.RequestDisplayInfo(
      [&](std::optional<RespDisplayInfo> info) { order.push_back(info ? 3 : -3); });
  ASSERT_TRUE(PumpUntil([&] { return order.size() == 3; }));

  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  ASSERT_TRUE(edid.has_value());
  EXPECT_EQ(edid->hdr.type, static_cast<uint32_t>(ResponseType::kOkEdid));
  EXPECT_EQ(edid->size, 1024u);
  EXPECT_EQ(std::memcmp(edid->edid, edid_bytes.data(), edid_bytes.size()), 0);
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, EdidForSecondOutputIsAskedAfterDisplayInfoShowsIt) {
  DisplayChannel channel(loop_);
  FakeDisplay display = Connect(channel, {.outputs = {{true, 1024, 768}, {true, 800, 600}}});
  bool have_info = false;
  std::optional<std::optional<RespEdid>> edid;

  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo>) { have_info = true; });
  ASSERT_TRUE(PumpUntil([&] { return have_info; }));
  channel.RequestEdid(1, [&](std::optional<RespEdid> reply) { edid = reply; });
  ASSERT_TRUE(PumpUntil([&] { return edid.has_value(); }));

  EXPECT_TRUE(edid->has_value());
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, EdidForOutputQemuDoesNotHaveCompletesEmptyWithoutSending) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);  // One output, like QEMU by default.
  std::optional<std::optional<RespEdid>> edid;

  channel.RequestEdid(3, [&](std::optional<RespEdid> reply) { edid = reply; });

  ASSERT_TRUE(edid.has_value());  // Synchronously.
  EXPECT_FALSE(edid->has_value());
  EXPECT_TRUE(channel.replies_trusted());
  EXPECT_EQ(display.Count(Request::kGetEdid), 0u);
}

TEST_F(DisplayChannelTest, EdidWithoutNegotiatedFeatureCompletesEmptyWithoutSending) {
  DisplayChannel channel(loop_);
  FakeDisplay display = Connect(channel, {.protocol_features = 0});
  std::optional<std::optional<RespEdid>> before_handshake;
  std::optional<std::optional<RespEdid>> after_handshake;

  channel.RequestEdid(0, [&](std::optional<RespEdid> reply) { before_handshake = reply; });
  ASSERT_TRUE(PumpUntil([&] { return channel.handshake_done(); }));
  channel.RequestEdid(0, [&](std::optional<RespEdid> reply) { after_handshake = reply; });

  ASSERT_TRUE(before_handshake.has_value());
  EXPECT_FALSE(before_handshake->has_value());
  ASSERT_TRUE(after_handshake.has_value());  // Synchronously.
  EXPECT_FALSE(after_handshake->has_value());
  // A later message shows that everything before it has been read.
  ASSERT_TRUE(channel.SendScanout(0, 0, 0));
  ASSERT_TRUE(Saw(display, Request::kScanout));
  EXPECT_EQ(display.Count(Request::kGetEdid), 0u);
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, RequestWhileDetachedCompletesEmptyAtOnce) {
  DisplayChannel channel(loop_);
  std::optional<std::optional<RespDisplayInfo>> result;

  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { result = info; });

  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->has_value());
}

// --- Timeouts -----------------------------------------------------------------------------------

TEST_F(DisplayChannelTest, UnansweredRequestTimesOutWhileTheLoopServesOtherFds) {
  DisplayChannel channel(loop_, {.reply_timeout = milliseconds(300)});
  FakeDisplay display = ConnectAndHandshake(channel, {.answer_display_info = false});
  Result<EventFd> other = EventFd::Create();
  ASSERT_TRUE(other);
  int other_events = 0;
  Result<WatchId> watch = loop_.Watch(other->fd(), EPOLLIN, [&](uint32_t) {
    other->Consume();
    ++other_events;
  });
  ASSERT_TRUE(watch);
  std::optional<std::optional<RespDisplayInfo>> result;
  const auto start = std::chrono::steady_clock::now();

  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { result = info; });
  other->Signal();
  ASSERT_TRUE(PumpUntil([&] { return other_events == 1; }));
  EXPECT_FALSE(result.has_value());  // The other fd was served while the request waited.
  ASSERT_TRUE(PumpUntil([&] { return result.has_value(); }));
  const auto elapsed = std::chrono::steady_clock::now() - start;

  EXPECT_FALSE(result->has_value());
  EXPECT_GE(elapsed, milliseconds(250));
  EXPECT_LT(elapsed, milliseconds(3000));
  EXPECT_TRUE(channel.attached());
  EXPECT_FALSE(channel.replies_trusted());
  loop_.Unwatch(*watch);
}

TEST_F(DisplayChannelTest, AfterATimeoutRequestsEndAtOnceAndOutputStillFlows) {
  DisplayChannel channel(loop_, {.reply_timeout = milliseconds(100)});
  FakeDisplay display = ConnectAndHandshake(channel, {.answer_display_info = false});
  bool timed_out = false;
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo>) { timed_out = true; });
  ASSERT_TRUE(PumpUntil([&] { return timed_out; }));
  std::optional<std::optional<RespEdid>> later;

  channel.RequestEdid(0, [&](std::optional<RespEdid> reply) { later = reply; });
  ASSERT_TRUE(channel.SendScanout(0, 320, 200));

  ASSERT_TRUE(later.has_value());  // Synchronously, nothing sent.
  EXPECT_FALSE(later->has_value());
  ASSERT_TRUE(Saw(display, Request::kScanout));
  EXPECT_EQ(display.Count(Request::kGetEdid), 0u);
}

TEST_F(DisplayChannelTest, LateReplyAfterTimeoutIsNotTakenForTheNextRequest) {
  DisplayChannel channel(loop_, {.reply_timeout = milliseconds(100)});
  FakeDisplay display = ConnectAndHandshake(channel, {.answer_display_info = false});
  bool first_done = false;
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo>) { first_done = true; });
  ASSERT_TRUE(PumpUntil([&] { return first_done; }));
  std::optional<std::optional<RespDisplayInfo>> second;

  display.SendRaw(Reply(Request::kGetDisplayInfo, RespDisplayInfo{}));  // The late reply.
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { second = info; });
  loop_.RunOnce(50);
  loop_.RunOnce(50);

  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->has_value());
  EXPECT_TRUE(channel.attached());  // A late reply is not a protocol error.
}

TEST_F(DisplayChannelTest, UnansweredHandshakeEndsWaitingRequestsButOutputFlows) {
  DisplayChannel channel(loop_, {.reply_timeout = milliseconds(100)});
  FakeDisplay display = Connect(channel, {.answer_protocol_features = false});
  std::optional<std::optional<RespDisplayInfo>> result;

  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { result = info; });
  ASSERT_TRUE(PumpUntil([&] { return result.has_value(); }));
  ASSERT_TRUE(channel.SendCursorPos(0, 1, 2));

  EXPECT_FALSE(result->has_value());
  EXPECT_FALSE(channel.handshake_done());
  EXPECT_FALSE(channel.supports_edid());
  ASSERT_TRUE(Saw(display, Request::kCursorPos));
  EXPECT_EQ(display.Count(Request::kGetDisplayInfo), 0u);
}

// --- Socket replacement and closing -------------------------------------------------------------

TEST_F(DisplayChannelTest, NewSocketEndsRequestsOfTheOldOneAndWorks) {
  DisplayChannel channel(loop_);
  FakeDisplay old_display = ConnectAndHandshake(channel, {.answer_display_info = false});
  std::optional<std::optional<RespDisplayInfo>> old_result;
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { old_result = info; });
  ASSERT_TRUE(Saw(old_display, Request::kGetDisplayInfo));
  std::optional<std::optional<RespDisplayInfo>> new_result;

  FakeDisplay new_display = Connect(channel, {.outputs = {{true, 640, 480}}});
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { new_result = info; });

  ASSERT_TRUE(old_result.has_value());  // Synchronously, inside Attach.
  EXPECT_FALSE(old_result->has_value());
  EXPECT_TRUE(
      old_display.WaitFor([](const FakeDisplayState& state) { return state.peer_closed; }, kWait));
  ASSERT_TRUE(PumpUntil([&] { return new_result.has_value(); }));
  ASSERT_TRUE(new_result->has_value());
  EXPECT_EQ((*new_result)->pmodes[0].r.width, 640u);
  EXPECT_TRUE(new_display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, PeerClosingDetachesAndEndsRequests) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.answer_display_info = false});
  std::optional<std::optional<RespDisplayInfo>> result;
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { result = info; });
  ASSERT_TRUE(Saw(display, Request::kGetDisplayInfo));

  display.Disconnect();
  ASSERT_TRUE(PumpUntil([&] { return !channel.attached(); }));

  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->has_value());
  Result<void> sent = channel.SendScanout(0, 1, 1);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().kind, ErrorKind::kClosed);
}

TEST_F(DisplayChannelTest, CallbackMayReattachFromInsideAReply) {
  DisplayChannel channel(loop_);
  FakeDisplay first = ConnectAndHandshake(channel);
  std::optional<FakeDisplay> second;
  bool replaced = false;

  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo>) {
    auto [display, socket] = FakeDisplay::Create({});
    second.emplace(std::move(display));
    channel.Attach(std::move(socket));
    replaced = true;
  });
  ASSERT_TRUE(PumpUntil([&] { return replaced; }));
  ASSERT_TRUE(PumpUntil([&] { return channel.handshake_done(); }));

  EXPECT_TRUE(channel.attached());
  EXPECT_TRUE(second->Anomalies().empty());
}

// --- Malformed replies --------------------------------------------------------------------------

struct MalformedCase {
  const char* name;
  std::vector<uint8_t> bytes;
};

class DisplayChannelMalformedTest : public DisplayChannelTest,
                                    public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(DisplayChannelMalformedTest, DetachesAndEndsTheRequest) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.answer_display_info = false});
  std::optional<std::optional<RespDisplayInfo>> result;
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { result = info; });
  ASSERT_TRUE(Saw(display, Request::kGetDisplayInfo));

  display.SendRaw(GetParam().bytes);
  ASSERT_TRUE(PumpUntil([&] { return !channel.attached(); }));

  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->has_value());
}

std::vector<uint8_t> Concat(std::vector<uint8_t> first, const std::vector<uint8_t>& second) {
  first.insert(first.end(), second.begin(), second.end());
  return first;
}

INSTANTIATE_TEST_SUITE_P(
    Replies, DisplayChannelMalformedTest,
    ::testing::Values(MalformedCase{"Oversized", Header(3, display::kReplyFlag, 100000)},
                      MalformedCase{"HugeSize", Header(3, display::kReplyFlag, 0xffffffff)},
                      MalformedCase{"WrongSizeForType", Concat(Header(3, display::kReplyFlag, 8),
                                                               std::vector<uint8_t>(8))},
                      MalformedCase{"WithoutReplyFlag",
                                    Reply(Request::kGetDisplayInfo, RespDisplayInfo{}, 0)},
                      MalformedCase{"ReplyToAnotherRequest", Reply(Request::kGetEdid, RespEdid{})},
                      MalformedCase{"UnknownRequest", Header(77, display::kReplyFlag, 0)}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) { return info.param.name; });

TEST_F(DisplayChannelTest, UnsolicitedReplyDetaches) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);

  display.SendRaw(Reply(Request::kGetDisplayInfo, RespDisplayInfo{}));

  EXPECT_TRUE(PumpUntil([&] { return !channel.attached(); }));
}

TEST_F(DisplayChannelTest, PartialReplyThenEofDetaches) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.answer_display_info = false});
  std::optional<std::optional<RespDisplayInfo>> result;
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { result = info; });
  ASSERT_TRUE(Saw(display, Request::kGetDisplayInfo));
  const std::vector<uint8_t> reply = Reply(Request::kGetDisplayInfo, RespDisplayInfo{});

  display.SendRaw(std::span<const uint8_t>(reply).first(100));
  loop_.RunOnce(50);
  EXPECT_TRUE(channel.attached());
  EXPECT_FALSE(result.has_value());
  display.Disconnect();
  ASSERT_TRUE(PumpUntil([&] { return !channel.attached(); }));

  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->has_value());
}

TEST_F(DisplayChannelTest, ReplyArrivingInPiecesIsReassembled) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.answer_display_info = false});
  std::optional<std::optional<RespDisplayInfo>> result;
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) { result = info; });
  ASSERT_TRUE(Saw(display, Request::kGetDisplayInfo));
  RespDisplayInfo info{};
  info.pmodes[0].enabled = 1;
  info.pmodes[0].r.width = 4242;
  const std::vector<uint8_t> reply = Reply(Request::kGetDisplayInfo, info);
  const std::span<const uint8_t> bytes(reply);

  for (const auto& [offset, length] :
       std::vector<std::pair<size_t, size_t>>{{0, 5}, {5, 7}, {12, 200}, {212, 208}}) {
    display.SendRaw(bytes.subspan(offset, length));
    loop_.RunOnce(20);
  }
  ASSERT_TRUE(PumpUntil([&] { return result.has_value(); }));

  ASSERT_TRUE(result->has_value());
  EXPECT_EQ((*result)->pmodes[0].r.width, 4242u);
  EXPECT_TRUE(channel.attached());
}

TEST_F(DisplayChannelTest, TwoRepliesInOneReadAreBothMatched) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.answer_display_info = false});
  int answered = 0;
  channel.RequestDisplayInfo(
      [&](std::optional<RespDisplayInfo> info) { answered += info ? 1 : 0; });
  channel.RequestDisplayInfo(
      [&](std::optional<RespDisplayInfo> info) { answered += info ? 1 : 0; });
  ASSERT_TRUE(Saw(display, Request::kGetDisplayInfo, 2));

  display.SendRaw(Concat(Reply(Request::kGetDisplayInfo, RespDisplayInfo{}),
                         Reply(Request::kGetDisplayInfo, RespDisplayInfo{})));
  ASSERT_TRUE(PumpUntil([&] { return answered == 2; }));

  EXPECT_TRUE(channel.attached());
}

// --- Output -------------------------------------------------------------------------------------

std::vector<uint32_t> Pattern(uint32_t count, uint32_t seed) {
  std::vector<uint32_t> pixels(count);
  for (uint32_t i = 0; i < count; ++i)
    pixels[i] = 0xff000000u | (seed * 0x10101u + i * 2654435761u);
  return pixels;
}

TEST_F(DisplayChannelTest, ContiguousUpdateArrivesPixelExact) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const uint32_t width = 16, height = 8, x = 5, y = 3;
  const std::vector<uint32_t> pixels = Pattern(width * height, 1);

  ASSERT_TRUE(channel.SendScanout(0, 64, 48));
  ASSERT_TRUE(channel.SendUpdate(0, x, y, width, height,
                                 reinterpret_cast<const uint8_t*>(pixels.data()), width * 4));
  ASSERT_TRUE(Saw(display, Request::kUpdate));

  std::optional<test::FakeFramebuffer> frame = display.Framebuffer(0);
  ASSERT_TRUE(frame.has_value());
  EXPECT_TRUE(frame->shown);
  for (uint32_t row = 0; row < 48; ++row) {
    for (uint32_t column = 0; column < 64; ++column) {
      const bool inside = column >= x && column < x + width && row >= y && row < y + height;
      const uint32_t expected = inside ? pixels[(row - y) * width + (column - x)] : 0;
      ASSERT_EQ(frame->At(column, row), expected) << column << "," << row;
    }
  }
  EXPECT_EQ(display.Snapshot().messages.back().size, 20u + width * height * 4);
  EXPECT_TRUE(display.Anomalies().empty());
}

// Rows `stride` pixels apart with junk between them; the update is the left `width` pixels.
void ExpectStridedUpdateExact(DisplayChannel& channel, FakeDisplay& display, uint32_t width,
                              uint32_t height, uint32_t stride_pixels) {
  const std::vector<uint32_t> source = Pattern(stride_pixels * height, 7);
  ASSERT_TRUE(channel.SendScanout(0, width, height));
  ASSERT_TRUE(channel.SendUpdate(0, 0, 0, width, height,
                                 reinterpret_cast<const uint8_t*>(source.data()),
                                 size_t{stride_pixels} * 4));
  ASSERT_TRUE(Saw(display, Request::kUpdate));
  std::optional<test::FakeFramebuffer> frame = display.Framebuffer(0);
  ASSERT_TRUE(frame.has_value());
  for (uint32_t row = 0; row < height; ++row) {
    for (uint32_t column = 0; column < width; ++column) {
      ASSERT_EQ(frame->At(column, row), source[row * stride_pixels + column])
          << column << "," << row;
    }
  }
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, StridedUpdateArrivesPixelExact) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  ExpectStridedUpdateExact(channel, display, 24, 10, 27);
}

TEST_F(DisplayChannelTest, StridedUpdateWithMoreRowsThanIovMaxArrivesPixelExact) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  ExpectStridedUpdateExact(channel, display, 3, IOV_MAX + 100, 5);
}

TEST_F(DisplayChannelTest, UpdateIsClippedToTheSurfaceLikeQemu) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const std::vector<uint32_t> pixels = Pattern(16 * 16, 3);

  ASSERT_TRUE(channel.SendScanout(0, 32, 32));
  ASSERT_TRUE(channel.SendUpdate(0, 24, 20, 16, 16, reinterpret_cast<const uint8_t*>(pixels.data()),
                                 16 * 4));
  ASSERT_TRUE(Saw(display, Request::kUpdate));

  std::optional<test::FakeFramebuffer> frame = display.Framebuffer(0);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->At(24, 20), pixels[0]);
  EXPECT_EQ(frame->At(31, 31), pixels[11 * 16 + 7]);
  EXPECT_EQ(frame->At(23, 20), 0u);
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, UpdateRejectsOverlappingRowsWithoutSending) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const std::vector<uint32_t> pixels(64);

  Result<void> sent =
      channel.SendUpdate(0, 0, 0, 8, 4, reinterpret_cast<const uint8_t*>(pixels.data()), 8);

  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_TRUE(channel.attached());
  EXPECT_EQ(channel.statistics().updates_sent, 0u);
}

TEST_F(DisplayChannelTest, ScanoutWithWidthZeroDisablesIt) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);

  ASSERT_TRUE(channel.SendScanout(0, 8, 8));
  ASSERT_TRUE(channel.SendScanout(0, 0, 0));
  ASSERT_TRUE(Saw(display, Request::kScanout, 2));

  EXPECT_FALSE(display.Framebuffer(0).has_value());
}

TEST_F(DisplayChannelTest, CursorMessagesAreRecordedExactly) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const std::vector<uint32_t> image = Pattern(64 * 64, 9);

  ASSERT_TRUE(channel.SendCursorUpdate(0, 10, 20, 3, 4, image.data()));
  ASSERT_TRUE(Saw(display, Request::kCursorUpdate));
  test::FakeCursor defined = display.Cursor(0);
  ASSERT_TRUE(channel.SendCursorPos(0, 100, 200));
  ASSERT_TRUE(Saw(display, Request::kCursorPos));
  test::FakeCursor moved = display.Cursor(0);
  ASSERT_TRUE(channel.SendCursorHide(0, 101, 201));
  ASSERT_TRUE(Saw(display, Request::kCursorPosHide));
  test::FakeCursor hidden = display.Cursor(0);

  EXPECT_TRUE(defined.defined);
  EXPECT_TRUE(defined.visible);
  EXPECT_EQ(defined.x, 10u);
  EXPECT_EQ(defined.y, 20u);
  EXPECT_EQ(defined.hot_x, 3u);
  EXPECT_EQ(defined.hot_y, 4u);
  EXPECT_EQ(defined.image, image);
  EXPECT_TRUE(moved.visible);
  EXPECT_EQ(moved.x, 100u);
  EXPECT_EQ(moved.y, 200u);
  EXPECT_FALSE(hidden.visible);
  EXPECT_EQ(hidden.x, 101u);
  EXPECT_EQ(hidden.y, 201u);
  const FakeDisplayState state = display.Snapshot();
  ASSERT_EQ(state.messages.size(), 5u);
  EXPECT_EQ(state.messages[2].size, 16404u);
  EXPECT_EQ(state.messages[3].size, 12u);
  EXPECT_EQ(state.messages[4].size, 12u);
  EXPECT_TRUE(state.anomalies.empty());
}

TEST_F(DisplayChannelTest, StatisticsCountWhatWasSent) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const std::vector<uint32_t> pixels(4 * 2);
  const DisplayChannelStatistics before = channel.statistics();

  ASSERT_TRUE(channel.SendScanout(0, 4, 2));
  ASSERT_TRUE(
      channel.SendUpdate(0, 0, 0, 4, 2, reinterpret_cast<const uint8_t*>(pixels.data()), 16));

  const DisplayChannelStatistics& after = channel.statistics();
  EXPECT_EQ(after.messages_sent - before.messages_sent, 2u);
  EXPECT_EQ(after.bytes_sent - before.bytes_sent, (12u + 12u) + (12u + 20u + 32u));
  EXPECT_EQ(after.updates_sent - before.updates_sent, 1u);
}

// --- Back-pressure ------------------------------------------------------------------------------

// A 1024x1024 UPDATE: 4 MiB, far more than the 64 KiB socket buffer of these tests holds.
constexpr uint32_t kBigUpdateSize = 1024;
using BigUpdateSend = std::function<Result<void>()>;

// The VMM stops reading: the send fails within the send timeout (200 ms), and the channel
// detaches.
void ExpectStalledSendTimesOut(DisplayChannel& channel, FakeDisplay& display,
                               const BigUpdateSend& send) {
  ASSERT_TRUE(channel.SendScanout(0, kBigUpdateSize, kBigUpdateSize));
  ASSERT_TRUE(Saw(display, Request::kScanout));
  display.SetReading(false);
  const auto start = std::chrono::steady_clock::now();

  Result<void> sent = send();
  const auto elapsed = std::chrono::steady_clock::now() - start;

  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().kind, ErrorKind::kTimedOut);
  EXPECT_GE(elapsed, milliseconds(150));
  EXPECT_LT(elapsed, milliseconds(3000));
  EXPECT_FALSE(channel.attached());
  EXPECT_EQ(channel.statistics().updates_sent, 0u);
}

// QEMU exiting while a big UPDATE is half sent is a closed socket, not a VMM that stopped
// reading: the channel says so (kClosed) at once instead of after the send timeout.
void ExpectVmmExitMidSendIsClosed(DisplayChannel& channel, FakeDisplay& display,
                                  milliseconds send_timeout, const BigUpdateSend& send) {
  ASSERT_TRUE(channel.SendScanout(0, kBigUpdateSize, kBigUpdateSize));
  ASSERT_TRUE(Saw(display, Request::kScanout));
  display.SetReading(false);
  std::thread vmm_exit([&] {
    ASSERT_TRUE(display.WaitForUnreadBytes(kWait));
    display.Disconnect();
  });
  const auto start = std::chrono::steady_clock::now();

  Result<void> sent = send();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  vmm_exit.join();

  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().kind, ErrorKind::kClosed);
  EXPECT_LT(elapsed, send_timeout);
  EXPECT_FALSE(channel.attached());
}

Result<void> SendBigUpdate(DisplayChannel& channel, const std::vector<uint32_t>& pixels) {
  return channel.SendUpdate(0, 0, 0, kBigUpdateSize, kBigUpdateSize,
                            reinterpret_cast<const uint8_t*>(pixels.data()), kBigUpdateSize * 4);
}

TEST_F(DisplayChannelTest, PeerThatStopsReadingMakesSendFailWithinTheTimeoutAndDetach) {
  DisplayChannel channel(loop_, {.send_timeout = milliseconds(200)});
  FakeDisplay display = ConnectAndHandshake(channel, {.daemon_send_buffer = 64 * 1024});
  const std::vector<uint32_t> pixels(kBigUpdateSize * kBigUpdateSize);
  ExpectStalledSendTimesOut(channel, display, [&] { return SendBigUpdate(channel, pixels); });
}

// A signal that lands while a big UPDATE is half sent (a debugger attaching, `strace -p`) cuts
// sendmsg short. The channel sends the rest, and the VMM gets the whole message.
int signal_event_fd = -1;
void NoteSignal(int) {
  const uint64_t one = 1;
  (void)!write(signal_event_fd, &one, sizeof(one));
}

TEST_F(DisplayChannelTest, SignalDuringAPartialSendDoesNotDropTheDisplay) {
  Result<EventFd> created = EventFd::Create();
  ASSERT_TRUE(created);
  EventFd signal_event = std::move(*created);
  signal_event_fd = signal_event.fd();
  struct sigaction action {};
  action.sa_handler = NoteSignal;  // No SA_RESTART: as a signal the daemon does not expect.
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGUSR1, &action, &previous), 0);

  DisplayChannel channel(loop_, {.send_timeout = milliseconds(10000)});
  FakeDisplay display = ConnectAndHandshake(channel, {.daemon_send_buffer = 64 * 1024});
  const uint32_t size = 1024;
  const std::vector<uint32_t> pixels = Pattern(size * size, 3);
  ASSERT_TRUE(channel.SendScanout(0, size, size));
  ASSERT_TRUE(Saw(display, Request::kScanout));
  display.SetReading(false);
  const pthread_t sender = pthread_self();
  std::thread interrupter([&] {
    // Bytes waiting unread prove the 4 MiB UPDATE's sendmsg is under way and blocked.
    ASSERT_TRUE(display.WaitForUnreadBytes(kWait));
    pthread_kill(sender, SIGUSR1);
    pollfd handled{signal_event.fd(), POLLIN, 0};
    ASSERT_EQ(poll(&handled, 1, static_cast<int>(kWait.count())), 1);
    display.SetReading(true);
  });

  Result<void> sent = channel.SendUpdate(0, 0, 0, size, size,
                                         reinterpret_cast<const uint8_t*>(pixels.data()), size * 4);
  interrupter.join();
  sigaction(SIGUSR1, &previous, nullptr);

  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_TRUE(channel.attached());
  EXPECT_GE(channel.statistics().partial_sends_resumed, 1u);
  EXPECT_EQ(channel.statistics().updates_sent, 1u);
  ASSERT_TRUE(Saw(display, Request::kUpdate));
  std::optional<test::FakeFramebuffer> frame = display.Framebuffer(0);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->pixels, pixels);
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelTest, VmmThatExitsDuringASendIsClosedNotTimedOut) {
  const milliseconds send_timeout(10000);
  DisplayChannel channel(loop_, {.send_timeout = send_timeout});
  FakeDisplay display = ConnectAndHandshake(channel, {.daemon_send_buffer = 64 * 1024});
  const std::vector<uint32_t> pixels(kBigUpdateSize * kBigUpdateSize);
  ExpectVmmExitMidSendIsClosed(channel, display, send_timeout,
                               [&] { return SendBigUpdate(channel, pixels); });
}

// --- Lending ------------------------------------------------------------------------------------

// splice() raises SIGPIPE when the VMM has gone; the channel lends pages only where it is
// ignored, as the daemon ignores it.
class DisplayChannelLendingTest : public DisplayChannelTest {
 protected:
  void SetUp() override {
    DisplayChannelTest::SetUp();
    previous_ = signal(SIGPIPE, SIG_IGN);
  }
  void TearDown() override { signal(SIGPIPE, previous_); }

 private:
  sighandler_t previous_ = SIG_DFL;
};

// Pixels in a mapping of their own, as a HostImage of 64 KiB or more keeps them.
struct LendablePixels {
  LendablePixels(uint32_t width, uint32_t height, uint32_t seed)
      : width(width), height(height), region(*MappedRegion::MapAnonymous(width * height * 4)) {
    const std::vector<uint32_t> pattern = Pattern(width * height, seed);
    std::memcpy(region.data(), pattern.data(), region.size());
  }
  const uint8_t* data() const { return region.data(); }
  std::vector<uint32_t> Copy() const {
    std::vector<uint32_t> pixels(width * height);
    std::memcpy(pixels.data(), region.data(), region.size());
    return pixels;
  }
  uint32_t width;
  uint32_t height;
  MappedRegion region;
};

Result<uint64_t> SendLent(DisplayChannel& channel, const LendablePixels& pixels) {
  return channel.SendUpdateLending(0, 0, 0, pixels.width, pixels.height, pixels.data(),
                                   size_t{pixels.width} * 4);
}

bool FrameIs(const FakeDisplay& display, const std::vector<uint32_t>& pixels) {
  std::optional<test::FakeFramebuffer> frame = display.Framebuffer(0);
  return frame.has_value() && frame->pixels == pixels;
}

TEST_F(DisplayChannelLendingTest, LentUpdateArrivesPixelExactAndIsCountedAsLent) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const LendablePixels pixels(1024, 768, 4);
  ASSERT_TRUE(channel.SendScanout(0, pixels.width, pixels.height));

  Result<uint64_t> loan = SendLent(channel, pixels);

  ASSERT_TRUE(loan) << loan.error().message;
  EXPECT_NE(*loan, 0u);
  EXPECT_EQ(channel.statistics().lent_updates, 1u);
  EXPECT_EQ(channel.statistics().lent_bytes, 1024u * 768 * 4);
  EXPECT_EQ(channel.statistics().updates_sent, 1u);
  ASSERT_TRUE(Saw(display, Request::kUpdate));
  EXPECT_TRUE(FrameIs(display, pixels.Copy()));
  EXPECT_EQ(display.Snapshot().messages.back().size, 20u + 1024 * 768 * 4);
  EXPECT_TRUE(display.Anomalies().empty());
  // And the messages after it are read as usual.
  ASSERT_TRUE(channel.SendCursorPos(0, 3, 4));
  ASSERT_TRUE(Saw(display, Request::kCursorPos));
  EXPECT_TRUE(display.Anomalies().empty());
}

TEST_F(DisplayChannelLendingTest, SmallAndStridedUpdatesAreCopiedNotLent) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const LendablePixels pixels(512, 512, 5);  // 1 MiB.
  ASSERT_TRUE(channel.SendScanout(0, 512, 512));

  // 64x64 (16 KiB): below kMinLentUpdateBytes.
  Result<uint64_t> small = channel.SendUpdateLending(0, 0, 0, 64, 64, pixels.data(), 512 * 4);
  // 500 of each row's 512 pixels: rows apart.
  Result<uint64_t> strided = channel.SendUpdateLending(0, 0, 0, 500, 512, pixels.data(), 512 * 4);

  ASSERT_TRUE(small);
  ASSERT_TRUE(strided);
  EXPECT_EQ(*small, 0u);
  EXPECT_EQ(*strided, 0u);
  EXPECT_EQ(channel.statistics().lent_updates, 0u);
  ASSERT_TRUE(Saw(display, Request::kUpdate, 2));
  std::optional<test::FakeFramebuffer> frame = display.Framebuffer(0);
  ASSERT_TRUE(frame.has_value());
  const std::vector<uint32_t> source = pixels.Copy();
  for (uint32_t row = 0; row < 512; ++row) {
    for (uint32_t column = 0; column < 500; ++column) {
      ASSERT_EQ(frame->At(column, row), source[row * 512 + column]) << column << "," << row;
    }
  }
  EXPECT_FALSE(channel.MayStillRead(*small));  // Loan 0: nothing lent.
}

TEST_F(DisplayChannelLendingTest, ALoanLastsUntilTheVmmHasReadTheUpdate) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const LendablePixels pixels(512, 256, 6);  // 512 KiB: fits in the socket's buffer.
  ASSERT_TRUE(channel.SendScanout(0, pixels.width, pixels.height));
  ASSERT_TRUE(Saw(display, Request::kScanout));
  display.SetReading(false);

  Result<uint64_t> loan = SendLent(channel, pixels);
  ASSERT_TRUE(loan) << loan.error().message;
  ASSERT_NE(*loan, 0u);

  EXPECT_TRUE(channel.MayStillRead(*loan));  // In the socket, unread.
  display.SetReading(true);
  ASSERT_TRUE(Saw(display, Request::kUpdate));
  // Read by the VMM: its pages are free to change.
  EXPECT_TRUE(PumpUntil([&] { return !channel.MayStillRead(*loan); }));
  EXPECT_TRUE(FrameIs(display, pixels.Copy()));
}

TEST_F(DisplayChannelLendingTest, LoansOnASocketSinceReplacedNeverEnd) {
  DisplayChannel channel(loop_);
  FakeDisplay first = ConnectAndHandshake(channel);
  const LendablePixels pixels(512, 256, 7);
  ASSERT_TRUE(channel.SendScanout(0, pixels.width, pixels.height));
  ASSERT_TRUE(Saw(first, Request::kScanout));
  first.SetReading(false);
  Result<uint64_t> old_loan = SendLent(channel, pixels);
  ASSERT_TRUE(old_loan);
  ASSERT_NE(*old_loan, 0u);

  // A new socket (the VMM reconnected): the old one's queue cannot be asked any more.
  FakeDisplay second = ConnectAndHandshake(channel);
  ASSERT_TRUE(channel.SendScanout(0, pixels.width, pixels.height));
  Result<uint64_t> new_loan = SendLent(channel, pixels);
  ASSERT_TRUE(new_loan);
  ASSERT_TRUE(Saw(second, Request::kUpdate));

  EXPECT_TRUE(PumpUntil([&] { return !channel.MayStillRead(*new_loan); }));
  EXPECT_TRUE(channel.MayStillRead(*old_loan));
  EXPECT_TRUE(FrameIs(second, pixels.Copy()));
}

// As the copied UPDATE in "Back-pressure", with its pages lent: splice() obeys the send timeout
// and reports the VMM's exit.
Result<void> SendLentBigUpdate(DisplayChannel& channel, const LendablePixels& pixels) {
  Result<uint64_t> loan = SendLent(channel, pixels);
  if (!loan) return ErrorOf(loan);
  return {};
}

TEST_F(DisplayChannelLendingTest, VmmThatStopsReadingDuringALentUpdateTimesOutAndDetaches) {
  DisplayChannel channel(loop_, {.send_timeout = milliseconds(200)});
  FakeDisplay display = ConnectAndHandshake(channel, {.daemon_send_buffer = 64 * 1024});
  const LendablePixels pixels(kBigUpdateSize, kBigUpdateSize, 8);
  ExpectStalledSendTimesOut(channel, display, [&] { return SendLentBigUpdate(channel, pixels); });
}

TEST_F(DisplayChannelLendingTest, VmmThatExitsDuringALentUpdateIsClosed) {
  const milliseconds send_timeout(10000);
  DisplayChannel channel(loop_, {.send_timeout = send_timeout});
  FakeDisplay display = ConnectAndHandshake(channel, {.daemon_send_buffer = 64 * 1024});
  const LendablePixels pixels(kBigUpdateSize, kBigUpdateSize, 9);
  ExpectVmmExitMidSendIsClosed(channel, display, send_timeout,
                               [&] { return SendLentBigUpdate(channel, pixels); });
}

TEST_F(DisplayChannelTest, WithoutSigpipeIgnoredNothingIsLent) {
  const sighandler_t previous = signal(SIGPIPE, SIG_DFL);
  DisplayChannel channel(loop_);
  signal(SIGPIPE, previous);
  FakeDisplay display = ConnectAndHandshake(channel);
  const LendablePixels pixels(1024, 768, 12);
  ASSERT_TRUE(channel.SendScanout(0, pixels.width, pixels.height));

  Result<uint64_t> loan = SendLent(channel, pixels);

  ASSERT_TRUE(loan);
  EXPECT_EQ(*loan, 0u);
  EXPECT_EQ(channel.statistics().lent_updates, 0u);
  ASSERT_TRUE(Saw(display, Request::kUpdate));
  EXPECT_TRUE(FrameIs(display, pixels.Copy()));
}

// A seccomp filter on the calling thread that fails one system call with EPERM, as a stricter
// sandbox would.
bool RefuseOnThisThread(long syscall_number) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(syscall_number), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

class DisplayChannelRefusedSpliceTest : public DisplayChannelLendingTest,
                                        public ::testing::WithParamInterface<long> {};

// Whichever of the two calls fails, the message already begun is finished by copying and the VMM
// reads it whole; from then on updates are copied.
TEST_P(DisplayChannelRefusedSpliceTest, FinishesTheMessageByCopyingAndCopiesFromThenOn) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  const LendablePixels first(1024, 768, 10);
  const LendablePixels second(1024, 768, 11);
  ASSERT_TRUE(channel.SendScanout(0, first.width, first.height));
  Result<uint64_t> loans[2] = {0, 0};
  // A thread of its own: the filter cannot be taken off again.
  std::thread sender([&] {
    ASSERT_TRUE(RefuseOnThisThread(GetParam()));
    loans[0] = SendLent(channel, first);
    ASSERT_TRUE(Saw(display, Request::kUpdate, 1));
    loans[1] = SendLent(channel, second);
  });
  sender.join();

  ASSERT_TRUE(loans[0]) << loans[0].error().message;
  ASSERT_TRUE(loans[1]) << loans[1].error().message;
  EXPECT_EQ(*loans[0], 0u);
  EXPECT_EQ(*loans[1], 0u);
  EXPECT_TRUE(channel.attached());
  EXPECT_EQ(channel.statistics().lent_updates, 0u);
  EXPECT_EQ(channel.statistics().updates_sent, 2u);
  ASSERT_TRUE(Saw(display, Request::kUpdate, 2));
  EXPECT_TRUE(FrameIs(display, second.Copy()));
  EXPECT_TRUE(display.Anomalies().empty());
}

INSTANTIATE_TEST_SUITE_P(SpliceOrVmsplice, DisplayChannelRefusedSpliceTest,
                         ::testing::Values(SYS_splice, SYS_vmsplice),
                         [](const ::testing::TestParamInfo<long>& info) {
                           return std::string(info.param == SYS_splice ? "Splice" : "Vmsplice");
                         });

}  // namespace
}  // namespace vgpu::gpu
