// The virtio-gpu device through the daemon process: commands on the real control and cursor
// queues, display output checked in QEMU's end of the GPU socket (FakeDisplay), and the control
// socket's responsiveness while the device thread is busy.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "gpu/protocol.h"
#include "integration/gpu_daemon_fixture.h"
#include "support/fake_display.h"

namespace vgpu::test {
namespace {

using gpu::CommandType;
using gpu::ResponseType;

class GpuDeviceTest : public GpuDaemonTest {};

TEST_F(GpuDeviceTest, FrameReachesTheDisplayPixelExact) {
  Connect();
  const std::vector<uint32_t> pixels = Pattern(320, 200, 1);
  ShowResource(1, 320, 200, pixels);
  EXPECT_TRUE(WaitForFrame(0, pixels, 320));
  EXPECT_TRUE(display().Anomalies().empty()) << ::testing::PrintToString(display().Anomalies());
}

TEST_F(GpuDeviceTest, PartialDamageUpdatesOnlyTheRectangle) {
  Connect();
  const std::vector<uint32_t> pixels = Pattern(256, 128, 2);
  ShowResource(1, 256, 128, pixels);
  ASSERT_TRUE(WaitForFrame(0, pixels, 256));
  // The guest redraws its whole buffer but transfers and flushes only an 8x16 cell at (0,48),
  // like fbcon's cursor: the display must change in exactly that cell.
  const std::vector<uint32_t> redrawn = Pattern(256, 128, 99);
  ASSERT_TRUE(session().ram->Write(
      last_backing_,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(redrawn.data()), 256 * 128 * 4)));
  const gpu::Rect cell{0, 48, 8, 16};
  Transfer(1, cell, 256);
  Flush(1, cell);
  std::vector<uint32_t> expected = pixels;
  for (uint32_t y = 48; y < 64; ++y) {
    for (uint32_t x = 0; x < 8; ++x) expected[y * 256 + x] = redrawn[y * 256 + x];
  }
  EXPECT_TRUE(WaitForFrame(0, expected, 256));
  EXPECT_TRUE(display().Anomalies().empty());
}

TEST_F(GpuDeviceTest, EveryFormatIsConvertedForTheDisplay) {
  Connect();
  // The same red-green-blue in each of the 8 formats' byte orders must come out identical.
  struct Case {
    gpu::Format format;
    uint8_t bytes[4];  // Memory order of one pixel R=0x11 G=0x22 B=0x33 (alpha/X 0xff).
  };
  const Case cases[] = {{gpu::Format::kB8G8R8A8Unorm, {0x33, 0x22, 0x11, 0xff}},
                        {gpu::Format::kB8G8R8X8Unorm, {0x33, 0x22, 0x11, 0xff}},
                        {gpu::Format::kA8R8G8B8Unorm, {0xff, 0x11, 0x22, 0x33}},
                        {gpu::Format::kX8R8G8B8Unorm, {0xff, 0x11, 0x22, 0x33}},
                        {gpu::Format::kR8G8B8A8Unorm, {0x11, 0x22, 0x33, 0xff}},
                        {gpu::Format::kX8B8G8R8Unorm, {0xff, 0x33, 0x22, 0x11}},
                        {gpu::Format::kA8B8G8R8Unorm, {0xff, 0x33, 0x22, 0x11}},
                        {gpu::Format::kR8G8B8X8Unorm, {0x11, 0x22, 0x33, 0xff}}};
  uint32_t id = 1;
  for (const Case& test_case : cases) {
    std::vector<uint32_t> pixels(32 * 32);
    for (uint32_t& pixel : pixels) std::memcpy(&pixel, test_case.bytes, 4);
    ShowResource(id, 32, 32, pixels, 0, test_case.format);
    const std::vector<uint32_t> expected(32 * 32, 0x112233);
    EXPECT_TRUE(WaitForFrame(0, expected, 32))
        << "format " << static_cast<uint32_t>(test_case.format);
    ++id;
  }
}

TEST_F(GpuDeviceTest, ResourceOnTwoScanoutsUpdatesBoth) {
  NegotiationOptions options;
  options.display_options.outputs = {FakeOutput{}, FakeOutput{}};
  Connect(options);
  const std::vector<uint32_t> pixels = Pattern(64, 64, 3);
  ShowResource(1, 64, 64, pixels, 0);
  gpu::SetScanout set{};
  set.hdr = Header(CommandType::kSetScanout);
  set.r = gpu::Rect{0, 0, 64, 64};
  set.scanout_id = 1;
  set.resource_id = 1;
  ASSERT_EQ(Run(set), ResponseType::kOkNodata);
  Flush(1, gpu::Rect{0, 0, 64, 64});
  EXPECT_TRUE(WaitForFrame(0, pixels, 64));
  EXPECT_TRUE(WaitForFrame(1, pixels, 64));
  EXPECT_TRUE(display().Anomalies().empty());
}

TEST_F(GpuDeviceTest, CursorUpdateMoveAndHide) {
  Connect();
  std::vector<uint32_t> cursor(64 * 64);
  for (uint32_t i = 0; i < cursor.size(); ++i) cursor[i] = 0x80000000u | i;
  // Shown on a scanout is irrelevant for a cursor; ShowResource needs >= 16x16, fine for 64x64.
  ShowResource(7, 64, 64, cursor, 0, gpu::Format::kB8G8R8A8Unorm);
  auto cursor_command = [&](CommandType type, uint32_t resource, uint32_t x, uint32_t y) {
    gpu::UpdateCursor request{};
    request.hdr = Header(type);
    request.pos = gpu::CursorPos{0, x, y, 0};
    request.resource_id = resource;
    request.hot_x = 3;
    request.hot_y = 4;
    Result<uint64_t> address = session().ram->Allocate(sizeof(request), 8);
    ASSERT_TRUE(address);
    ASSERT_TRUE(session().ram->WriteObject(*address, request));
    Result<uint16_t> head =
        session().cursor_queue->AddChain({{*address, static_cast<uint32_t>(sizeof(request))}}, {});
    ASSERT_TRUE(head);
    session().cursor_queue->Kick();
    std::optional<UsedElement> used =
        session().cursor_queue->WaitForUsedHead(*head, kCommandTimeout);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->length, 0u);  // Like QEMU: nothing written back for cursor commands.
  };
  cursor_command(CommandType::kUpdateCursor, 7, 10, 20);
  EXPECT_TRUE(display().WaitFor(
      [&](const FakeDisplayState& state) {
        const FakeCursor& c = state.cursors[0];
        return c.defined && c.hot_x == 3 && c.hot_y == 4 && c.image == cursor;
      },
      std::chrono::seconds(3)));
  cursor_command(CommandType::kMoveCursor, 7, 100, 200);
  EXPECT_TRUE(display().WaitFor(
      [](const FakeDisplayState& state) {
        return state.cursors[0].visible && state.cursors[0].x == 100 && state.cursors[0].y == 200;
      },
      std::chrono::seconds(3)));
  cursor_command(CommandType::kUpdateCursor, 0, 100, 200);
  EXPECT_TRUE(
      display().WaitFor([](const FakeDisplayState& state) { return !state.cursors[0].visible; },
                        std::chrono::seconds(3)));
  EXPECT_TRUE(display().Anomalies().empty());
}

