// The daemon in --gpu-mode gfxstream against the STAND-IN gfxstream library
// (tests/support/gfxstream_standin), not a real gfxstream: VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY
// points the daemon at it. Driven through the test frontend like QEMU would: capsets, a context,
// a 3D resource filled by SUBMIT_3D (the stand-in's made-up FILL command) and shown through
// read-back, fenced commands answered after the stand-in signals their fences, and start-up
// failures without the library or with one that lacks a symbol.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/unique_fd.h"
#include "gpu/protocol.h"
#include "integration/gfxstream_fixture.h"
#include "support/fake_display.h"

namespace vgpu::test {
namespace {

constexpr uint32_t kOpFill = 0x4c4c4946;  // The stand-in's FILL: resource, x, y, w, h, colour.

class GfxstreamDeviceTest : public GfxstreamDaemonTest {
 protected:
  void SetUp() override {
    ASSERT_FALSE(scratch_.path().empty());
    log_path_ = scratch_.path() + "/standin.log";
    gate_path_ = scratch_.path() + "/fence-gate";
    ASSERT_EQ(mkfifo(gate_path_.c_str(), 0600), 0);
    StartGfxstreamDaemon(
        VGPU_GFXSTREAM_STANDIN_PATH,
        {"GFXSTREAM_STANDIN_LOG=" + log_path_, "GFXSTREAM_STANDIN_FENCE_GATE=" + gate_path_});
  }
  void TearDown() override {
    if (HasFailure()) std::printf("---- stand-in calls ----\n%s", ReadTextFile(log_path_).c_str());
    GfxstreamDaemonTest::TearDown();
  }

  // Lets the stand-in's worker signal one queued fence.
  void OpenGate() {
    UniqueFd gate(open(gate_path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(gate.valid());
    ASSERT_EQ(write(gate.get(), "g", 1), 1);
  }

  ScratchDirectory scratch_;
  std::string log_path_;
  std::string gate_path_;
};

TEST_F(GfxstreamDeviceTest, StandinCapsetsAreOfferedAndAnswered) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  uint32_t num_capsets = 0;
  std::memcpy(&num_capsets, session().config.data() + 12, 4);
  EXPECT_EQ(num_capsets, 2u);
  // The defaults of --gpu-mode gfxstream, in order; sizes are those of gfxstream's structs and
  // the version stays 0 (gfxstream never reports one).
  const uint32_t expected[2][3] = {{3, 0, 104}, {8, 0, 16}};
  for (uint32_t index = 0; index < 2; ++index) {
    std::optional<gpu::RespCapsetInfo> info = CapsetInfoAt(index);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->hdr.type, static_cast<uint32_t>(ResponseType::kOkCapsetInfo));
    EXPECT_EQ(info->capset_id, expected[index][0]);
    EXPECT_EQ(info->capset_max_version, expected[index][1]);
    EXPECT_EQ(info->capset_max_size, expected[index][2]);
  }
  gpu::GetCapset capset{};
  capset.hdr = Header(CommandType::kGetCapset);
  capset.capset_id = 8;
  capset.capset_version = 0;
  CommandBuffers buffers = Queue(capset, sizeof(gpu::RespCapset) + 16);
  session().control_queue->Kick();
  ASSERT_TRUE(session().control_queue->WaitForUsedHead(buffers.head, kCommandTimeout));
  EXPECT_EQ(ResponseOf(buffers), ResponseType::kOkCapset);
  Result<uint32_t> protocol_version =
      session().ram->ReadObject<uint32_t>(buffers.response_address + sizeof(gpu::RespCapset));
  ASSERT_TRUE(protocol_version);
  EXPECT_EQ(*protocol_version, 1u);
}

TEST_F(GfxstreamDeviceTest, StandinFillIsShownAndAFlushReadsBackOnlyItsRectangle) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  CreateGlesContext(1);
  CreateTarget(1, 10, 64, 64);
  ASSERT_FALSE(HasFatalFailure());
  Submit(1, {kOpFill, 10, 0, 0, 64, 64, 0x000000ff});  // Blue (B8G8R8X8 memory order).
  gpu::SetScanout set{};
  set.hdr = Header(CommandType::kSetScanout);
  set.r = gpu::Rect{0, 0, 64, 64};
  set.resource_id = 10;
  ASSERT_EQ(Run(set), ResponseType::kOkNodata);
  std::vector<uint32_t> expected(64 * 64, 0x0000ff);
  EXPECT_TRUE(WaitForFrame(0, expected, 64));

