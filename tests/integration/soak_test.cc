// The soak: random valid and invalid guest traffic across many sessions (clean stops, resets,
// frontends that vanish) against one daemon, with its open fds and resident memory sampled at the
// start of every session. At the end both must be where they were after the warm-up.
//
// Duration: VGPU_SOAK_SECONDS (default 20; the bounded soak of issue-style hardening runs 600).
// Seed: VGPU_SOAK_SEED (default: from the clock; printed, so a failure can be replayed).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>

#include "integration/gpu_daemon_fixture.h"

namespace vgpu::test {
namespace {

uint64_t EnvironmentNumber(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoull(text, nullptr, 10);
}

class SoakTest : public GpuDaemonTest {
 protected:
  // One random command: a mix of well-formed commands on a small id space (so that they meet
  // each other's resources) and malformed ones. Returns false if it went unanswered.
  bool SendRandomCommand(std::mt19937_64& random) {
    auto pick = [&](uint64_t bound) { return static_cast<uint32_t>(random() % bound); };
    std::vector<uint8_t> request;
    auto put = [&](const auto& object) {
      const auto* bytes = reinterpret_cast<const uint8_t*>(&object);
      request.insert(request.end(), bytes, bytes + sizeof(object));
    };
    auto header = [&](CommandType type) {
      gpu::CtrlHdr hdr = Header(type);
      if (pick(8) == 0) hdr.flags = gpu::kFlagFence;
      hdr.fence_id = random();
      return hdr;
    };
    auto rect = [&] {
      if (pick(6) == 0)
        return gpu::Rect{static_cast<uint32_t>(random()), static_cast<uint32_t>(random()),
                         static_cast<uint32_t>(random()), static_cast<uint32_t>(random())};
      return gpu::Rect{pick(300), pick(300), 1 + pick(300), 1 + pick(300)};
    };
    const uint32_t id = 1 + pick(24);
    switch (pick(14)) {
      case 0: {
        gpu::ResourceCreate2d create{};
        create.hdr = header(CommandType::kResourceCreate2d);
        create.resource_id = id;
        create.format = pick(10) == 0 ? pick(200) : 1 + pick(4);
        create.width = pick(20) == 0 ? static_cast<uint32_t>(random()) : 1 + pick(512);
        create.height = 1 + pick(512);
        put(create);
        break;
      }
      case 1: {
        gpu::ResourceAttachBacking attach{};
        attach.hdr = header(CommandType::kResourceAttachBacking);
        attach.resource_id = id;
        const uint32_t entries = 1 + pick(4);
        attach.nr_entries = pick(10) == 0 ? static_cast<uint32_t>(random()) : entries;
        put(attach);
        for (uint32_t i = 0; i < entries; ++i) {
          const uint64_t address =
              pick(10) == 0 ? random() : backing_ + uint64_t{pick(4)} * (1 << 20);
          put(gpu::MemEntry{address, 1 + pick(1 << 20), 0});
        }
        break;
      }
      case 2: {
        gpu::ResourceDetachBacking detach{};
        detach.hdr = header(CommandType::kResourceDetachBacking);
        detach.resource_id = id;
        put(detach);
        break;
      }
      case 3:
      case 4: {
        gpu::TransferToHost2d transfer{};
        transfer.hdr = header(CommandType::kTransferToHost2d);
        transfer.r = rect();
        transfer.offset = pick(10) == 0 ? random() : pick(1 << 16) * 4;
        transfer.resource_id = id;
        put(transfer);
        break;
      }
      case 5: {
        gpu::SetScanout set{};
        set.hdr = header(CommandType::kSetScanout);
        set.r = rect();
        set.scanout_id = pick(18);
        set.resource_id = pick(4) == 0 ? 0 : id;
        put(set);
        break;
      }
      case 6:
      case 7: {
        gpu::ResourceFlush flush{};
        flush.hdr = header(CommandType::kResourceFlush);
        flush.r = rect();
        flush.resource_id = id;
        put(flush);
        break;
      }
      case 8: {
        gpu::ResourceUnref unref{};
        unref.hdr = header(CommandType::kResourceUnref);
        unref.resource_id = id;
        put(unref);
        break;
      }
      case 9: {
        put(header(pick(2) == 0 ? CommandType::kGetDisplayInfo : CommandType::kGetEdid));
        request.resize(request.size() + 8, 0);  // GET_EDID's scanout and padding.
        break;
      }
      case 10: {
        gpu::ResourceAssignUuid uuid{};
        uuid.hdr = header(CommandType::kResourceAssignUuid);
        uuid.resource_id = id;
        put(uuid);
        break;
      }
      case 11: {
        // Cursor queue: update from a resource (any size) or move, on any scanout.
        gpu::UpdateCursor cursor{};
        cursor.hdr = Header(pick(2) == 0 ? CommandType::kUpdateCursor : CommandType::kMoveCursor);
        cursor.pos.scanout_id = pick(18);
        cursor.pos.x = pick(2000);
        cursor.pos.y = pick(2000);
        cursor.resource_id = pick(3) == 0 ? 0 : id;
        if (!session().ram->WriteObject(cursor_request_, cursor)) return false;
        Result<uint16_t> head =
            session().cursor_queue->AddChain({{cursor_request_, sizeof(cursor)}}, {});
        if (!head) return false;
        session().cursor_queue->Kick();
        return session().cursor_queue->WaitForUsedHead(*head, kCommandTimeout).has_value();
      }
      default: {
        // Garbage: a random type (often a real one) over random bytes of random length.
        request.resize(pick(200));
        for (uint8_t& byte : request) byte = static_cast<uint8_t>(random());
        if (request.size() >= 4 && pick(2) == 0) {
          const uint32_t type = 0x100 + pick(0x10) + (pick(2) == 0 ? 0x100 : 0);
          std::memcpy(request.data(), &type, 4);
        }
        break;
      }
    }
    if (request.empty()) request.push_back(0);
    if (!session().ram->Write(request_, request)) return false;
    const ChainLayout layout = pick(4) == 0 ? ChainLayout::kIndirect : ChainLayout::kDirect;
    const uint32_t response_size = pick(10) == 0 ? pick(24) + 1 : 1024;
    Result<uint16_t> head = session().control_queue->AddChain(
        {{request_, static_cast<uint32_t>(request.size())}}, {{response_, response_size}}, layout);
    if (!head) return false;
    session().control_queue->Kick();
    std::optional<UsedElement> used =
        session().control_queue->WaitForUsedHead(*head, kCommandTimeout);
    if (!used) return false;
    if (used->length >= sizeof(gpu::CtrlHdr)) {
      Result<gpu::CtrlHdr> response = session().ram->ReadObject<gpu::CtrlHdr>(response_);
      EXPECT_TRUE(response && IsDefinedResponseType(response->type))
          << "response type 0x" << std::hex << (response ? response->type : 0);
    }
    ++commands_;
    return true;
  }

