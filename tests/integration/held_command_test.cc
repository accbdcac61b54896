// Held commands through the daemon process: a command whose answer comes later (GET_DISPLAY_INFO
// and GET_EDID wait for the VMM, a fenced SUBMIT_3D for its fence) is hit by everything a VMM
// can do meanwhile (ring stop, disable, device reset, owner reset, disconnect, display-socket
// close, a memory table change), and then its late answer, timeout or fence comes.
//
// Every chain's response buffer is pre-filled with a canary. A ledger reads every used element
// the daemon writes: each must return a chain that is out, once; when the held chain comes
// back, its buffer is copied, and after the late event it must still be exactly that (nothing is
// written into a buffer the driver owns again, docs/ARCHITECTURE.md "Guest buffers have one
// owner"). The fenced cases run against the stand-in gfxstream library, whose fences wait for a
// gate the test opens.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gpu/display_protocol.h"
#include "gpu/protocol.h"
#include "integration/gfxstream_fixture.h"

namespace vgpu::test {
namespace {

constexpr uint8_t kCanary = 0xa5;
constexpr uint32_t kControlQueue = 0;
constexpr uint32_t kCursorQueue = 1;
constexpr uint32_t kLateWidth = 1111;  // What the late GET_DISPLAY_INFO reply says.
constexpr uint32_t kLateHeight = 777;

enum class Held { kDisplayInfo, kEdid, kFence };

enum class Hit {
  kRingStop,           // GET_VRING_BASE (QEMU on guest reset and at quit).
  kDisableThenEnable,  // SET_VRING_ENABLE 0, the late event, SET_VRING_ENABLE 1.
  kDisableThenStop,    // SET_VRING_ENABLE 0, the late event, GET_VRING_BASE.
  kResetDevice,        // RESET_DEVICE.
  kResetOwner,         // RESET_OWNER (QEMU's older reset).
  kDisconnect,         // The frontend closes the vhost-user socket.
  kDisplayClose,       // The VMM closes its end of the display socket.
  kMemoryHotplug,      // ADD_MEM_REG of a new region: the held chain's memory stays.
  kMemoryRemoved,      // REM_MEM_REG of the region holding the rings and buffers.
};

const char* HeldName(Held held) {
  switch (held) {
    case Held::kDisplayInfo:
      return "GetDisplayInfo";
    case Held::kEdid:
      return "GetEdid";
    case Held::kFence:
      return "FencedSubmit";
  }
  return "";
}

const char* HitName(Hit hit) {
  switch (hit) {
    case Hit::kRingStop:
      return "RingStop";
    case Hit::kDisableThenEnable:
      return "DisableThenEnable";
    case Hit::kDisableThenStop:
      return "DisableThenStop";
    case Hit::kResetDevice:
      return "ResetDevice";
    case Hit::kResetOwner:
      return "ResetOwner";
    case Hit::kDisconnect:
      return "Disconnect";
    case Hit::kDisplayClose:
      return "DisplayClose";
    case Hit::kMemoryHotplug:
      return "MemoryHotplug";
    case Hit::kMemoryRemoved:
      return "MemoryRemoved";
  }
  return "";
}

// A chain on the control queue and where its response goes.
struct Chain {
  uint16_t head = 0;
  uint64_t response_address = 0;
  uint32_t response_size = 0;
};

// Every used element of one queue, read in order: each must return a chain that is out. A chain
// returned twice shows as an element for a head that is not out (or, if the head was reused
// meanwhile, as one element too many at the end: see ExpectAllReturned).
class UsedLedger {
 public:
  void Out(uint16_t head) {
    EXPECT_EQ(out_.count(head), 0u) << "head " << head << " handed out while still out";
    out_[head] = true;
    ++handed_out_;
  }
  void Record(const UsedElement& element) {
    const auto head = static_cast<uint16_t>(element.id);
    EXPECT_EQ(out_.erase(head), 1u) << "head " << head << " returned but not out (twice?)";
    ++returned_;
  }
  // Waits for `head` to come back, recording every element seen on the way.
  std::optional<UsedElement> WaitFor(DriverQueue& queue, uint16_t head,
                                     std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (remaining.count() <= 0) return std::nullopt;
      std::optional<UsedElement> element = queue.WaitForUsed(remaining);
      if (!element) return std::nullopt;
      Record(*element);
      if (element->id == head) return element;
    }
  }
  // Records what the daemon has returned by now; whether `head` was among it.
  std::optional<UsedElement> Drain(DriverQueue& queue, uint16_t head) {
    std::optional<UsedElement> found;
    while (std::optional<UsedElement> element = queue.PollUsed()) {
      Record(*element);
      if (element->id == head) found = element;
    }
    return found;
  }
  bool IsOut(uint16_t head) const { return out_.count(head) > 0; }
  // Every chain handed out came back, and nothing more did.
  void ExpectAllReturned(const DriverQueue& queue) const {
    EXPECT_TRUE(out_.empty()) << out_.size() << " chains never returned";
    EXPECT_EQ(returned_, handed_out_);
    EXPECT_EQ(queue.DeviceUsedIndex(), queue.last_used_index())
        << "the daemon wrote used elements after the last one read";
  }