  Submit(1, {kOpFill, 10, 8, 16, 16, 8, 0x00ff0000});  // A red 16x8 cell at (8,16).
  Flush(10, gpu::Rect{8, 16, 16, 8});
  for (uint32_t y = 16; y < 24; ++y) {
    for (uint32_t x = 8; x < 24; ++x) expected[y * 64 + x] = 0xff0000;
  }
  EXPECT_TRUE(WaitForFrame(0, expected, 64));
  EXPECT_TRUE(display().Anomalies().empty());
  // The flush read back the damaged cell into a host buffer, not the whole resource.
  const std::string calls = ReadTextFile(log_path_);
  EXPECT_NE(calls.find("transfer_read 10 box=8,16,0,16,8,1 host_iov copied=" +
                       std::to_string(7 * 256 + 16 * 4) + " result=0"),
            std::string::npos)
      << calls;
}

TEST_F(GfxstreamDeviceTest, FencedSubmitIsAnsweredOnlyAfterTheStandinSignalsItsFence) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  // Nothing pending on the global timeline: the stand-in signals inside create_fence.
  CreateGlesContext(1, gpu::kFlagFence, 5);
  ASSERT_FALSE(HasFatalFailure());

  // The submit leaves work pending, so its fence waits for the stand-in's worker thread, which
  // waits for the gate.
  const std::vector<uint32_t>& nop = kPlaceholderCommand;
  gpu::CmdSubmit submit = SubmitHeader(1, nop);
  submit.hdr.flags = gpu::kFlagFence | gpu::kFlagInfoRingIdx;
  submit.hdr.fence_id = 0x100000007ull;  // Over 32 bits: must come back whole.
  submit.hdr.ring_idx = 0;
  CommandBuffers buffers = Queue(submit, sizeof(gpu::CtrlHdr), nop.data(), nop.size() * 4);
  session().control_queue->Kick();
  EXPECT_FALSE(
      session().control_queue->WaitForUsedHead(buffers.head, std::chrono::milliseconds(300)))
      << "answered before the stand-in signalled the fence";
  OpenGate();
  ASSERT_TRUE(session().control_queue->WaitForUsedHead(buffers.head, kCommandTimeout));
  Result<gpu::CtrlHdr> response = session().ram->ReadObject<gpu::CtrlHdr>(buffers.response_address);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->type, static_cast<uint32_t>(ResponseType::kOkNodata));
  EXPECT_EQ(response->flags & gpu::kFlagFence, gpu::kFlagFence);
  EXPECT_EQ(response->fence_id, 0x100000007ull);
  EXPECT_EQ(response->ctx_id, 1u);

  const std::string calls = ReadTextFile(log_path_);
  EXPECT_NE(calls.find("fence_signalled 5 synchronous"), std::string::npos) << calls;
  EXPECT_NE(calls.find("fence_signalled " + std::to_string(0x100000007ull) + " worker"),
            std::string::npos)
      << calls;
}

// gfxstream opens EGL's default display whatever its flags say; asked for surfaceless (the
// default), the daemon points EGL there before gfxstream starts (the fixture unset
// EGL_PLATFORM in the daemon's environment).
TEST_F(GfxstreamDeviceTest, SurfacelessIsSetForEglBeforeGfxstreamStarts) {
  const std::string calls = ReadTextFile(log_path_);
  EXPECT_NE(calls.find("EGL_PLATFORM=surfaceless"), std::string::npos) << calls;
}

