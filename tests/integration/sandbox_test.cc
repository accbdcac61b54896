// The daemon's seccomp sandbox (src/daemon/sandbox.h), on by default: everything a QEMU 10
// frontend does still works under it (negotiation, drawing, a second frontend accepted after the
// first leaves, 3D through virglrenderer), every thread is confined, and a forbidden system call
// is refused as designed (the VHOST_DEVICE_GPU_TEST_FORBIDDEN_SYSCALL hook).
#include "daemon/sandbox.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "base/sanitizer_build.h"
#include "integration/gpu_daemon_fixture.h"

namespace vgpu::test {
namespace {

constexpr const char* kSandboxOnLine = "sandbox: seccomp filter with ";

std::string ProbeEnvironment(const char* syscall_name) {
  return std::string(daemon::kForbiddenSyscallTestVariable) + "=" + syscall_name;
}

// A numeric field of /proc/PID/task/TID/status ("Seccomp", "NoNewPrivs") for every thread.
std::vector<int> ThreadStatusValues(pid_t pid, const std::string& field) {
  std::vector<int> values;
  const std::string task_directory = "/proc/" + std::to_string(pid) + "/task";
  DIR* directory = opendir(task_directory.c_str());
  if (directory == nullptr) return values;
  while (dirent* entry = readdir(directory)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream status(task_directory + "/" + entry->d_name + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.starts_with(field + ":")) values.push_back(std::stoi(line.substr(field.size() + 1)));
    }
  }
  closedir(directory);
  return values;
}

// SECCOMP_MODE_FILTER is 2 in the Seccomp field.
constexpr int kSeccompModeFilter = 2;

class SandboxTest : public GpuDaemonTest {
 protected:
  // Each test starts its own daemon.
  void SetUp() override {}