TEST_F(GpuDeviceTest, GetConfigIsAnsweredWhileTheDeviceThreadIsBlocked) {
  // The device thread is made to block, deterministically: the VMM's end of the display socket
  // stops reading while a flush sends a 4 MiB UPDATE through a smaller socket buffer (2 MiB: the
  // daemon raises it), so the device thread sits in sendmsg (bounded by the display channel's 1 s
  // send timeout). GET_CONFIG goes to the control thread and must be answered while the flush is
  // still unanswered.
  NegotiationOptions options;
  options.memory_size = 64ull << 20;
  options.display_options.outputs = {FakeOutput{true, 1024, 1024}};
  options.display_options.daemon_send_buffer = 64 << 10;
  Connect(options);
  const uint32_t width = 1024, height = 1024;
  ShowResource(1, width, height, Pattern(width, height, 9));
  // The whole first frame is in: nothing of SET_SCANOUT's UPDATE is still on its way.
  ASSERT_TRUE(WaitForFrame(0, Pattern(width, height, 9), width));

  display().SetReading(false);
  gpu::ResourceFlush flush{};
  flush.hdr = Header(CommandType::kResourceFlush);
  flush.r = gpu::Rect{0, 0, width, height};
  flush.resource_id = 1;
  const CommandBuffers flush_buffers = Queue(flush);
  const uint16_t used_before = session().control_queue->DeviceUsedIndex();
  session().control_queue->Kick();
  // The UPDATE has started: bytes are waiting in the VMM's end, and the flush is unanswered.
  ASSERT_TRUE(display().WaitForUnreadBytes(std::chrono::seconds(5)));

  Result<std::vector<uint8_t>> config = connected_->frontend.GetConfig(0, 16);
  const bool flush_answered_by_then = session().control_queue->DeviceUsedIndex() != used_before;
  display().SetReading(true);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->size(), 16u);
  EXPECT_FALSE(flush_answered_by_then)
      << "the flush was answered before GET_CONFIG: the device thread was not blocked (or its "
         "1 s send timeout passed)";
  // Reading again unblocks the device thread: the flush completes and the frame arrives whole.
  ASSERT_TRUE(session().control_queue->WaitForUsedHead(flush_buffers.head, kCommandTimeout));
  EXPECT_EQ(ResponseOf(flush_buffers), ResponseType::kOkNodata);
  EXPECT_TRUE(WaitForFrame(0, Pattern(width, height, 9), width));
  EXPECT_TRUE(display().Anomalies().empty());
}