// stream_renderer_teardown runs on the device thread at shutdown and stops the stand-in's worker.
TEST_F(GfxstreamDeviceTest, TerminationWithAStandinContextExitsZero) {
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  CreateGlesContext(1);
  ASSERT_FALSE(HasFatalFailure());
  daemon_->Terminate();
  std::optional<ExitStatus> status = daemon_->WaitForExit(std::chrono::seconds(2));
  ASSERT_TRUE(status) << "still running 2 s after SIGTERM";
  EXPECT_EQ(status->exit_code, 0) << status->ToString();
  EXPECT_NE(ReadTextFile(log_path_).find("teardown"), std::string::npos);
}

// Start-up without a usable library: one error line naming what was looked for, exit 1, and the
// socket never listens.
class GfxstreamStartupTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv(kLibraryVariable); }

  void ExpectRefusal(const std::vector<std::string>& environment, const std::string& message,
                     std::vector<std::string> arguments = {"--gpu-mode", "gfxstream"},
                     const std::vector<std::string>& expected_lines = {}) {
    Result<std::unique_ptr<DaemonProcess>> daemon =
        DaemonProcess::Launch({.arguments = std::move(arguments), .environment = environment});
    ASSERT_TRUE(daemon) << daemon.error().message;
    std::optional<ExitStatus> status = (*daemon)->WaitForExit(std::chrono::seconds(5));
    ASSERT_TRUE(status) << "still running";
    EXPECT_EQ(status->exit_code, 1) << status->ToString();
    const std::string output = (*daemon)->StderrText();
    EXPECT_NE(output.find(message), std::string::npos) << output;
    size_t error_lines = 0;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("error:")) ++error_lines;
    }
    EXPECT_EQ(error_lines, 1u) << output;
    EXPECT_FALSE(IsListeningUnixSocket((*daemon)->socket_path()));
    for (const std::string& line : expected_lines) {
      EXPECT_NE(output.find(line), std::string::npos) << "missing: " << line << "\n" << output;
    }
    EXPECT_EQ(output.find("suppressed"), std::string::npos) << output;
  }
};

TEST_F(GfxstreamStartupTest, LibraryPathFromTheEnvironmentThatDoesNotExistExitsOne) {
  ExpectRefusal({std::string(kLibraryVariable) + "=/nonexistent/libgfxstream_backend.so.0"},
                "error: --gpu-mode gfxstream: cannot load the gfxstream library "
                "'/nonexistent/libgfxstream_backend.so.0' (from "
                "VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY)");
}

TEST_F(GfxstreamStartupTest, NoInstalledLibraryExitsOneNamingSonameAndVariable) {
  // Only meaningful where no gfxstream is installed (Debian ships none).
  if (void* installed = dlopen("libgfxstream_backend.so.0", RTLD_LAZY); installed != nullptr) {
    dlclose(installed);
    GTEST_SKIP() << "a gfxstream library is installed here";
  }
  ExpectRefusal({},
                "error: --gpu-mode gfxstream: cannot load the gfxstream library "
                "'libgfxstream_backend.so.0' (through the dynamic loader's search path; set "
                "VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY to the library's path)");
}

TEST_F(GfxstreamStartupTest, StandinLackingASymbolExitsOneNamingIt) {
  ExpectRefusal(
      {std::string(kLibraryVariable) + "=" + VGPU_GFXSTREAM_STANDIN_WITHOUT_CREATE_FENCE_PATH},
      "lacks stream_renderer_create_fence");
}

// gfxstream waits forever in stream_renderer_init when its EGL display has no configs (a host
// without a display, EGL_PLATFORM unset): the start is bounded, with one line and exit 1.
TEST_F(GfxstreamStartupTest, InitThatNeverReturnsExitsOneWhenTheStartTimesOut) {
  const auto started = std::chrono::steady_clock::now();
  ExpectRefusal({std::string(kLibraryVariable) + "=" + VGPU_GFXSTREAM_STANDIN_PATH,
                 "GFXSTREAM_STANDIN_HANG_INIT=1", "VHOST_DEVICE_GPU_START_TIMEOUT_MS=500"},
                "error: --gpu-mode gfxstream: the renderer did not start within 500 ms");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
}

