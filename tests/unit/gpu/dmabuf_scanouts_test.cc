// The dmabuf display path for 3D scanouts (DmabufScanouts): the device model with a renderer that
// exports memfds
// as its "dmabufs", a real DisplayChannel, and FakeDisplay (QEMU's end) reading the pixels
// through the fd it was sent. The event loop is pumped by the test.
#include <dirent.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "base/event_loop.h"
#include "command_fixture.h"
#include "fake_renderer.h"
#include "gpu/command_dispatcher.h"
#include "gpu/display_channel.h"
#include "loop_pump.h"
#include "support/fake_display.h"

namespace vgpu::gpu {
namespace {

using display::Request;
using std::chrono::milliseconds;
using test::DmabufUpdateReply;
using test::FakeDisplay;
using test::FakeDisplayOptions;
using test::FakeDisplayState;
using testing::FakeRenderer;

constexpr milliseconds kWait{5000};
constexpr uint64_t kEdidFeature = uint64_t{1} << display::kFeatureEdid;
constexpr uint32_t kSize = 64;  // The 3D resources' width and height.

size_t OpenFdCount() {
  size_t count = 0;
  DIR* directory = opendir("/proc/self/fd");
  if (directory == nullptr) return 0;
  while (const dirent* entry = readdir(directory)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(directory);
  return count - 1;  // The directory's own fd.
}

// A command that may be answered later: its chain's head.
struct Pending {
  uint16_t head = 0;
};

class DmabufScanoutsTest : public testing::CommandFixture {
 protected:
  // Each command of the test gets its own request and response slot in guest memory, so that a
  // held flush's response is not overwritten by the commands answered meanwhile.
  static constexpr uint64_t kSlotSize = 0x1000;
  static constexpr uint64_t kSlotArea = 0x400000;

  void SetUp() override { ASSERT_TRUE(loop_.Init()); }

  void Connect(FakeDisplayOptions options = {}, DisplayChannelOptions channel_options = {}) {
    channel_ = std::make_unique<DisplayChannel>(loop_, channel_options);
    auto [display, socket] = FakeDisplay::Create(std::move(options));
    display_.emplace(std::move(display));
    channel_->Attach(std::move(socket));
    ASSERT_TRUE(PumpUntil([&] { return channel_->handshake_done(); }));
    model_ = std::make_unique<CommandDispatcher>(DispatcherConfig{64ull << 20, true},
                                                 channel_.get(), &renderer_);
    model_->set_acked_features(1ull << kFeatureVirgl);
  }

  // An exporting renderer, a display connected with `options`, and resource 5 created and shown
  // on scanout 0: through the dmabuf path, its first DMABUF_UPDATE sent.
  void ShowExportedResource(FakeDisplayOptions options = {},
                            DisplayChannelOptions channel_options = {}) {
    renderer_.exportable = true;
    Connect(std::move(options), channel_options);
    ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
    ASSERT_EQ(ShowOn(0, 5), ResponseType::kOkNodata);
  }

  void TearDown() override {
    // The model before the channel that holds its callbacks, as GpuDevice does.
    model_.reset();
    channel_.reset();
  }

  bool PumpUntil(const std::function<bool()>& condition, milliseconds timeout = kWait) {
    return testing::PumpLoopUntil(loop_, condition, timeout);
  }
  // Pumps the loop (the daemon's side) until QEMU's side shows `predicate`.
  bool DisplaySees(const std::function<bool(const FakeDisplayState&)>& predicate) {
    return PumpUntil([&] { return display_->WaitFor(predicate, milliseconds(0)); });
  }
  bool DisplaySaw(Request request, size_t count) {
    return DisplaySees(
        [&](const FakeDisplayState& state) { return state.Count(request) >= count; });
  }
  // Waits until QEMU's side owes a DMABUF_UPDATE reply, then has it sent.
  void ReleaseUpdate() {
    ASSERT_TRUE(DisplaySees([](const FakeDisplayState& state) { return state.blocked; }));
    display_->ReleaseDmabufUpdates();
  }
  // Pumps until the DMABUF_UPDATEs of every scanout have their replies.
  bool PumpUntilNoUpdateInFlight() {
    return PumpUntil([&] {
      for (uint32_t i = 0; i < kMaxScanouts; ++i) {
        if (model_->scanout(i).dmabuf.update_in_flight) return false;
      }
      return true;
    });
  }

  ResponseType Create3d(uint32_t id, uint32_t width = kSize, uint32_t height = kSize) {
    return Create3dTexture(id, static_cast<uint32_t>(Format::kB8G8R8X8Unorm), width, height);
  }
  ResponseType ShowOn(uint32_t scanout, uint32_t id, Rect rect = Rect{0, 0, kSize, kSize}) {
    return SetScanoutTo(scanout, id, rect);
  }

  // Starts a command in slot `slot` (1, 2, ...); whether and how it was answered is in ring_.
  template <class Request>
  Pending* Begin(const Request& request, uint32_t slot) {
    const uint64_t request_address = kSlotArea + 2 * slot * kSlotSize;
    const uint64_t response_address = request_address + kSlotSize;
    virtio::DescriptorChain chain;
    chain.head_index = next_head_++;
    chain.memory = &memory_;
    std::memcpy(Host(request_address, sizeof(request)), &request, sizeof(request));
    chain.readable.emplace_back(Host(request_address, sizeof(request)), sizeof(request));
    chain.readable_length = sizeof(request);
    std::memset(Host(response_address, kSlotSize), testing::kCanary, kSlotSize);
    chain.writable.emplace_back(Host(response_address, kSlotSize), kSlotSize);
    chain.writable_length = kSlotSize;
    pending_.push_back(std::make_unique<Pending>());
    Pending* pending = pending_.back().get();
    pending->head = Submit(std::move(chain));
    return pending;
  }
  bool Answered(const Pending* pending) const { return Returned(pending->head); }
  std::optional<uint32_t> UsedOf(const Pending* pending) const {
    return ring_.UsedLength(pending->head);
  }
  CtrlHdr ResponseIn(uint32_t slot) {
    CtrlHdr response;
    std::memcpy(&response, Host(kSlotArea + (2 * slot + 1) * kSlotSize, sizeof(response)),
                sizeof(response));
    return response;
  }
  Pending* StartFlush(uint32_t id, Rect rect, uint32_t slot, uint32_t flags = 0) {
    ResourceFlush request{};
    request.hdr = Header(CommandType::kResourceFlush, flags, flags != 0 ? 7 : 0);
    request.r = rect;
    request.resource_id = id;
    return Begin(request, slot);
  }

  EventLoop loop_;
  FakeRenderer renderer_;
  std::unique_ptr<DisplayChannel> channel_;
  std::optional<FakeDisplay> display_;
  std::vector<std::unique_ptr<Pending>> pending_;
};

TEST_F(DmabufScanoutsTest, ExportableScanoutIsShownThroughTheDmabufAndLogged) {
  renderer_.exportable = true;
  renderer_.modifier = 0;  // DRM_FORMAT_MOD_LINEAR: it must reach the VMM.
  Connect();
  ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(ShowOn(0, 5), ResponseType::kOkNodata);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("scanout path: dmabuf (scanout 0 shows resource 5 from a 64x64 dmabuf, "
                     "stride 256, fourcc XR24, through DMABUF_SCANOUT2"),
            std::string::npos)
      << log;

  // DMABUF_SCANOUT2 (QEMU 10 offers DMABUF2) with the fd, then a first DMABUF_UPDATE to show it.
  ASSERT_TRUE(DisplaySees([](const FakeDisplayState& state) {
    return state.dmabufs[0] && state.dmabufs[0]->updates == 1;
  }));
  ASSERT_TRUE(PumpUntilNoUpdateInFlight());
  const FakeDisplayState state = display_->Snapshot();
  EXPECT_EQ(state.Count(Request::kDmabufScanout2), 1u);
  EXPECT_EQ(state.Count(Request::kScanout) + state.Count(Request::kUpdate), 0u);
  const test::FakeDmabuf& dmabuf = *state.dmabufs[0];
  EXPECT_EQ(dmabuf.scanout.width, kSize);
  EXPECT_EQ(dmabuf.scanout.fd_width, kSize);
  EXPECT_EQ(dmabuf.scanout.fd_height, kSize);
  EXPECT_EQ(dmabuf.scanout.fd_stride, kSize * 4);
  EXPECT_EQ(dmabuf.scanout.fd_flags, display::kDmabufFlagY0Top);
  EXPECT_EQ(static_cast<uint32_t>(dmabuf.scanout.fd_drm_fourcc), FakeRenderer::kFourccXrgb8888);
  EXPECT_EQ(dmabuf.modifier, std::optional<uint64_t>(0));
  EXPECT_EQ(dmabuf.buffer_bytes, uint64_t{kSize} * kSize * 4);
  // What the VMM read through the fd is resource 5's texture.
  ASSERT_TRUE(dmabuf.readable);
  const test::FakeFramebuffer& frame = *state.framebuffers[0];
  for (uint32_t y : {0u, 17u, kSize - 1}) {
    for (uint32_t x : {0u, 33u, kSize - 1}) {
      EXPECT_EQ(frame.At(x, y), FakeRenderer::ExportedPixel(5, x, y)) << x << "," << y;
    }
  }
  EXPECT_TRUE(state.anomalies.empty()) << state.anomalies.front();
  EXPECT_EQ(renderer_.scanout_flushes, 1);
}

TEST_F(DmabufScanoutsTest, WithoutDmabuf2TheScanoutGoesAsDmabufScanout) {
  renderer_.exportable = true;
  Connect({.protocol_features = kEdidFeature});  // QEMU 8.1.
  ASSERT_FALSE(channel_->supports_dmabuf2());
  ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
  ASSERT_EQ(ShowOn(0, 5), ResponseType::kOkNodata);
  ASSERT_TRUE(DisplaySees([](const FakeDisplayState& state) {
    return state.dmabufs[0] && state.dmabufs[0]->updates == 1;
  }));
  const FakeDisplayState state = display_->Snapshot();
  EXPECT_EQ(state.Count(Request::kDmabufScanout), 1u);
  EXPECT_EQ(state.Count(Request::kDmabufScanout2), 0u);
  EXPECT_FALSE(state.dmabufs[0]->modifier);
  EXPECT_TRUE(state.messages[2].had_fd) << "DMABUF_SCANOUT follows the two handshake messages";
  EXPECT_TRUE(state.anomalies.empty()) << state.anomalies.front();
}

TEST_F(DmabufScanoutsTest, FlushIsAnsweredWhenTheVmmHasDrawnAndOthersGoOnMeanwhile) {
  ASSERT_NO_FATAL_FAILURE(
      ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased}));
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 1));
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntilNoUpdateInFlight());

  Pending* flush = StartFlush(5, Rect{8, 8, 16, 16}, 1);
  EXPECT_FALSE(Answered(flush));
  ASSERT_TRUE(DisplaySees([](const FakeDisplayState& state) {
    return state.Count(Request::kDmabufUpdate) == 2 && state.blocked;
  }));
  // The control queue goes on: other commands are answered while the flush waits.
  EXPECT_EQ(Create3d(6), ResponseType::kOkNodata);  // Run() fails the test if it is held.
  EXPECT_EQ(Unref(6), ResponseType::kOkNodata);
  EXPECT_FALSE(Answered(flush));
  EXPECT_EQ(model_->held_commands(), 1u);

  ReleaseUpdate();
  ASSERT_TRUE(PumpUntil([&] { return Answered(flush); }));
  EXPECT_EQ(*UsedOf(flush), sizeof(CtrlHdr));
  EXPECT_EQ(ResponseIn(1).type, static_cast<uint32_t>(ResponseType::kOkNodata));
  EXPECT_EQ(model_->held_commands(), 0u);
  EXPECT_TRUE(display_->Anomalies().empty());
}

