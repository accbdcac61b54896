// Faults from the VMM's side while a guest works hard: a display socket that stops reading, and a
// frontend that vanishes with commands in flight. The daemon must keep its control socket
// answering, keep memory bounded, and serve the next frontend.
#include <gtest/gtest.h>

#include <chrono>

#include "integration/gpu_daemon_fixture.h"

namespace vgpu::test {
namespace {

class FaultTest : public GpuDaemonTest {};

// QEMU stuck (a GL flush, a debugger): the daemon's sends fill the socket and time out. Flushes
// must all be answered, the control socket must answer meanwhile, the daemon must not queue the
// frames in memory, and the display must be given up rather than corrupted (a partial message
// cannot be taken back).
TEST_F(FaultTest, DisplaySocketThatStopsReadingNeitherBlocksNorGrowsTheDaemon) {
  NegotiationOptions options;
  options.memory_size = 64ull << 20;
  options.display_options.outputs = {FakeOutput{true, 1024, 768}};
  options.display_options.daemon_send_buffer = 64 << 10;
  Connect(options);
  const std::vector<uint32_t> pixels = Pattern(1024, 768, 3);
  ShowResource(1, 1024, 768, pixels);
  ASSERT_TRUE(WaitForFrame(0, pixels, 1024));
  ASSERT_TRUE(connected_->frontend.GetConfig(0, 16));
  const uint64_t rss_before = daemon_->ResidentSetKb().value_or(0);
  const size_t fds_before = daemon_->OpenFdCount().value_or(0);

  display().SetReading(false);
  // 200 full-frame flushes (3 MiB each, 600 MiB in all) against a VMM that reads nothing.
  constexpr int kFlushes = 200;
  gpu::ResourceFlush flush{};
  flush.hdr = Header(CommandType::kResourceFlush);
  flush.r = gpu::Rect{0, 0, 1024, 768};
  flush.resource_id = 1;
  Result<uint64_t> request = session().ram->Allocate(sizeof(flush), 8);
  Result<uint64_t> response = session().ram->Allocate(sizeof(gpu::CtrlHdr), 8);
  ASSERT_TRUE(request && response && session().ram->WriteObject(*request, flush));
  int answered = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kFlushes; ++i) {
    Result<uint16_t> head = session().control_queue->AddChain({{*request, sizeof(flush)}},
                                                              {{*response, sizeof(gpu::CtrlHdr)}});
    ASSERT_TRUE(head);
    session().control_queue->Kick();
    // One send may wait out the 1 s send timeout; none may wait longer.
    ASSERT_TRUE(session().control_queue->WaitForUsedHead(*head, std::chrono::seconds(5)))
        << "flush " << i << " not answered";
    ++answered;
    if (i % 50 == 0) {
      ASSERT_TRUE(connected_->frontend.GetConfig(0, 16)) << "flush " << i;
    }
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  const uint64_t rss_after = daemon_->ResidentSetKb().value_or(0);
  std::printf(
      "%d flushes against a display that reads nothing: answered in %lld ms; VmRSS "
      "%llu -> %llu kB\n",
      answered, static_cast<long long>(elapsed.count()),
      static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(rss_after));
  EXPECT_EQ(answered, kFlushes);
  // Nothing queued: 600 MiB of frames would show; allow allocator noise.
  EXPECT_LT(rss_after, rss_before + 4 * 1024);
  EXPECT_LE(daemon_->OpenFdCount().value_or(0), fds_before);
  // The display was given up (a partial message cannot be taken back) and its socket closed, so
  // QEMU sees the end of the stream rather than garbage.
  EXPECT_NE(daemon_->StderrText().find("stopped reading its display socket; dropping it"),
            std::string::npos);
  display().SetReading(true);
  EXPECT_TRUE(display().WaitFor([](const FakeDisplayState& state) { return state.peer_closed; },
                                std::chrono::seconds(3)));
  EXPECT_TRUE(connected_->frontend.GetConfig(0, 16));
  EXPECT_TRUE(daemon_->IsRunning());
}

// QEMU killed (SIGKILL) with a full control queue of heavy copies: every socket and the guest
// memory vanish at once. The daemon drops the session and serves the next QEMU.
TEST_F(FaultTest, FrontendVanishingWithCommandsInFlightLeavesTheDaemonServing) {
  auto vanish_with_work_in_flight = [&](int round) {
    NegotiationOptions options;
    options.memory_size = 64ull << 20;
    options.control_queue_size = 256;
    Connect(options);
    ShowResource(1, 1920, 1080, Pattern(1920, 1080, round));
    gpu::TransferToHost2d transfer{};
    transfer.hdr = Header(CommandType::kTransferToHost2d);
    transfer.r = gpu::Rect{0, 0, 1920, 1080};
    transfer.resource_id = 1;
    for (int i = 0; i < 120; ++i) (void)Queue(transfer);
    session().control_queue->Kick();
    // Gone without a word: no GET_VRING_BASE, no SET_VRING_ENABLE 0.
    connected_.reset();
  };
  // Open fds sampled mid-session (after GET_CONFIG: the daemon has handled every earlier
  // message, and the previous connection is gone since one frontend is served at a time).
  auto fds_in_a_fresh_session = [&]() -> size_t {
    Connect();
    EXPECT_TRUE(connected_->frontend.GetConfig(0, 16));
    const size_t fds = daemon_->OpenFdCount().value_or(0);
    std::optional<CommandOutcome> outcome = RunGetDisplayInfo(session());
    EXPECT_TRUE(outcome);
    connected_.reset();
    return fds;
  };
  for (int round = 0; round < 3; ++round) vanish_with_work_in_flight(round);
  const size_t fds_early = fds_in_a_fresh_session();
  for (int round = 3; round < 10; ++round) vanish_with_work_in_flight(round);
  const size_t fds_late = fds_in_a_fresh_session();
  EXPECT_EQ(fds_late, fds_early);
  ExpectDaemonServesNewFrontend();
}

}  // namespace
}  // namespace vgpu::test