// The same device with virglrenderer (Mesa llvmpipe here): capsets, a 3D resource drawn by a
// transfer and shown on a scanout through read-back, and a fenced command answered only after
// the renderer's fence.
class VirglDeviceTest : public GpuDeviceTest {
 protected:
  void SetUp() override { StartVirglDaemonOrSkip(); }
};

TEST_F(VirglDeviceTest, CapsetsComeFromVirglrenderer) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(session().config.size(), 16u);
  uint32_t num_capsets = 0;
  std::memcpy(&num_capsets, session().config.data() + 12, 4);
  EXPECT_EQ(num_capsets, 2u);
  const uint32_t expected[2][3] = {{1, 1, 308}, {2, 2, 1376}};
  for (uint32_t index = 0; index < 2; ++index) {
    std::optional<gpu::RespCapsetInfo> info = CapsetInfoAt(index);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->hdr.type, static_cast<uint32_t>(ResponseType::kOkCapsetInfo));
    EXPECT_EQ(info->capset_id, expected[index][0]);
    EXPECT_EQ(info->capset_max_version, expected[index][1]);
    EXPECT_EQ(info->capset_max_size, expected[index][2]);
  }
  gpu::GetCapsetInfo out_of_range{};
  out_of_range.hdr = Header(CommandType::kGetCapsetInfo);
  out_of_range.capset_index = 2;
  EXPECT_EQ(Run(out_of_range), ResponseType::kErrInvalidParameter);
}

TEST_F(VirglDeviceTest, ThreeDimensionalResourceIsShownThroughReadBack) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  const uint32_t width = 64, height = 64;
  const std::vector<uint32_t> pixels = Pattern(width, height, 5);
  Show3dResource(1, 10, width, height, pixels);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_TRUE(WaitForFrame(0, pixels, width));
  EXPECT_TRUE(display().Anomalies().empty());
}

