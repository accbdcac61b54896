// The daemon in --gpu-mode gfxstream for the integration tests: which library it loads, and the
// 3D commands the gfxstream tests send.
//
// GfxstreamLibraryPath() is $VGPU_TEST_GFXSTREAM_LIBRARY when set (a real gfxstream build: see
// README "gfxstream mode"), else the stand-in (tests/support/gfxstream_standin), which CI uses.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gpu/protocol.h"
#include "integration/hostile_guest_fixture.h"

namespace vgpu::test {

inline constexpr char kLibraryVariable[] = "VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY";
inline constexpr char kRealLibraryVariable[] = "VGPU_TEST_GFXSTREAM_LIBRARY";
// gfxstream's PLACEHOLDER_COMMAND_VK (opcode, pad, padding): its own no-op, which the stand-in
// knows too.
inline const std::vector<uint32_t> kPlaceholderCommand = {0xf002, 0, 0};
inline constexpr uint32_t kCapsetGfxstreamVulkan = 3;
inline constexpr uint32_t kCapsetGfxstreamGles = 8;

// The library under test and whether it is a real gfxstream.
inline std::string GfxstreamLibraryUnderTest() {
  const char* real = std::getenv(kRealLibraryVariable);
  return real != nullptr && *real != '\0' ? real : VGPU_GFXSTREAM_STANDIN_PATH;
}
inline bool TestingRealGfxstream() {
  const char* real = std::getenv(kRealLibraryVariable);
  return real != nullptr && *real != '\0';
}

// A temporary folder (the stand-in's call log and fence gate).
class ScratchDirectory {
 public:
  ScratchDirectory() {
    std::string pattern = std::filesystem::temp_directory_path() / "vgpu-gfxstream-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDirectory() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string ReadTextFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

class GfxstreamDaemonTest : public HostileGuestTest {
 protected:
  // Starts the daemon on `library` with the default capsets (gfxstream-vulkan, gfxstream-gles)
  // and nothing of the test's environment that would steer EGL: the daemon must get there
  // itself.
  void StartGfxstreamDaemon(const std::string& library, std::vector<std::string> environment = {}) {
    unsetenv(kLibraryVariable);
    unsetenv("EGL_PLATFORM");
    environment.push_back(std::string(kLibraryVariable) + "=" + library);
    Result<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start({
        .arguments = {"--gpu-mode", "gfxstream"},
        .environment = std::move(environment),
    });
    ASSERT_TRUE(daemon) << daemon.error().message;
    daemon_ = std::move(*daemon);
  }

  void CreateGlesContext(uint32_t context_id, uint32_t flags = 0, uint64_t fence_id = 0,
                         uint32_t capset = kCapsetGfxstreamGles) {
    gpu::CtxCreate context{};
    context.hdr = Header(CommandType::kCtxCreate);
    context.hdr.ctx_id = context_id;
    context.hdr.flags = flags;
    context.hdr.fence_id = fence_id;
    context.nlen = 4;
    std::memcpy(context.debug_name, "test", 4);
    context.context_init = capset;  // VIRTIO_GPU_F_CONTEXT_INIT is acked.
    ASSERT_EQ(Run(context), ResponseType::kOkNodata);
  }
  void AttachToContext(uint32_t context_id, uint32_t id) {
    gpu::CtxResource context_attach{};
    context_attach.hdr = Header(CommandType::kCtxAttachResource);
    context_attach.hdr.ctx_id = context_id;
    context_attach.resource_id = id;
    ASSERT_EQ(Run(context_attach), ResponseType::kOkNodata);
  }
  // A width x height B8G8R8X8 render target with a zeroed guest backing, attached to the context.
  void CreateTarget(uint32_t context_id, uint32_t id, uint32_t width, uint32_t height) {
    ASSERT_EQ(Create3dTarget(id, width, height), ResponseType::kOkNodata);
    AttachPixels(id, std::vector<uint32_t>(size_t{width} * height));
    ASSERT_FALSE(HasFatalFailure());
    AttachToContext(context_id, id);
  }
  gpu::CmdSubmit SubmitHeader(uint32_t context_id, const std::vector<uint32_t>& words) {
    gpu::CmdSubmit submit{};
    submit.hdr = Header(CommandType::kSubmit3d);
    submit.hdr.ctx_id = context_id;
    submit.size = static_cast<uint32_t>(words.size() * 4);
    return submit;
  }
  void Submit(uint32_t context_id, const std::vector<uint32_t>& words) {
    ASSERT_EQ(Run(SubmitHeader(context_id, words), words.data(), words.size() * 4),
              ResponseType::kOkNodata);
  }
  // What SUBMIT_3D of `words` on `context` got back.
  ResponseType SubmitWords(uint32_t context, const std::vector<uint32_t>& words) {
    gpu::CmdSubmit submit = SubmitHeader(context, words);
    return SendType(submit, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(words.data()),
                                                     words.size() * 4));
  }
  // Lines of the daemon's output the sandbox wrote about refused system calls, less the one it
  // logs at debug level as harmless: gfxstream naming its threads (sandbox.cc, NamesAThread).
  std::vector<std::string> SandboxRefusals() const {
    std::vector<std::string> refusals;
    std::istringstream lines(daemon_->StderrText());
    for (std::string line; std::getline(lines, line);) {
      if (line.find("sandbox: refused") != std::string::npos &&
          line.find(" DEBUG ") == std::string::npos) {
        refusals.push_back(line);
      }
    }
    return refusals;
  }
};

// The daemon on the library under test (a real gfxstream or the stand-in); every test ends with
// no system call refused by the sandbox: gfxstream's normal work must run under it.
class GfxstreamOnLibraryUnderTest : public GfxstreamDaemonTest {
 protected:
  void SetUp() override {
    if (TestingRealGfxstream()) {
      std::printf("gfxstream under test: %s\n", GfxstreamLibraryUnderTest().c_str());
    }
    StartGfxstreamDaemon(GfxstreamLibraryUnderTest());
  }
  void TearDown() override {
    if (daemon_ != nullptr) {
      const std::vector<std::string> refusals = SandboxRefusals();
      EXPECT_TRUE(refusals.empty()) << "first refusal: " << refusals.front();
    }
    GfxstreamDaemonTest::TearDown();
  }
};

}  // namespace vgpu::test
