// Pixels lent to the display (display_channel.h, "Lending") through the device model: a 2D
// resource flushed as a lent UPDATE, a real DisplayChannel, and FakeDisplay (QEMU's end) reading
// it, or not yet. What the VMM reads must be what was flushed, whatever the guest transfers after.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "command_fixture.h"
#include "gpu/command_dispatcher.h"
#include "gpu/display_channel.h"
#include "loop_pump.h"
#include "support/fake_display.h"

namespace vgpu::gpu {
namespace {

using display::Request;
using std::chrono::milliseconds;
using test::FakeDisplay;
using test::FakeDisplayState;

constexpr milliseconds kWait{5000};
// 512 KiB: a lendable image whose UPDATE fits in the socket's buffer while the VMM does not read.
constexpr uint32_t kWidth = 512;
constexpr uint32_t kHeight = 256;
constexpr Rect kWhole{0, 0, kWidth, kHeight};
constexpr uint32_t kResource = 1;

class LentPixelsTest : public testing::CommandFixture {
 protected:
  void SetUp() override {
    // As the daemon does: the channel lends pages only where SIGPIPE is ignored.
    previous_sigpipe_ = signal(SIGPIPE, SIG_IGN);
    ASSERT_TRUE(loop_.Init());
    channel_ = std::make_unique<DisplayChannel>(loop_);
    auto [display, socket] = FakeDisplay::Create({});
    display_.emplace(std::move(display));
    channel_->Attach(std::move(socket));
    ASSERT_TRUE(testing::PumpLoopUntil(
        loop_, [&] { return channel_->handshake_done(); }, kWait));
    model_ =
        std::make_unique<CommandDispatcher>(DispatcherConfig{64ull << 20, true}, channel_.get());
    ASSERT_EQ(Create(kResource, kWidth, kHeight), ResponseType::kOkNodata);
    ASSERT_EQ(Attach(kResource, kDataArea, kWidth * kHeight * 4), ResponseType::kOkNodata);
    ASSERT_EQ(SetScanoutTo(0, kResource, kWhole), ResponseType::kOkNodata);  // Shows black.
    ASSERT_TRUE(UpdatesRead(1));
  }
  void TearDown() override {
    model_.reset();  // Before the channel, as GpuDevice does.
    channel_.reset();
    signal(SIGPIPE, previous_sigpipe_);
  }

  // The guest draws `pixels` into the resource's backing.
  void GuestDraws(const std::vector<uint32_t>& pixels) {
    std::memcpy(Host(kDataArea, pixels.size() * 4), pixels.data(), pixels.size() * 4);
  }
  bool UpdatesRead(size_t count) {
    return display_->WaitFor(
        [&](const FakeDisplayState& state) { return state.Count(Request::kUpdate) >= count; },
        kWait);
  }
  bool Shows(const std::vector<uint32_t>& pixels) {
    std::optional<test::FakeFramebuffer> frame = display_->Framebuffer(0);
    return frame.has_value() && frame->pixels == pixels;
  }
  static std::vector<uint32_t> Filled(uint32_t value) {
    return std::vector<uint32_t>(size_t{kWidth} * kHeight, value);
  }

  EventLoop loop_;
  std::unique_ptr<DisplayChannel> channel_;
  std::optional<FakeDisplay> display_;
  sighandler_t previous_sigpipe_ = SIG_DFL;
};

TEST_F(LentPixelsTest, FlushedPixelsAreWhatTheVmmReadsThoughTheNextTransferComesFirst) {
  const std::vector<uint32_t> first = Filled(0xff112233);
  const std::vector<uint32_t> second = Filled(0xff445566);
  display_->SetReading(false);
  GuestDraws(first);
  ASSERT_EQ(Transfer(kResource, kWhole, 0), ResponseType::kOkNodata);
  ASSERT_EQ(Flush(kResource, kWhole), ResponseType::kOkNodata);  // Lent, not read yet.
  ASSERT_EQ(channel_->statistics().lent_updates, 2u);

  // The next frame is transferred before the VMM has read the first.
  GuestDraws(second);
  ASSERT_EQ(Transfer(kResource, kWhole, 0), ResponseType::kOkNodata);
  EXPECT_EQ(model_->statistics().pixels_moved_from_loans, 1u);

  display_->SetReading(true);
  ASSERT_TRUE(UpdatesRead(2));
  EXPECT_TRUE(Shows(first));  // Not the second frame, nor a mix.
  ASSERT_EQ(Flush(kResource, kWhole), ResponseType::kOkNodata);
  ASSERT_TRUE(UpdatesRead(3));
  EXPECT_TRUE(Shows(second));
  EXPECT_TRUE(display_->Anomalies().empty());
}

TEST_F(LentPixelsTest, PixelsReadByTheVmmAreWrittenInPlace) {
  const std::vector<uint32_t> first = Filled(0xff010203);
  GuestDraws(first);
  ASSERT_EQ(Transfer(kResource, kWhole, 0), ResponseType::kOkNodata);
  ASSERT_EQ(Flush(kResource, kWhole), ResponseType::kOkNodata);
  ASSERT_TRUE(UpdatesRead(2));

  GuestDraws(Filled(0xff040506));
  ASSERT_EQ(Transfer(kResource, kWhole, 0), ResponseType::kOkNodata);

  EXPECT_EQ(model_->statistics().pixels_moved_from_loans, 0u);
  EXPECT_TRUE(Shows(first));
}

TEST_F(LentPixelsTest, AResourceUnrefedWhileItsUpdateIsUnreadIsReadWhole) {
  const std::vector<uint32_t> first = Filled(0xff0a0b0c);
  display_->SetReading(false);
  GuestDraws(first);
  ASSERT_EQ(Transfer(kResource, kWhole, 0), ResponseType::kOkNodata);
  ASSERT_EQ(Flush(kResource, kWhole), ResponseType::kOkNodata);

  // Its pages are unmapped; the lent ones stay with the socket until read. New images drawn with
  // other pixels must not be made of them.
  ASSERT_EQ(Unref(kResource), ResponseType::kOkNodata);
  GuestDraws(Filled(0xffdddddd));
  for (uint32_t id = 10; id < 14; ++id) {
    ASSERT_EQ(Create(id, kWidth, kHeight), ResponseType::kOkNodata);
    ASSERT_EQ(Attach(id, kDataArea, kWidth * kHeight * 4), ResponseType::kOkNodata);
    ASSERT_EQ(Transfer(id, kWhole, 0), ResponseType::kOkNodata);
  }

  display_->SetReading(true);
  ASSERT_TRUE(UpdatesRead(2));
  const FakeDisplayState state = display_->Snapshot();
  const auto update =
      std::find_if(state.messages.rbegin(), state.messages.rend(), [](const auto& message) {
        return message.request == static_cast<uint32_t>(Request::kUpdate);
      });
  ASSERT_NE(update, state.messages.rend());
  EXPECT_EQ(update->first_pixel, first.front());
  EXPECT_EQ(update->last_pixel, first.back());
  for (const std::string& anomaly : display_->Anomalies()) ADD_FAILURE() << anomaly;
}

}  // namespace
}  // namespace vgpu::gpu
