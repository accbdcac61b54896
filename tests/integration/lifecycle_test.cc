// The daemon as a process: repeated connections, signals, a stale socket file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>

#include "integration/daemon_fixture.h"

namespace vgpu::test {
namespace {

bool PathExists(const std::string& path) {
  struct stat status {};
  return lstat(path.c_str(), &status) == 0;
}

// What connect/negotiate/command/stop leaves behind must not grow with the number of cycles.
TEST_F(DaemonTest, TwoHundredConnectionCyclesLeaveFdsAndMemoryFlat) {
  constexpr int kCycles = 200;
  constexpr int kFirstSample = 10;
  std::optional<size_t> fds_early, fds_late;
  std::vector<std::string> fd_targets_early, fd_targets_late;
  std::optional<uint64_t> rss_early, rss_late;
  for (int cycle = 1; cycle <= kCycles; ++cycle) {
    std::optional<Connected> connected = ConnectAndNegotiate({.memory_size = 16ull << 20});
    ASSERT_TRUE(connected) << "cycle " << cycle;
    std::optional<CommandOutcome> outcome = RunGetDisplayInfo(connected->session);
    ASSERT_TRUE(outcome) << "cycle " << cycle << ": command not answered";
    // A reply to GET_CONFIG means the control thread has handled every earlier message (the
    // last SET_VRING_CALL may otherwise still be in flight while the command completes).
    ASSERT_TRUE(connected->frontend.GetConfig(0, 16)) << "cycle " << cycle;
    // Sampled mid-session, when the daemon holds the same set of objects every cycle.
    if (cycle == kFirstSample) {
      fds_early = daemon_->OpenFdCount();
      fd_targets_early = daemon_->OpenFdTargets();
      rss_early = daemon_->ResidentSetKb();
    }
    if (cycle == kCycles) {
      fds_late = daemon_->OpenFdCount();
      fd_targets_late = daemon_->OpenFdTargets();
      rss_late = daemon_->ResidentSetKb();
    }
    Result<std::vector<uint32_t>> bases = connected->frontend.StopLikeQemu10(connected->session);
    ASSERT_TRUE(bases) << "cycle " << cycle << ": " << bases.error().message;
  }
  ASSERT_TRUE(daemon_->IsRunning());
  ASSERT_TRUE(fds_early && fds_late && rss_early && rss_late);

  RecordProperty("open_fds_after_10", static_cast<int>(*fds_early));
  RecordProperty("open_fds_after_200", static_cast<int>(*fds_late));
  RecordProperty("vmrss_kb_after_10", static_cast<int>(*rss_early));
  RecordProperty("vmrss_kb_after_200", static_cast<int>(*rss_late));
  std::printf(
      "cycles: open fds %zu after %d, %zu after %d; VmRSS %llu kB after %d, %llu kB after "
      "%d (growth %lld kB)\n",
      *fds_early, kFirstSample, *fds_late, kCycles, static_cast<unsigned long long>(*rss_early),
      kFirstSample, static_cast<unsigned long long>(*rss_late), kCycles,
      static_cast<long long>(*rss_late) - static_cast<long long>(*rss_early));
  EXPECT_EQ(*fds_late, *fds_early)
      << "after " << kFirstSample << ":\n  " << ::testing::PrintToString(fd_targets_early)
      << "\nafter " << kCycles << ":\n  " << ::testing::PrintToString(fd_targets_late);
  EXPECT_LT(static_cast<int64_t>(*rss_late) - static_cast<int64_t>(*rss_early), 2 * 1024);
}

class TerminationSignalTest : public DaemonTest, public ::testing::WithParamInterface<int> {};

TEST_P(TerminationSignalTest, IdleDaemonExitsZeroAndRemovesItsSocket) {
  ASSERT_TRUE(PathExists(daemon_->socket_path()));

  daemon_->Signal(GetParam());

  std::optional<ExitStatus> status = daemon_->WaitForExit(std::chrono::seconds(1));
  ASSERT_TRUE(status) << "still running 1 s after " << strsignal(GetParam());
  EXPECT_EQ(status->exit_code, 0) << status->ToString();
  EXPECT_FALSE(PathExists(daemon_->socket_path()));
}

TEST_P(TerminationSignalTest, DaemonWithAConnectedFrontendExitsZero) {
  std::optional<Connected> connected = ConnectAndNegotiate();
  ASSERT_TRUE(connected);
  ASSERT_TRUE(RunGetDisplayInfo(connected->session));

  daemon_->Signal(GetParam());

  std::optional<ExitStatus> status = daemon_->WaitForExit(std::chrono::seconds(1));
  ASSERT_TRUE(status) << "still running 1 s after " << strsignal(GetParam());
  EXPECT_EQ(status->exit_code, 0) << status->ToString();
  EXPECT_FALSE(PathExists(daemon_->socket_path()));
  EXPECT_EQ(connected->frontend.WaitForClose(std::chrono::seconds(1)), PeerActivity::kClosed);
}

INSTANTIATE_TEST_SUITE_P(Signals, TerminationSignalTest, ::testing::Values(SIGTERM, SIGINT),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == SIGTERM ? "Sigterm" : "Sigint";
                         });

// The frontend goes away while the daemon is about to write its reply: the write must fail with
// EPIPE/ECONNRESET, not kill the daemon with SIGPIPE.
TEST_F(DaemonTest, FrontendClosingBeforeTheReplyDoesNotKillTheDaemon) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::optional<VhostUserFrontend> frontend = Connect();
    ASSERT_TRUE(frontend);
    vhost_user::MessageHeader header{static_cast<uint32_t>(vhost_user::Request::kGetFeatures),
                                     vhost_user::kVersion, 0};
    ASSERT_TRUE(frontend->SendRaw(header, {}));
    frontend->Close();
  }
  // The GET_CONFIG reply is the largest the daemon sends.
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::optional<VhostUserFrontend> frontend = Connect();
    ASSERT_TRUE(frontend);
    std::vector<uint8_t> payload(sizeof(vhost_user::ConfigHeader) + 16, 0);
    vhost_user::ConfigHeader config{0, 16, 0};
    std::memcpy(payload.data(), &config, sizeof(config));
    vhost_user::MessageHeader header{static_cast<uint32_t>(vhost_user::Request::kGetConfig),
                                     vhost_user::kVersion, static_cast<uint32_t>(payload.size())};
    ASSERT_TRUE(frontend->SendRaw(header, payload));
    frontend->Close();
  }

  ExpectDaemonServesNewFrontend();
}