TEST_F(DmabufScanoutsTest, GetDisplayInfoQueuedBehindAnUnansweredUpdateWaitsForIt) {
  // QEMU reads nothing while it owes a DMABUF_UPDATE reply: a request sent meanwhile is
  // answered after it, in order.
  ASSERT_NO_FATAL_FAILURE(
      ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased}));
  ASSERT_TRUE(DisplaySees([](const FakeDisplayState& state) { return state.blocked; }));
  Pending* info = Begin(Header(CommandType::kGetDisplayInfo), 1);
  loop_.RunOnce(50);
  EXPECT_FALSE(Answered(info));
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntil([&] { return Answered(info); }));
  EXPECT_EQ(ResponseIn(1).type, static_cast<uint32_t>(ResponseType::kOkDisplayInfo));
  EXPECT_TRUE(channel_->replies_trusted());
}

TEST_F(DmabufScanoutsTest, FlushesDuringAnUpdateAreMergedIntoTheNext) {
  ASSERT_NO_FATAL_FAILURE(ShowExportedResource(
      {.dmabuf_update_reply =
           DmabufUpdateReply::kWhenReleased}));  // Its first DMABUF_UPDATE stays unanswered.
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 1));
  Pending* first = StartFlush(5, Rect{0, 0, 8, 8}, 1);
  Pending* second = StartFlush(5, Rect{32, 40, 8, 4}, 2);
  EXPECT_EQ(model_->held_commands(), 2u);

  ReleaseUpdate();  // Answers SET_SCANOUT's update; the merged one goes out.
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 2));
  EXPECT_FALSE(Answered(first) || Answered(second));
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntil([&] { return Answered(first) && Answered(second); }));
  // One DMABUF_UPDATE for both (three would have kept QEMU blocked twice as long).
  const FakeDisplayState state = display_->Snapshot();
  EXPECT_EQ(state.Count(Request::kDmabufUpdate), 2u);
  EXPECT_EQ(state.dmabufs[0]->updates, 2u);
  EXPECT_EQ(state.framebuffers[0]->At(39, 43), FakeRenderer::ExportedPixel(5, 39, 43));
}

