// DisplayChannel's dmabuf messages against FakeDisplay: DMABUF_SCANOUT(2) with its fd, and
// DMABUF_UPDATE as a request whose reply (or its absence) comes back through a callback.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

#include "base/event_loop.h"
#include "display_channel_fixture.h"
#include "gpu/display_channel.h"
#include "support/fake_display.h"

namespace vgpu::gpu {
namespace {

using display::Request;
using std::chrono::milliseconds;
using test::DmabufUpdateReply;
using test::FakeDisplay;
using test::FakeDisplayOptions;
using test::FakeDisplayState;

constexpr milliseconds kWait{5000};
constexpr uint32_t kWidth = 16;
constexpr uint32_t kHeight = 8;

// A memfd standing in for a dmabuf of kWidth x kHeight x8r8g8b8 pixels, all `pixel`.
UniqueFd FakeDmabuf(uint32_t pixel) {
  UniqueFd fd(memfd_create("display-channel-test", MFD_CLOEXEC));
  const std::vector<uint32_t> pixels(size_t{kWidth} * kHeight, pixel);
  EXPECT_EQ(write(fd.get(), pixels.data(), pixels.size() * 4),
            static_cast<ssize_t>(pixels.size() * 4));
  return fd;
}

display::DmabufScanout2 Layout(uint64_t modifier) {
  display::DmabufScanout2 scanout{};
  scanout.dmabuf_scanout = display::DmabufScanout{
      0,         0, 0, kWidth, kHeight, kWidth, kHeight, kWidth * 4, display::kDmabufFlagY0Top,
      0x34325258};  // DRM_FORMAT_XRGB8888.
  scanout.modifier = modifier;
  return scanout;
}

using DisplayChannelDmabufTest = testing::DisplayChannelFixture;

TEST_F(DisplayChannelDmabufTest, ScanoutCarriesTheDmabufAndTheCallerKeepsItsFd) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  UniqueFd dmabuf = FakeDmabuf(0x123456);
  ASSERT_TRUE(channel.SendDmabufScanout(Layout(0), dmabuf.get()));
  std::optional<bool> drawn;
  channel.SendDmabufUpdate(display::Update{0, 0, 0, kWidth, kHeight},
                           [&](bool result) { drawn = result; });
  ASSERT_TRUE(PumpUntil([&] { return drawn.has_value(); }));
  EXPECT_TRUE(*drawn);

  const FakeDisplayState state = display.Snapshot();
  ASSERT_EQ(state.Count(Request::kDmabufScanout2), 1u);
  EXPECT_TRUE(state.messages[2].had_fd);
  ASSERT_TRUE(state.dmabufs[0]);
  EXPECT_EQ(state.dmabufs[0]->modifier, std::optional<uint64_t>(0));
  EXPECT_EQ(state.dmabufs[0]->buffer_bytes, uint64_t{kWidth} * kHeight * 4);
  EXPECT_EQ(state.framebuffers[0]->At(kWidth - 1, kHeight - 1), 0x123456u);
  EXPECT_GE(fcntl(dmabuf.get(), F_GETFD), 0) << "the channel must not close the caller's fd";
  EXPECT_TRUE(state.anomalies.empty()) << state.anomalies.front();
}

TEST_F(DisplayChannelDmabufTest, WithoutDmabuf2ItIsDmabufScanoutWithoutModifier) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel, {.protocol_features = 0});  // QEMU 7.2.
  UniqueFd dmabuf = FakeDmabuf(0);
  ASSERT_TRUE(channel.SendDmabufScanout(Layout(0), dmabuf.get()));
  ASSERT_TRUE(display.WaitFor(
      [](const FakeDisplayState& state) { return state.Count(Request::kDmabufScanout) == 1; },
      kWait));
  const FakeDisplayState state = display.Snapshot();
  EXPECT_FALSE(state.dmabufs[0]->modifier);
  EXPECT_EQ(state.messages.back().size, sizeof(display::DmabufScanout));
  EXPECT_TRUE(state.anomalies.empty()) << state.anomalies.front();
}