TEST_F(DaemonTest, ClosedGpuSocketDoesNotKillTheDaemon) {
  std::optional<Connected> connected = ConnectAndNegotiate();
  ASSERT_TRUE(connected);
  connected->session.display->Disconnect();  // QEMU's end of the display channel is gone.

  // GET_DISPLAY_INFO is what a daemon forwards to QEMU over the GPU socket.
  std::optional<CommandOutcome> outcome = RunGetDisplayInfo(connected->session);

  EXPECT_TRUE(daemon_->IsRunning());
  if (outcome) {
    EXPECT_TRUE(IsDefinedResponseType(outcome->response.type));
  }
  connected->frontend.Close();
  ExpectDaemonServesNewFrontend();
}

TEST(DaemonStartTest, StaleSocketFileIsReplaced) {
  Result<std::unique_ptr<DaemonProcess>> daemon =
      DaemonProcess::Start({.preexisting = DaemonOptions::Preexisting::kStaleSocket});
  ASSERT_TRUE(daemon) << daemon.error().message;

  Result<VhostUserFrontend> frontend =
      VhostUserFrontend::Connect((*daemon)->socket_path(), kConnectTimeout);
  ASSERT_TRUE(frontend) << frontend.error().message;
  Result<Session> session = frontend->NegotiateLikeQemu10({});
  ASSERT_TRUE(session) << session.error().message << "\n" << (*daemon)->StderrText();
  std::optional<CommandOutcome> outcome = RunGetDisplayInfo(*session);
  EXPECT_TRUE(outcome);
}

}  // namespace
}  // namespace vgpu::test