TEST_F(DmabufScanoutsTest, UnansweredUpdateEndsWithTheReplyTimeout) {
  ASSERT_NO_FATAL_FAILURE(ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kNever},
                                               {.reply_timeout = milliseconds(200)}));
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1);
  ASSERT_FALSE(Answered(flush));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(PumpUntil([&] { return Answered(flush); }));
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(100));
  EXPECT_EQ(ResponseIn(1).type, static_cast<uint32_t>(ResponseType::kOkNodata));
  // Like any unanswered request: the channel asks nothing more on this socket, so later
  // flushes are answered at once, with no DMABUF_UPDATE that would go unanswered too.
  EXPECT_FALSE(channel_->replies_trusted());
  EXPECT_TRUE(channel_->attached());
  Pending* later = StartFlush(5, Rect{0, 0, kSize, kSize}, 2);
  EXPECT_TRUE(Answered(later));
  EXPECT_EQ(ResponseIn(2).type, static_cast<uint32_t>(ResponseType::kOkNodata));
  EXPECT_EQ(display_->Count(Request::kDmabufUpdate), 1u);
  EXPECT_EQ(model_->held_commands(), 0u);
}

TEST_F(DmabufScanoutsTest, DisplayClosingAnswersTheHeldFlush) {
  ASSERT_NO_FATAL_FAILURE(ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kNever}));
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1);
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 1));
  display_->Disconnect();
  ASSERT_TRUE(PumpUntil([&] { return Answered(flush); }));
  EXPECT_FALSE(channel_->attached());
  EXPECT_EQ(ResponseIn(1).type, static_cast<uint32_t>(ResponseType::kOkNodata));
}