  uint64_t request_ = 0, response_ = 0, cursor_request_ = 0, backing_ = 0;
  uint64_t commands_ = 0;
};

TEST_F(SoakTest, RandomTrafficAcrossSessionsLeavesFdsAndMemoryFlat) {
  const uint64_t seconds = EnvironmentNumber("VGPU_SOAK_SECONDS", 20);
  const uint64_t seed = EnvironmentNumber(
      "VGPU_SOAK_SEED",
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  RecordProperty("seed", std::to_string(seed));
  std::printf("soak: %llu s, seed %llu (VGPU_SOAK_SEED replays it)\n",
              static_cast<unsigned long long>(seconds), static_cast<unsigned long long>(seed));
  std::mt19937_64 random(seed);
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  const auto warm_up_end = start + std::chrono::seconds(seconds) / 4;
  std::optional<ResourceSample> first, last;
  // Resident memory after the warm-up, in the order sampled: malloc's free lists make it wander
  // by a few MB, so the test compares the peaks of the first and last thirds (a leak raises the
  // last one) rather than two single samples.
  std::vector<uint64_t> resident_kb;
  auto next_report = start;
  uint64_t sessions = 0, resets = 0, vanished = 0;
  while (std::chrono::steady_clock::now() < end && !HasFatalFailure()) {
    Connect({.memory_size = 32ull << 20});
    if (HasFatalFailure()) break;
    ASSERT_TRUE(connected_->frontend.GetConfig(0, 16));
    // Sampled at the start of a session: no resources yet, the same objects every time.
    const ResourceSample sample = SampleDaemon();
    if (!first && std::chrono::steady_clock::now() >= warm_up_end) first = sample;
    if (first) {
      last = sample;
      resident_kb.push_back(sample.resident_kb);
      EXPECT_EQ(sample.open_fds, first->open_fds) << "session " << sessions;
    }
    if (std::chrono::steady_clock::now() >= next_report) {
      std::printf("soak: %3lld s, session %llu: open fds %zu, VmRSS %llu kB\n",
                  static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::steady_clock::now() - start)
                                             .count()),
                  static_cast<unsigned long long>(sessions), sample.open_fds,
                  static_cast<unsigned long long>(sample.resident_kb));
      next_report += std::chrono::seconds(seconds) / 10;
    }
    request_ = *session().ram->Allocate(4096, 4096);
    response_ = *session().ram->Allocate(4096, 4096);
    cursor_request_ = *session().ram->Allocate(4096, 4096);
    backing_ = *session().ram->Allocate(4 << 20, 4096);
    const uint32_t commands = 50 + static_cast<uint32_t>(random() % 500);
    for (uint32_t i = 0; i < commands; ++i) {
      ASSERT_TRUE(SendRandomCommand(random)) << "command unanswered in session " << sessions;
      if (random() % 300 == 0) {
        ASSERT_TRUE(connected_->frontend.GetConfig(0, 16));
      }
    }
    ++sessions;
    switch (random() % 4) {
      case 0:
        ++vanished;  // Gone without a word, like a killed QEMU.
        break;
      case 1:
        ++resets;
        EXPECT_TRUE(connected_->frontend.ResetDevice());
        [[fallthrough]];
      default:
        EXPECT_TRUE(connected_->frontend.StopLikeQemu10(session()));
    }
    connected_.reset();
  }
  ASSERT_TRUE(first && last) << "the soak ended before its warm-up";
  std::printf(
      "soak: %llu sessions (%llu reset, %llu vanished), %llu commands; open fds %zu -> %zu, "
      "VmRSS %llu -> %llu kB\n",
      static_cast<unsigned long long>(sessions), static_cast<unsigned long long>(resets),
      static_cast<unsigned long long>(vanished), static_cast<unsigned long long>(commands_),
      first->open_fds, last->open_fds, static_cast<unsigned long long>(first->resident_kb),
      static_cast<unsigned long long>(last->resident_kb));
  RecordProperty("open_fds_start", static_cast<int>(first->open_fds));
  RecordProperty("open_fds_end", static_cast<int>(last->open_fds));
  RecordProperty("vmrss_kb_start", static_cast<int>(first->resident_kb));
  RecordProperty("vmrss_kb_end", static_cast<int>(last->resident_kb));
  ASSERT_GE(resident_kb.size(), 3u);
  const size_t third = resident_kb.size() / 3;
  const uint64_t early_peak = *std::max_element(resident_kb.begin(), resident_kb.begin() + third);
  const uint64_t late_peak = *std::max_element(resident_kb.end() - third, resident_kb.end());
  std::printf("soak: VmRSS peak %llu kB in the first third, %llu kB in the last\n",
              static_cast<unsigned long long>(early_peak),
              static_cast<unsigned long long>(late_peak));
  RecordProperty("vmrss_kb_early_peak", static_cast<int>(early_peak));
  RecordProperty("vmrss_kb_late_peak", static_cast<int>(late_peak));
  EXPECT_EQ(last->open_fds, first->open_fds);
  if (kSanitizerBuild) {
    std::printf("soak: resident memory not compared: sanitizer build (quarantine)\n");
  } else {
    EXPECT_LT(late_peak, early_peak + 2 * 1024);
  }
  EXPECT_TRUE(daemon_->IsRunning());
}

}  // namespace
}  // namespace vgpu::test