 private:
  std::map<uint16_t, bool> out_;
  size_t handed_out_ = 0;
  size_t returned_ = 0;
};

class HeldCommandTest : public GfxstreamDaemonTest {
 protected:
  void StartDaemonFor(Held held) {
    held_ = held;
    if (held == Held::kFence) {
      ASSERT_FALSE(scratch_.path().empty());
      gate_path_ = scratch_.path() + "/fence-gate";
      ASSERT_EQ(mkfifo(gate_path_.c_str(), 0600), 0);
      StartGfxstreamDaemon(VGPU_GFXSTREAM_STANDIN_PATH,
                           {"GFXSTREAM_STANDIN_LOG=" + scratch_.path() + "/standin.log",
                            "GFXSTREAM_STANDIN_FENCE_GATE=" + gate_path_});
    }
    // The null-mode daemon of the fixture serves the display cases.
  }
  // The VMM answers nothing by itself: the test sends each reply when it wants it late.
  static FakeDisplayOptions SilentDisplay() {
    FakeDisplayOptions options;
    options.answer_display_info = false;
    options.answer_edid = false;
    return options;
  }
  void ConnectSilent() {
    Connect({.display_options = SilentDisplay()});
    ASSERT_FALSE(HasFatalFailure());
    if (held_ == Held::kFence) {
      CreateGlesContext(1);
      ASSERT_FALSE(HasFatalFailure());
    }
  }
  DriverQueue& control() { return *session().control_queue; }

  // Queues `request` (+ `extra`) with a `response_size`-byte response buffer full of the canary.
  template <class Request>
  Chain Issue(const Request& request, uint32_t response_size, const void* extra = nullptr,
              size_t extra_size = 0) {
    CommandBuffers buffers = Queue(request, response_size, extra, extra_size);
    EXPECT_TRUE(session().ram->Fill(buffers.response_address, response_size, kCanary));
    ledger_.Out(buffers.head);
    return Chain{buffers.head, buffers.response_address, response_size};
  }
  std::vector<uint8_t> BufferOf(const Chain& chain) {
    std::vector<uint8_t> bytes(chain.response_size);
    EXPECT_TRUE(session().ram->Read(chain.response_address, bytes));
    return bytes;
  }
  gpu::CtrlHdr ResponseHeaderOf(const Chain& chain) {
    return session().ram->ReadObject<gpu::CtrlHdr>(chain.response_address).value_or(gpu::CtrlHdr{});
  }
  static bool AllCanary(const std::vector<uint8_t>& bytes) {
    for (uint8_t byte : bytes) {
      if (byte != kCanary) return false;
    }
    return true;
  }