TEST_F(DmabufScanoutsTest, ExportFailureFallsBackToReadBackAndSaysWhy) {
  renderer_.exportable = false;
  Connect();
  ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(ShowOn(0, 5), ResponseType::kOkNodata);
  ASSERT_EQ(ShowOn(0, 5, Rect{0, 0, 32, 32}), ResponseType::kOkNodata);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("scanout path: read-back for scanout 0 (resource 5 has no dmabuf: fake: no "
                     "dmabuf export here)"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("scanout path: read-back", log.find("scanout path: read-back") + 1),
            std::string::npos)
      << "logged once per scanout, not per SET_SCANOUT: " << log;
  EXPECT_EQ(renderer_.export_calls, 1) << "a failed export is not tried again";
  Pending* flush = StartFlush(5, Rect{0, 0, 32, 32}, 1);
  EXPECT_TRUE(Answered(flush));
  // The read-back path as before: SCANOUT, then UPDATEs of read-back pixels (0x42 here).
  ASSERT_TRUE(DisplaySaw(Request::kUpdate, 3));
  const FakeDisplayState state = display_->Snapshot();
  EXPECT_EQ(state.Count(Request::kDmabufScanout) + state.Count(Request::kDmabufScanout2), 0u);
  EXPECT_EQ(state.framebuffers[0]->At(5, 5), 0x42424242u);
  EXPECT_TRUE(state.anomalies.empty()) << state.anomalies.front();
}