// SIGTERM while the renderer starts ends the daemon (it used to be ignored until the renderer
// came up, i.e. forever).
TEST_F(GfxstreamStartupTest, TerminationWhileTheRendererStartsExitsZero) {
  ScratchDirectory scratch;
  const std::string log = scratch.path() + "/standin.log";
  Result<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Launch(
      {.arguments = {"--gpu-mode", "gfxstream"},
       .environment = {std::string(kLibraryVariable) + "=" + VGPU_GFXSTREAM_STANDIN_PATH,
                       "GFXSTREAM_STANDIN_HANG_INIT=1", "GFXSTREAM_STANDIN_LOG=" + log}});
  ASSERT_TRUE(daemon) << daemon.error().message;
  // The stand-in logs nothing before it hangs; the daemon's debug line comes first. Wait for the
  // library to be loaded: its init is reached once the process maps it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool loaded = false;
  while (!loaded && std::chrono::steady_clock::now() < deadline) {
    loaded = ReadTextFile("/proc/" + std::to_string((*daemon)->pid()) + "/maps")
                 .find("gfxstream_standin") != std::string::npos;
    if (!loaded) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(loaded) << (*daemon)->StderrText();
  (*daemon)->Terminate();
  std::optional<ExitStatus> status = (*daemon)->WaitForExit(std::chrono::seconds(3));
  ASSERT_TRUE(status) << "still running 3 s after SIGTERM";
  EXPECT_EQ(status->exit_code, 0) << status->ToString();
  EXPECT_NE((*daemon)->StderrText().find("terminated while the renderer was starting"),
            std::string::npos)
      << (*daemon)->StderrText();
}

// gfxstream logs some 60 lines while it starts, and the one that explains a failure comes last.
// None is dropped: the start-up is not guest traffic, and the rate limit used to swallow it.
TEST_F(GfxstreamStartupTest, EveryStartUpLineOfTheLibraryIsLoggedAtDebugLevel) {
  ExpectRefusal({std::string(kLibraryVariable) + "=" + VGPU_GFXSTREAM_STANDIN_PATH,
                 "GFXSTREAM_STANDIN_INIT_MESSAGES=80", "GFXSTREAM_STANDIN_FAIL_INIT=1"},
                "error: --gpu-mode gfxstream: gfxstream initialisation failed",
                {"--gpu-mode", "gfxstream", "--log-level", "debug"},
                {"gfxstream: start-up line 1\n", "gfxstream: start-up line 80\n",
                 "WARN  vhost-device-gpu: gfxstream: the start-up error\n"});
}

// gfxstream crashes in its start-up without a Vulkan driver; the daemon asks the Vulkan loader
// first (with its driver search pointed at nothing).
TEST_F(GfxstreamStartupTest, NoHostVulkanDriverExitsOneNamingWhatIsMissing) {
  ExpectRefusal({std::string(kLibraryVariable) + "=" + VGPU_GFXSTREAM_STANDIN_PATH,
                 "VK_ICD_FILENAMES=/nonexistent/icd.json", "VK_DRIVER_FILES=/nonexistent/icd.json"},
                "error: --gpu-mode gfxstream: gfxstream-vulkan needs a host Vulkan driver");
  // Without the Vulkan capset nothing asks for Vulkan.
  Result<std::unique_ptr<DaemonProcess>> gles_only = DaemonProcess::Start(
      {.arguments = {"--gpu-mode", "gfxstream", "--capset", "gfxstream-gles"},
       .environment = {std::string(kLibraryVariable) + "=" + VGPU_GFXSTREAM_STANDIN_PATH,
                       "VK_ICD_FILENAMES=/nonexistent/icd.json",
                       "VK_DRIVER_FILES=/nonexistent/icd.json"}});
  EXPECT_TRUE(gles_only) << gles_only.error().message;
}

}  // namespace
}  // namespace vgpu::test