  uint64_t next_fence_ = 1;

  // The held command, issued and kicked; returns once the daemon holds it.
  Chain IssueHeld() {
    Chain chain;
    switch (held_) {
      case Held::kDisplayInfo: {
        const size_t before = display().Count(gpu::display::Request::kGetDisplayInfo);
        chain = Issue(Header(CommandType::kGetDisplayInfo), sizeof(gpu::RespDisplayInfo));
        control().Kick();
        EXPECT_TRUE(display().WaitFor(
            [&](const FakeDisplayState& state) {
              return state.Count(gpu::display::Request::kGetDisplayInfo) > before;
            },
            kCommandTimeout))
            << "GET_DISPLAY_INFO never reached the VMM";
        break;
      }
      case Held::kEdid: {
        const size_t before = display().Count(gpu::display::Request::kGetEdid);
        gpu::GetEdid request{};
        request.hdr = Header(CommandType::kGetEdid);
        chain = Issue(request, sizeof(gpu::RespEdid));
        control().Kick();
        EXPECT_TRUE(display().WaitFor(
            [&](const FakeDisplayState& state) {
              return state.Count(gpu::display::Request::kGetEdid) > before;
            },
            kCommandTimeout))
            << "GET_EDID never reached the VMM";
        break;
      }
      case Held::kFence: {
        chain = IssueFencedSubmit();
        // An unfenced command behind it: once that is answered, the submit was dispatched (the
        // queue is processed in order) and waits for its fence in the daemon.
        gpu::GetCapsetInfo info{};
        info.hdr = Header(CommandType::kGetCapsetInfo);
        Chain marker = Issue(info, sizeof(gpu::RespCapsetInfo));
        control().Kick();
        EXPECT_TRUE(ledger_.WaitFor(control(), marker.head, kCommandTimeout));
        break;
      }
    }
    EXPECT_TRUE(ledger_.IsOut(chain.head)) << "answered before its answer came";
    EXPECT_TRUE(AllCanary(BufferOf(chain)));
    return chain;
  }
  Chain IssueFencedSubmit() {
    const std::vector<uint32_t>& nop = kPlaceholderCommand;
    gpu::CmdSubmit submit = SubmitHeader(1, nop);
    submit.hdr.flags = gpu::kFlagFence | gpu::kFlagInfoRingIdx;
    submit.hdr.fence_id = next_fence_++;
    return Issue(submit, sizeof(gpu::CtrlHdr), nop.data(), nop.size() * 4);
  }