// A guest rendering faster than any display refreshes: a burst of flushes of a read-back scanout
// is read back once at once and once more when the interval has passed, with what the resource
// shows then; every flush is answered at once (ReadbackPacer).
TEST_F(DmabufScanoutsTest, ReadBacksOfABurstOfFlushesArePacedAndTheLastFrameIsShown) {
  Connect();  // Not exportable: read back.
  ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
  ASSERT_EQ(ShowOn(0, 5), ResponseType::kOkNodata);  // Read back whole, at once.
  ASSERT_TRUE(DisplaySaw(Request::kUpdate, 1));
  const int after_set = renderer_.read_backs;
  for (uint32_t frame = 1; frame <= 20; ++frame) {
    renderer_.read_back_byte = static_cast<uint8_t>(frame);
    Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, frame);
    EXPECT_TRUE(Answered(flush)) << "frame " << frame;
  }
  EXPECT_EQ(renderer_.read_backs, after_set) << "a burst right after SET_SCANOUT waits";
  // The last frame's pixels reach the display once the interval has passed.
  ASSERT_TRUE(DisplaySees([](const FakeDisplayState& state) {
    return state.framebuffers[0] && state.framebuffers[0]->At(5, 5) == 0x14141414u;
  }));
  EXPECT_EQ(renderer_.read_backs, after_set + 1) << "the burst was read back once";
  EXPECT_FALSE(model_->scanout_pacer().kept(0));
}

TEST_F(DmabufScanoutsTest, ScanoutInsideItsResourceIsReadBack) {
  // QEMU shows a dmabuf from its top-left corner: an offset scanout would show the wrong part.
  renderer_.exportable = true;
  Connect();
  ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(ShowOn(0, 5, Rect{16, 0, 48, 64}), ResponseType::kOkNodata);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("scanout path: read-back for scanout 0 (it starts at 16,0"), std::string::npos)
      << log;
  EXPECT_EQ(renderer_.export_calls, 0);
  ASSERT_TRUE(DisplaySaw(Request::kUpdate, 1));
  EXPECT_EQ(display_->Count(Request::kDmabufScanout2), 0u);
}

TEST_F(DmabufScanoutsTest, UnrefWhileAnUpdateIsPendingDisablesAndStillAnswersTheFlush) {
  ASSERT_NO_FATAL_FAILURE(
      ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased}));
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1);
  ASSERT_FALSE(Answered(flush));
  ASSERT_EQ(Unref(5), ResponseType::kOkNodata);  // Answered at once.
  EXPECT_FALSE(model_->scanout(0).dmabuf.active());
  EXPECT_TRUE(renderer_.textures.empty());
  EXPECT_FALSE(Answered(flush));

  ReleaseUpdate();  // QEMU answers, then reads the disable.
  ASSERT_TRUE(PumpUntil([&] { return Answered(flush); }));
  EXPECT_EQ(ResponseIn(1).type, static_cast<uint32_t>(ResponseType::kOkNodata));
  ASSERT_TRUE(DisplaySaw(Request::kDmabufScanout, 1));
  const FakeDisplayState state = display_->Snapshot();
  EXPECT_FALSE(state.dmabufs[0]);
  EXPECT_FALSE(state.messages.back().had_fd);
  // The flush's merged damage was not sent after the disable.
  EXPECT_EQ(state.Count(Request::kDmabufUpdate), 1u);
  EXPECT_TRUE(state.anomalies.empty()) << state.anomalies.front();
  EXPECT_EQ(model_->held_commands(), 0u);
}