TEST_F(DisplayChannelDmabufTest, DisableCarriesNoFd) {
  DisplayChannel channel(loop_);
  FakeDisplay display = ConnectAndHandshake(channel);
  UniqueFd dmabuf = FakeDmabuf(0);
  ASSERT_TRUE(channel.SendDmabufScanout(Layout(0), dmabuf.get()));
  ASSERT_TRUE(channel.SendDmabufScanoutDisable(0));
  ASSERT_TRUE(display.WaitFor(
      [](const FakeDisplayState& state) { return state.Count(Request::kDmabufScanout) == 1; },
      kWait));
  const FakeDisplayState state = display.Snapshot();
  EXPECT_FALSE(state.messages.back().had_fd);
  EXPECT_FALSE(state.dmabufs[0]);
  EXPECT_FALSE(channel.SendDmabufScanout(Layout(0), -1)) << "no fd: that is the disable";
}

TEST_F(DisplayChannelDmabufTest, UpdateBeforeTheHandshakeWaitsForIt) {
  DisplayChannel channel(loop_);
  auto [display, socket] = FakeDisplay::Create({});
  channel.Attach(std::move(socket));
  std::optional<bool> drawn;
  channel.SendDmabufUpdate(display::Update{0, 0, 0, 1, 1}, [&](bool result) { drawn = result; });
  ASSERT_TRUE(PumpUntil([&] { return drawn.has_value(); }));
  EXPECT_TRUE(*drawn);
  const FakeDisplayState state = display.Snapshot();
  ASSERT_EQ(state.messages.size(), 3u);
  EXPECT_EQ(state.messages[1].request, static_cast<uint32_t>(Request::kSetProtocolFeatures));
  EXPECT_EQ(state.messages[2].request, static_cast<uint32_t>(Request::kDmabufUpdate));
}

TEST_F(DisplayChannelDmabufTest, UpdateWithoutSocketEndsAtOnce) {
  DisplayChannel channel(loop_);
  std::optional<bool> drawn;
  channel.SendDmabufUpdate(display::Update{0, 0, 0, 1, 1}, [&](bool result) { drawn = result; });
  ASSERT_TRUE(drawn.has_value());
  EXPECT_FALSE(*drawn);
}

TEST_F(DisplayChannelDmabufTest, UnansweredUpdateEndsWithTheReplyTimeout) {
  DisplayChannel channel(loop_, {.reply_timeout = milliseconds(100)});
  FakeDisplay display =
      ConnectAndHandshake(channel, {.dmabuf_update_reply = DmabufUpdateReply::kNever});
  std::optional<bool> drawn;
  channel.SendDmabufUpdate(display::Update{0, 0, 0, 1, 1}, [&](bool result) { drawn = result; });
  ASSERT_TRUE(PumpUntil([&] { return drawn.has_value(); }));
  EXPECT_FALSE(*drawn);
  EXPECT_FALSE(channel.replies_trusted());
  // Later ones end at once, unsent.
  std::optional<bool> later;
  channel.SendDmabufUpdate(display::Update{0, 0, 0, 1, 1}, [&](bool result) { later = result; });
  ASSERT_TRUE(later.has_value());
  EXPECT_FALSE(*later);
  EXPECT_EQ(display.Count(Request::kDmabufUpdate), 1u);
}

TEST_F(DisplayChannelDmabufTest, RepliesComeInOrderWithOtherRequests) {
  DisplayChannel channel(loop_);
  FakeDisplay display =
      ConnectAndHandshake(channel, {.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased});
  std::vector<int> order;
  channel.SendDmabufUpdate(display::Update{0, 0, 0, 1, 1}, [&](bool) { order.push_back(1); });
  channel.RequestDisplayInfo([&](std::optional<RespDisplayInfo> info) {
    EXPECT_TRUE(info);
    order.push_back(2);
  });
  ASSERT_TRUE(display.WaitFor([](const FakeDisplayState& state) { return state.blocked; }, kWait));
  loop_.RunOnce(20);
  EXPECT_TRUE(order.empty());
  display.ReleaseDmabufUpdates();
  ASSERT_TRUE(PumpUntil([&] { return order.size() == 2; }));
  EXPECT_EQ(order, std::vector<int>({1, 2}));
  EXPECT_TRUE(channel.replies_trusted());
}

}  // namespace
}  // namespace vgpu::gpu