  void StartDaemon(DaemonOptions options) {
    Result<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
    ASSERT_TRUE(daemon) << daemon.error().message;
    daemon_ = std::move(*daemon);
  }
  // The daemon does not confine itself in a sanitizer build; this test binary was built alike.
  static std::optional<std::string> WhyNotConfined() {
    const char* sanitizer = SanitizerInThisBuild();
    if (sanitizer == nullptr) return std::nullopt;
    return std::string("the daemon does not install its seccomp filter in a ") + sanitizer +
           " build (the sanitizer runtime needs calls the filter refuses)";
  }
  void ExpectEveryThreadConfined() {
    std::vector<int> seccomp = ThreadStatusValues(daemon_->pid(), "Seccomp");
    ASSERT_FALSE(seccomp.empty());
    for (int mode : seccomp) EXPECT_EQ(mode, kSeccompModeFilter);
    for (int flag : ThreadStatusValues(daemon_->pid(), "NoNewPrivs")) EXPECT_EQ(flag, 1);
  }
  void DrawAndExpectFrame(uint32_t resource_id, uint32_t seed) {
    const std::vector<uint32_t> pixels = Pattern(64, 48, seed);
    ShowResource(resource_id, 64, 48, pixels);
    EXPECT_TRUE(WaitForFrame(0, pixels, 64));
    EXPECT_TRUE(display().Anomalies().empty());
  }
};

TEST_F(SandboxTest, DefaultDaemonIsConfinedAndDrawsA2dFrame) {
  if (std::optional<std::string> reason = WhyNotConfined()) GTEST_SKIP() << *reason;
  StartDaemon({});

  Connect();
  ASSERT_FALSE(HasFatalFailure());
  DrawAndExpectFrame(1, 1);

  EXPECT_NE(daemon_->StderrText().find(kSandboxOnLine), std::string::npos) << daemon_->StderrText();
  ExpectEveryThreadConfined();
}

// The second frontend is accepted after the filter is in place (accept4 is allowed).
TEST_F(SandboxTest, ConfinedDaemonServesTheNextFrontendAfterTheFirstLeaves) {
  if (std::optional<std::string> reason = WhyNotConfined()) GTEST_SKIP() << *reason;
  StartDaemon({});
  Connect();
  ASSERT_FALSE(HasFatalFailure());
  DrawAndExpectFrame(1, 2);
  connected_->frontend.Close();
  connected_.reset();

  Connect();
  ASSERT_FALSE(HasFatalFailure());
  DrawAndExpectFrame(1, 3);

  EXPECT_TRUE(daemon_->IsRunning());
  ExpectEveryThreadConfined();
}

TEST_F(SandboxTest, ConfinedDaemonExitsZeroOnSigterm) {
  if (std::optional<std::string> reason = WhyNotConfined()) GTEST_SKIP() << *reason;
  StartDaemon({});
  Connect();
  ASSERT_FALSE(HasFatalFailure());

  daemon_->Terminate();

  std::optional<ExitStatus> status = daemon_->WaitForExit(std::chrono::seconds(2));
  ASSERT_TRUE(status) << "still running 2 s after SIGTERM";
  EXPECT_EQ(status->exit_code, 0) << status->ToString() << "\n" << daemon_->StderrText();
}

// An escape tool right after the filter is loaded: the kernel kills the daemon with SIGSYS.
TEST_F(SandboxTest, ExecveKillsTheDaemonWithSigsys) {
  if (std::optional<std::string> reason = WhyNotConfined()) GTEST_SKIP() << *reason;
  Result<std::unique_ptr<DaemonProcess>> daemon =
      DaemonProcess::Launch({.environment = {ProbeEnvironment("execve")}});
  ASSERT_TRUE(daemon) << daemon.error().message;
  daemon_ = std::move(*daemon);

  std::optional<ExitStatus> status = daemon_->WaitForExit(std::chrono::seconds(5));

  ASSERT_TRUE(status) << "the daemon survived execve; output:\n" << daemon_->StderrText();
  EXPECT_EQ(status->signal, SIGSYS) << status->ToString();
  EXPECT_NE(daemon_->StderrText().find(kSandboxOnLine), std::string::npos);
}

TEST_F(SandboxTest, PtraceKillsTheDaemonWithSigsys) {
  if (std::optional<std::string> reason = WhyNotConfined()) GTEST_SKIP() << *reason;
  Result<std::unique_ptr<DaemonProcess>> daemon =
      DaemonProcess::Launch({.environment = {ProbeEnvironment("ptrace")}});
  ASSERT_TRUE(daemon) << daemon.error().message;
  daemon_ = std::move(*daemon);

  std::optional<ExitStatus> status = daemon_->WaitForExit(std::chrono::seconds(5));

  ASSERT_TRUE(status) << "the daemon survived ptrace; output:\n" << daemon_->StderrText();
  EXPECT_EQ(status->signal, SIGSYS) << status->ToString();
}

// A call that is merely not on the list fails with EPERM, and the daemon goes on serving.
TEST_F(SandboxTest, UnlistedCallFailsWithEpermAndTheDaemonKeepsServing) {
  if (std::optional<std::string> reason = WhyNotConfined()) GTEST_SKIP() << *reason;
  StartDaemon({.environment = {ProbeEnvironment("socket")}});

  Connect();
  ASSERT_FALSE(HasFatalFailure());
  DrawAndExpectFrame(1, 4);

  EXPECT_NE(daemon_->StderrText().find("sandbox: test probe: socket() failed: Operation not "
                                       "permitted"),
            std::string::npos)
      << daemon_->StderrText();
  // Where the kernel lets a supervisor answer refusals, it names the call once.
  if (daemon_->StderrText().find("are logged once each") != std::string::npos) {
    EXPECT_NE(daemon_->StderrText().find("sandbox: refused socket (system call"), std::string::npos)
        << daemon_->StderrText();
  }
  EXPECT_TRUE(daemon_->IsRunning());
}

TEST_F(SandboxTest, NoSandboxOptionLeavesTheDaemonUnconfinedWithAWarning) {
  StartDaemon({.arguments = {"--gpu-mode", "null", "--no-sandbox"},
               .environment = {ProbeEnvironment("socket")}});

  Connect();
  ASSERT_FALSE(HasFatalFailure());
  DrawAndExpectFrame(1, 5);

  const std::string log = daemon_->StderrText();
  EXPECT_NE(log.find("WARN"), std::string::npos) << log;
  EXPECT_NE(log.find("sandbox: off (--no-sandbox)"), std::string::npos) << log;
  EXPECT_EQ(log.find("test probe"), std::string::npos) << "the hook ran without the filter";
  for (int mode : ThreadStatusValues(daemon_->pid(), "Seccomp")) EXPECT_EQ(mode, 0);
}

// virglrenderer on Mesa (llvmpipe here) starts threads and JIT-compiles shaders: a 3D resource
// drawn by a transfer and shown through read-back, then a second frontend, all under the filter.
TEST_F(SandboxTest, ConfinedVirglrendererShowsA3dResourceAcrossReconnects) {
  if (std::optional<std::string> reason = WhyNotConfined()) GTEST_SKIP() << *reason;
  StartVirglDaemonOrSkip();
  if (IsSkipped()) return;

  for (uint32_t round = 1; round <= 2; ++round) {
    SCOPED_TRACE("frontend " + std::to_string(round));
    Connect();
    ASSERT_FALSE(HasFatalFailure());
    const uint32_t width = 64, height = 64;
    const std::vector<uint32_t> pixels = Pattern(width, height, round);
    Show3dResource(1, 10, width, height, pixels);
    ASSERT_FALSE(HasFatalFailure());

    EXPECT_TRUE(WaitForFrame(0, pixels, width));
    EXPECT_TRUE(display().Anomalies().empty());
    connected_->frontend.Close();
    connected_.reset();
  }

  EXPECT_NE(daemon_->StderrText().find(kSandboxOnLine), std::string::npos);
  ExpectEveryThreadConfined();
  daemon_->Terminate();
  std::optional<ExitStatus> status = daemon_->WaitForExit(std::chrono::seconds(2));
  ASSERT_TRUE(status) << "still running 2 s after SIGTERM";
  EXPECT_EQ(status->exit_code, 0) << status->ToString() << "\n" << daemon_->StderrText();
}

}  // namespace
}  // namespace vgpu::test