TEST_F(DmabufScanoutsTest, DisableWhileAnUpdateIsPendingStillAnswersTheFlush) {
  ASSERT_NO_FATAL_FAILURE(
      ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased}));
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 1));
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntilNoUpdateInFlight());
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1);
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 2));
  ASSERT_EQ(ShowOn(0, 0, Rect{}), ResponseType::kOkNodata);
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntil([&] { return Answered(flush); }));
  ASSERT_TRUE(DisplaySaw(Request::kDmabufScanout, 1));
  EXPECT_FALSE(display_->Snapshot().dmabufs[0]);
  EXPECT_TRUE(display_->Anomalies().empty());
}

TEST_F(DmabufScanoutsTest, ResetDropsTheHeldFlushAndALateReplyCompletesNothing) {
  ASSERT_NO_FATAL_FAILURE(
      ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased}));
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1);
  model_->Reset();
  EXPECT_EQ(model_->held_commands(), 0u);
  EXPECT_TRUE(renderer_.textures.empty());
  ReleaseUpdate();  // The reply to SET_SCANOUT's update comes after the reset.
  ASSERT_TRUE(DisplaySaw(Request::kDmabufScanout, 1));  // The disable.
  ASSERT_TRUE(PumpUntil([&] { return display_->Snapshot().dmabuf_updates_answered == 1; }));
  loop_.RunOnce(50);
  // Dropped at the reset: returned once, with nothing written, and never again.
  EXPECT_EQ(ring_.Returns(flush->head), 1u);
  EXPECT_EQ(UsedOf(flush), 0u);
  EXPECT_EQ(*Host(kSlotArea + 3 * kSlotSize, 1), testing::kCanary) << "nothing written";
  EXPECT_EQ(display_->Count(Request::kDmabufUpdate), 1u);
  EXPECT_TRUE(channel_->replies_trusted());
}

TEST_F(DmabufScanoutsTest, QueueStopReturnsTheHeldFlushUnansweredAndItsReplyWritesNothing) {
  ASSERT_NO_FATAL_FAILURE(
      ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased}));
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1);
  in_flight_.Stop();  // The queue stops (GpuDevice::QueueStopping): the chain goes back unanswered.
  model_->DropHeld();
  in_flight_.Start(&ring_, true);
  EXPECT_EQ(model_->held_commands(), 0u);
  // Its damage still goes out (the scanout is still shown), but nothing is answered.
  ReleaseUpdate();
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 2));
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntilNoUpdateInFlight());
  EXPECT_EQ(ring_.Returns(flush->head), 1u) << "returned once, at the stop";
  EXPECT_EQ(UsedOf(flush), 0u);
  EXPECT_EQ(ResponseIn(1).type, 0xAAAAAAAAu) << "nothing written";
  // The scanout goes on: the next flush is sent and answered.
  Pending* next = StartFlush(5, Rect{0, 0, kSize, kSize}, 2);
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 3));
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntil([&] { return Answered(next); }));
}

TEST_F(DmabufScanoutsTest, FlushAnsweredWhileItsQueueIsDisabledGoesOutWhenEnabled) {
  ASSERT_NO_FATAL_FAILURE(
      ShowExportedResource({.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased}));
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1);
  in_flight_.SetEnabled(false);  // SET_VRING_ENABLE 0 (GpuDevice::QueueEnabled).
  ReleaseUpdate();
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 2));
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntilNoUpdateInFlight());
  EXPECT_EQ(ring_.Returns(flush->head), 0u) << "returned while disabled";
  EXPECT_EQ(ResponseIn(1).type, 0xAAAAAAAAu) << "written while disabled";
  in_flight_.SetEnabled(true);
  EXPECT_EQ(ring_.Returns(flush->head), 1u);
  EXPECT_EQ(ResponseIn(1).type, static_cast<uint32_t>(ResponseType::kOkNodata));
}