// Which way a 3D scanout reaches the display is chosen by what the renderer can export, and
// logged. Without a DRM device (/dev/dri) no EGL here can export a texture as a dmabuf: Mesa's
// llvmpipe lacks EGL_MESA_image_dma_buf_export, and NVIDIA's EGL on the GPU machine offers it but
// fails the export (EGL_BAD_MATCH). The export must then fail cleanly and the scanout be read
// back. Where one is exported, the display must get the dmabuf instead.
TEST_F(VirglDeviceTest, ScanoutPathFollowsWhatTheRendererCanExportAndIsLogged) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  const uint32_t width = 64, height = 64;
  const std::vector<uint32_t> pixels = Pattern(width, height, 7);
  Show3dResource(1, 10, width, height, pixels);
  ASSERT_FALSE(HasFatalFailure());
  Flush(10, gpu::Rect{0, 0, width, height});
  ASSERT_FALSE(HasFatalFailure());
  // The device thread logs before it answers SET_SCANOUT: the line is in the log by now.
  const std::string log = daemon_->StderrText();
  const bool dmabuf =
      log.find("scanout path: dmabuf (scanout 0 shows resource 10") != std::string::npos;
  const bool read_back =
      log.find("scanout path: read-back for scanout 0 (resource 10 has no dmabuf: ") !=
      std::string::npos;
  ASSERT_NE(dmabuf, read_back) << "exactly one path must be logged:\n" << log;
  // In the test's XML output (--gtest_output=xml): which path this host took, and why.
  const size_t line = log.find("scanout path: ");
  RecordProperty("scanout_path", log.substr(line, log.find('\n', line) - line));
  if (!std::filesystem::exists("/dev/dri")) {
    EXPECT_TRUE(read_back) << "no DRM device, yet:\n" << log;
    EXPECT_NE(log.find("virgl_renderer_get_fd_for_texture2 on resource 10 failed"),
              std::string::npos)
        << log;
  }
  const FakeDisplayState state = display().Snapshot();
  const size_t dmabuf_scanouts = state.Count(gpu::display::Request::kDmabufScanout) +
                                 state.Count(gpu::display::Request::kDmabufScanout2);
  if (read_back) {
    EXPECT_TRUE(WaitForFrame(0, pixels, width));
    EXPECT_EQ(dmabuf_scanouts, 0u);
  } else {
    // A real dmabuf: its layout may be tiled, so only what the message says is checked.
    ASSERT_EQ(dmabuf_scanouts, 1u);
    ASSERT_TRUE(state.dmabufs[0]);
    EXPECT_EQ(state.dmabufs[0]->scanout.fd_width, width);
    EXPECT_EQ(state.dmabufs[0]->scanout.fd_height, height);
    EXPECT_GE(state.dmabufs[0]->buffer_bytes, uint64_t{width} * height * 4);
    EXPECT_EQ(state.Count(gpu::display::Request::kUpdate), 0u);
  }
  EXPECT_TRUE(state.anomalies.empty()) << state.anomalies.front();
}

TEST_F(VirglDeviceTest, FencedSubmitIsAnsweredAfterItsFence) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(CreateContext(1), ResponseType::kOkNodata);
  gpu::CmdSubmit submit{};
  submit.hdr = Header(CommandType::kSubmit3d);
  submit.hdr.ctx_id = 1;
  submit.hdr.flags = gpu::kFlagFence;
  submit.hdr.fence_id = 0x100000007ull;  // Over 32 bits: must come back whole.
  CommandBuffers buffers = Queue(submit);
  session().control_queue->Kick();
  ASSERT_TRUE(session().control_queue->WaitForUsedHead(buffers.head, kCommandTimeout));
  Result<gpu::CtrlHdr> response = session().ram->ReadObject<gpu::CtrlHdr>(buffers.response_address);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->type, static_cast<uint32_t>(ResponseType::kOkNodata));
  EXPECT_EQ(response->flags & gpu::kFlagFence, gpu::kFlagFence);
  EXPECT_EQ(response->fence_id, 0x100000007ull);
}

// virgl_renderer_cleanup must run on the device thread that owns the GL contexts; from another
// thread libepoxy aborts ("Couldn't find current GLX or EGL context"), as an earlier build did.
TEST_F(VirglDeviceTest, TerminationSignalsExitZeroWithARendererRunning) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(CreateContext(1), ResponseType::kOkNodata);
  daemon_->Terminate();
  std::optional<ExitStatus> status = daemon_->WaitForExit(std::chrono::seconds(2));
  ASSERT_TRUE(status) << "still running 2 s after SIGTERM";
  EXPECT_EQ(status->exit_code, 0) << status->ToString();
}

}  // namespace
}  // namespace vgpu::test