  // The late event: the VMM's reply (sent and read by the daemon) or the fence's signal.
  void LateEvent() {
    switch (held_) {
      case Held::kDisplayInfo: {
        gpu::RespDisplayInfo info{};
        info.hdr.type = static_cast<uint32_t>(ResponseType::kOkDisplayInfo);
        info.pmodes[0] = {gpu::Rect{0, 0, kLateWidth, kLateHeight}, 1, 0};
        SendDisplayReply(gpu::display::Request::kGetDisplayInfo, info);
        break;
      }
      case Held::kEdid: {
        gpu::RespEdid edid{};
        edid.hdr.type = static_cast<uint32_t>(ResponseType::kOkEdid);
        edid.size = 128;
        const uint8_t header[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
        std::memcpy(edid.edid, header, sizeof(header));
        SendDisplayReply(gpu::display::Request::kGetEdid, edid);
        break;
      }
      case Held::kFence:
        OpenGate();
        break;
    }
  }
  template <class Reply>
  void SendDisplayReply(gpu::display::Request request, const Reply& reply) {
    std::vector<uint8_t> bytes(sizeof(gpu::display::MessageHeader) + sizeof(Reply));
    const gpu::display::MessageHeader header{static_cast<uint32_t>(request),
                                             gpu::display::kReplyFlag, sizeof(Reply)};
    std::memcpy(bytes.data(), &header, sizeof(header));
    std::memcpy(bytes.data() + sizeof(header), &reply, sizeof(Reply));
    display().SendRaw(bytes);
    // In the daemon's hands: it handles it on its device thread, before the next task there.
    ASSERT_TRUE(display().WaitUntilDaemonHasRead(kCommandTimeout));
    DeviceThreadRoundTrip();
  }
  void OpenGate() {
    UniqueFd gate(open(gate_path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    ASSERT_TRUE(gate.valid());
    ASSERT_EQ(write(gate.get(), "g", 1), 1);
  }
  // SET_VRING_ENABLE runs on the device thread while the vhost-user thread waits; the GET_CONFIG
  // reply after it says it has run, and with it everything the device thread had before.
  void DeviceThreadRoundTrip() {
    ASSERT_TRUE(connected_->frontend.SetVringEnable(kCursorQueue, true));
    ASSERT_TRUE(connected_->frontend.GetConfig(0, 16));
  }

  // The answer a held command gets when its late event comes in time.
  void ExpectAnswered(const Chain& chain, const UsedElement& used) {
    const gpu::CtrlHdr header = ResponseHeaderOf(chain);
    switch (held_) {
      case Held::kDisplayInfo: {
        EXPECT_EQ(used.length, sizeof(gpu::RespDisplayInfo));
        EXPECT_EQ(header.type, static_cast<uint32_t>(ResponseType::kOkDisplayInfo));
        Result<gpu::RespDisplayInfo> info =
            session().ram->ReadObject<gpu::RespDisplayInfo>(chain.response_address);
        ASSERT_TRUE(info);
        EXPECT_EQ(info->pmodes[0].r.width, kLateWidth);
        EXPECT_EQ(info->pmodes[0].r.height, kLateHeight);
        break;
      }
      case Held::kEdid:
        EXPECT_EQ(used.length, sizeof(gpu::RespEdid));
        EXPECT_EQ(header.type, static_cast<uint32_t>(ResponseType::kOkEdid));
        break;
      case Held::kFence:
        EXPECT_EQ(used.length, sizeof(gpu::CtrlHdr));
        EXPECT_EQ(header.type, static_cast<uint32_t>(ResponseType::kOkNodata));
        EXPECT_EQ(header.flags & gpu::kFlagFence, gpu::kFlagFence);
        break;
    }
  }
  // The held command came back with nothing written.
  void ExpectReturnedEmpty(const Chain& chain, const std::optional<UsedElement>& used) {
    ASSERT_TRUE(used) << "the held command never came back";
    EXPECT_EQ(used->length, 0u);
    EXPECT_TRUE(AllCanary(BufferOf(chain))) << "written although returned empty";
  }

  // After a ring stop: the ring started again as QEMU does when the guest comes back, and one
  // more command of the same kind answered (for fences: on the same timeline, so the old fence
  // was signalled before it).
  void RestartAndServeAnother() {
    ASSERT_TRUE(connected_->frontend.StartQueue(session(), kControlQueue));
    ServeAnother();
  }
  void ServeAnother() {
    switch (held_) {
      case Held::kDisplayInfo:
      case Held::kEdid: {
        Chain again = IssueHeld();
        LateEvent();
        std::optional<UsedElement> used = ledger_.WaitFor(control(), again.head, kCommandTimeout);
        ASSERT_TRUE(used) << "the next command was not answered";
        ExpectAnswered(again, *used);
        break;
      }
      case Held::kFence: {
        Chain again = IssueFencedSubmit();
        control().Kick();
        OpenGate();
        std::optional<UsedElement> used = ledger_.WaitFor(control(), again.head, kCommandTimeout);
        ASSERT_TRUE(used) << "the next fenced command was not answered";
        ExpectAnswered(again, *used);
        break;
      }
    }
  }

  // A second region of guest RAM, as memory hotplug adds one.
  vhost_user::MemoryRegionDescription HotplugRegion(UniqueFd& fd) {
    fd = UniqueFd(memfd_create("hotplug", MFD_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(ftruncate(fd.get(), 2 << 20), 0);
    return vhost_user::MemoryRegionDescription{uint64_t{1} << 32, 2 << 20, 0x7e0000000000ull, 0};
  }

  // One case: the held command, the hit, the late event, and what must hold after.
  void RunCase(Hit hit) {
    Chain held = IssueHeld();
    ASSERT_FALSE(HasFatalFailure());
    VhostUserFrontend& frontend = connected_->frontend;
    std::vector<uint8_t> at_return;  // The held buffer when it came back.
    auto returned = [&](std::optional<UsedElement> used) {
      ASSERT_TRUE(used) << "the held command never came back";
      at_return = BufferOf(held);
    };
    switch (hit) {
      case Hit::kRingStop: {
        ASSERT_TRUE(frontend.GetVringBase(kControlQueue));
        std::optional<UsedElement> used = ledger_.Drain(control(), held.head);
        ExpectReturnedEmpty(held, used);
        returned(used);
        LateEvent();
        RestartAndServeAnother();
        break;
      }
      case Hit::kDisableThenEnable: {
        ASSERT_TRUE(frontend.SetVringEnable(kControlQueue, false));
        LateEvent();
        DeviceThreadRoundTrip();
        EXPECT_FALSE(ledger_.Drain(control(), held.head)) << "returned while disabled";
        EXPECT_TRUE(AllCanary(BufferOf(held))) << "written while disabled";
        ASSERT_TRUE(frontend.SetVringEnable(kControlQueue, true));
        std::optional<UsedElement> used = ledger_.WaitFor(control(), held.head, kCommandTimeout);
        returned(used);
        ExpectAnswered(held, *used);
        ServeAnother();
        break;
      }
      case Hit::kDisableThenStop: {
        ASSERT_TRUE(frontend.SetVringEnable(kControlQueue, false));
        LateEvent();
        DeviceThreadRoundTrip();
        ASSERT_TRUE(frontend.GetVringBase(kControlQueue));
        std::optional<UsedElement> used = ledger_.Drain(control(), held.head);
        ExpectReturnedEmpty(held, used);
        returned(used);
        RestartAndServeAnother();
        break;
      }
      case Hit::kResetDevice:
      case Hit::kResetOwner: {
        ASSERT_TRUE(hit == Hit::kResetDevice ? frontend.ResetDevice() : frontend.ResetOwner());
        ASSERT_TRUE(frontend.GetFeatures());  // Its reply: the reset has been handled.
        std::optional<UsedElement> used = ledger_.Drain(control(), held.head);
        ExpectReturnedEmpty(held, used);
        returned(used);
        if (held_ == Held::kFence) {
          LateEvent();  // For a context the reset destroyed.
        } else {
          // The reset dropped the display socket: no reply can come any more.
          EXPECT_TRUE(display().WaitFor([](const FakeDisplayState& s) { return s.peer_closed; },
                                        kCommandTimeout));
        }
        ASSERT_TRUE(frontend.RestartAfterReset(session(), SilentDisplay()));
        if (held_ == Held::kFence) {
          CreateGlesContext(1);
          ASSERT_FALSE(HasFatalFailure());
        }
        ServeAnother();
        break;
      }
      case Hit::kDisconnect: {
        frontend.Close();
        // The daemon serves the next frontend only once it is done with this one.
        ExpectDaemonServesNewFrontend();
        std::optional<UsedElement> used = ledger_.Drain(control(), held.head);
        ExpectReturnedEmpty(held, used);
        returned(used);
        if (held_ == Held::kFence) {
          LateEvent();
          ExpectDaemonServesNewFrontend();  // After the fence came for the old session.
        }
        break;
      }
      case Hit::kDisplayClose: {
        display().Disconnect();
        if (held_ == Held::kFence) {
          // Fences do not depend on the display.
          LateEvent();
          std::optional<UsedElement> used = ledger_.WaitFor(control(), held.head, kCommandTimeout);
          returned(used);
          ExpectAnswered(held, *used);
        } else {
          // Answered at once, by the daemon, from what it knows.
          std::optional<UsedElement> used = ledger_.WaitFor(control(), held.head, kCommandTimeout);
          returned(used);
          EXPECT_EQ(ResponseHeaderOf(held).type,
                    static_cast<uint32_t>(held_ == Held::kEdid ? ResponseType::kOkEdid
                                                               : ResponseType::kOkDisplayInfo));
          // And the next one, without a VMM to ask.
          Chain again = Issue(Header(CommandType::kGetDisplayInfo), sizeof(gpu::RespDisplayInfo));
          control().Kick();
          ASSERT_TRUE(ledger_.WaitFor(control(), again.head, kCommandTimeout));
        }
        break;
      }
      case Hit::kMemoryHotplug: {
        UniqueFd fd;
        const vhost_user::MemoryRegionDescription region = HotplugRegion(fd);
        ASSERT_TRUE(frontend.AddMemReg(region, fd.get()));
        LateEvent();
        std::optional<UsedElement> used = ledger_.WaitFor(control(), held.head, kCommandTimeout);
        returned(used);
        ExpectAnswered(held, *used);
        ServeAnother();
        break;
      }
      case Hit::kMemoryRemoved: {
        const std::vector<vhost_user::MemoryRegionDescription> regions =
            session().ram->Descriptions();
        for (const vhost_user::MemoryRegionDescription& region : regions) {
          ASSERT_TRUE(frontend.RemMemReg(region));
        }
        // The rings' memory is gone: the queues stopped, their chains went back empty.
        std::optional<UsedElement> used = ledger_.Drain(control(), held.head);
        ExpectReturnedEmpty(held, used);
        returned(used);
        LateEvent();
        for (const vhost_user::MemoryRegionDescription& region : regions) {
          Result<UniqueFd> fd = session().ram->DuplicateFd();
          ASSERT_TRUE(fd);
          ASSERT_TRUE(frontend.AddMemReg(region, fd->get()));
        }
        ASSERT_TRUE(frontend.StartQueue(session(), kCursorQueue));
        RestartAndServeAnother();
        break;
      }
    }
    ASSERT_FALSE(HasFatalFailure());
    ledger_.Drain(control(), held.head);
    ledger_.ExpectAllReturned(control());
    EXPECT_EQ(BufferOf(held), at_return) << "written after it went back to the driver";
  }

  Held held_ = Held::kDisplayInfo;
  UsedLedger ledger_;
  ScratchDirectory scratch_;
  std::string gate_path_;
};

class HeldCommandHitTest : public HeldCommandTest,
                           public ::testing::WithParamInterface<std::tuple<Held, Hit>> {};

TEST_P(HeldCommandHitTest, ReturnedExactlyOnceAndNeverWrittenAfter) {
  const auto [held, hit] = GetParam();
  StartDaemonFor(held);
  ASSERT_FALSE(HasFatalFailure());
  ConnectSilent();
  ASSERT_FALSE(HasFatalFailure());
  RunCase(hit);
  EXPECT_TRUE(daemon_->IsRunning());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HeldCommandHitTest,
    ::testing::Combine(::testing::Values(Held::kDisplayInfo, Held::kEdid, Held::kFence),
                       ::testing::Values(Hit::kRingStop, Hit::kDisableThenEnable,
                                         Hit::kDisableThenStop, Hit::kResetDevice, Hit::kResetOwner,
                                         Hit::kDisconnect, Hit::kDisplayClose, Hit::kMemoryHotplug,
                                         Hit::kMemoryRemoved)),
    [](const ::testing::TestParamInfo<std::tuple<Held, Hit>>& info) {
      return std::string(HeldName(std::get<0>(info.param))) + "_" +
             HitName(std::get<1>(info.param));
    });

// The case that was a bug: the VMM never answers, the ring stops, and the display channel's
// reply timeout fires a second later. The buffer went back empty and must stay as it was.
TEST_F(HeldCommandTest, DisplayReplyTimeoutAfterARingStopWritesNothing) {
  StartDaemonFor(Held::kDisplayInfo);
  ConnectSilent();
  ASSERT_FALSE(HasFatalFailure());
  Chain held = IssueHeld();
  ASSERT_TRUE(connected_->frontend.GetVringBase(kControlQueue));
  std::optional<UsedElement> used = ledger_.Drain(control(), held.head);
  ExpectReturnedEmpty(held, used);
  ASSERT_TRUE(daemon_->WaitForOutput("no reply to GET_DISPLAY_INFO", std::chrono::seconds(5)))
      << daemon_->StderrText();
  DeviceThreadRoundTrip();
  EXPECT_TRUE(AllCanary(BufferOf(held))) << "written after the timeout";
  // The ring back: the channel no longer trusts replies, so the daemon answers by itself.
  ASSERT_TRUE(connected_->frontend.StartQueue(session(), kControlQueue));
  Chain again = Issue(Header(CommandType::kGetDisplayInfo), sizeof(gpu::RespDisplayInfo));
  control().Kick();
  std::optional<UsedElement> answered = ledger_.WaitFor(control(), again.head, kCommandTimeout);
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->length, sizeof(gpu::RespDisplayInfo));
  ledger_.ExpectAllReturned(control());
  EXPECT_TRUE(AllCanary(BufferOf(held)));
}

// Hundreds of held commands, each hit and then answered late, in one session: fds and resident
// memory stay flat, and every buffer is returned once.
class HeldCommandRepetitionTest : public HeldCommandTest,
                                  public ::testing::WithParamInterface<Held> {};

TEST_P(HeldCommandRepetitionTest, HundredsOfHitsLeaveFdsAndMemoryFlat) {
  constexpr int kRepetitions = 300;
  constexpr int kFirstSample = 30;
  const Hit cycle[] = {Hit::kRingStop,    Hit::kDisableThenEnable, Hit::kDisableThenStop,
                       Hit::kResetDevice, Hit::kMemoryRemoved,     Hit::kMemoryHotplug};
  StartDaemonFor(GetParam());
  ASSERT_FALSE(HasFatalFailure());
  ConnectSilent();
  ASSERT_FALSE(HasFatalFailure());
  ResourceSample early, late;
  for (int repetition = 1; repetition <= kRepetitions; ++repetition) {
    Hit hit = cycle[repetition % std::size(cycle)];
    // Hotplug adds a region every time; the daemon has a bounded number of slots.
    if (hit == Hit::kMemoryHotplug && repetition > static_cast<int>(std::size(cycle)))
      hit = Hit::kRingStop;
    RunCase(hit);
    ASSERT_FALSE(HasFatalFailure()) << "repetition " << repetition << " (" << HitName(hit) << ")";
    if (repetition == kFirstSample) early = SampleDaemon();
    if (repetition == kRepetitions) late = SampleDaemon();
  }
  std::printf("%s x%d: open fds %zu -> %zu, VmRSS %llu -> %llu kB\n", HeldName(GetParam()),
              kRepetitions, early.open_fds, late.open_fds,
              static_cast<unsigned long long>(early.resident_kb),
              static_cast<unsigned long long>(late.resident_kb));
  EXPECT_EQ(late.open_fds, early.open_fds);
  if (!kSanitizerBuild) {
    EXPECT_LT(static_cast<int64_t>(late.resident_kb) - static_cast<int64_t>(early.resident_kb),
              2 * 1024);
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, HeldCommandRepetitionTest,
                         ::testing::Values(Held::kDisplayInfo, Held::kFence),
                         [](const ::testing::TestParamInfo<Held>& info) {
                           return std::string(HeldName(info.param));
                         });

}  // namespace
}  // namespace vgpu::test