TEST_F(DmabufScanoutsTest, FencedFlushWaitsForTheDisplayThenItsFence) {
  renderer_.exportable = true;
  Connect();
  renderer_.SetFenceHandler(
      [this](const renderer::FenceSignal& fence) { model_->OnFenceSignalled(fence); });
  ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
  ASSERT_EQ(ShowOn(0, 5), ResponseType::kOkNodata);
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1, kFlagFence);
  ASSERT_TRUE(PumpUntil([&] { return !renderer_.created_fences.empty(); }));
  EXPECT_FALSE(Answered(flush));
  renderer_.fence_handler(renderer::FenceSignal{ContextId{0}, 0, 7, false});
  ASSERT_TRUE(Answered(flush));
  const CtrlHdr response = ResponseIn(1);
  EXPECT_EQ(response.type, static_cast<uint32_t>(ResponseType::kOkNodata));
  EXPECT_EQ(response.flags, kFlagFence);
  EXPECT_EQ(response.fence_id, 7u);
}

TEST_F(DmabufScanoutsTest, FlushOfAResourceOnTwoScanoutsWaitsForBothReplies) {
  ASSERT_NO_FATAL_FAILURE(
      ShowExportedResource({.outputs = {test::FakeOutput{}, test::FakeOutput{}},
                            .dmabuf_update_reply = DmabufUpdateReply::kWhenReleased}));
  ASSERT_EQ(ShowOn(1, 5), ResponseType::kOkNodata);
  EXPECT_EQ(renderer_.export_calls, 1) << "the second scanout shares the first's export";
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 1));
  ReleaseUpdate();
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 2));
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntilNoUpdateInFlight());
  Pending* flush = StartFlush(5, Rect{0, 0, kSize, kSize}, 1);
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 3));
  ReleaseUpdate();
  ASSERT_TRUE(DisplaySaw(Request::kDmabufUpdate, 4));
  ASSERT_TRUE(PumpUntil([&] { return display_->Snapshot().dmabuf_updates_answered == 3; }));
  loop_.RunOnce(20);
  EXPECT_FALSE(Answered(flush)) << "one of its two updates is still unanswered";
  ReleaseUpdate();
  ASSERT_TRUE(PumpUntil([&] { return Answered(flush); }));
  EXPECT_TRUE(display_->Anomalies().empty());
}

TEST_F(DmabufScanoutsTest, PageFlipsReuseExportsAndNoFdLeaks) {
  renderer_.exportable = true;
  Connect();
  const size_t fds_before = OpenFdCount();
  ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
  ASSERT_EQ(Create3d(6), ResponseType::kOkNodata);
  for (int frame = 0; frame < 6; ++frame) {
    const uint32_t id = frame % 2 == 0 ? 5 : 6;
    ASSERT_EQ(ShowOn(0, id), ResponseType::kOkNodata);
    Pending* flush = StartFlush(id, Rect{0, 0, kSize, kSize}, 1);
    ASSERT_TRUE(PumpUntil([&] { return Answered(flush); }));
  }
  EXPECT_EQ(renderer_.export_calls, 2) << "a flip back reuses the resource's export";
  ASSERT_TRUE(DisplaySees([](const FakeDisplayState& state) {
    return state.Count(Request::kDmabufScanout2) == 6 && state.Count(Request::kDmabufUpdate) == 12;
  }));
  EXPECT_EQ(display_->Framebuffer(0)->At(3, 4), FakeRenderer::ExportedPixel(6, 3, 4));
  EXPECT_GT(OpenFdCount(), fds_before);

  ASSERT_EQ(ShowOn(0, 0, Rect{}), ResponseType::kOkNodata);
  ASSERT_EQ(Unref(5), ResponseType::kOkNodata);
  ASSERT_EQ(Unref(6), ResponseType::kOkNodata);
  ASSERT_TRUE(DisplaySaw(Request::kDmabufScanout, 1));  // The fake closed its copy.
  EXPECT_EQ(OpenFdCount(), fds_before);
  EXPECT_TRUE(display_->Anomalies().empty());
}

}  // namespace
}  // namespace vgpu::gpu
