// Fuzz target: virtio-gpu command decoding and dispatch (DecodeControl / DecodeCursor and the
// CommandDispatcher with the software 2D renderer, chains answered through InFlightChains) on
// sequences of control and cursor commands, so that state bugs (resources, backing, scanouts,
// cursor, display replies) are reachable. Optionally with a display channel whose VMM end is played
// here, in this thread, so that runs stay deterministic.
//
// Input: a 12-byte prologue, then records until the input ends.
//   prologue: u32 flags (kFlag*), u64 protocol features the VMM answers in the display handshake.
//   record:   u8 kind, u8 options, u16 length, then `length` bytes; by kind % 8:
//     0, 7  control command: the request bytes, laid out in guest memory and handed over as a
//           descriptor chain. options: bits 0-2 the writable size (kResponseSizes), bits 3-5 split
//           the readable part into two spans at length * n / 8, bit 6 split the writable part,
//           bit 7 place the request across the boundary between the two RAM regions.
//     1     cursor command: the request bytes, readable only.
//     2     write guest memory: u32 guest address, then the bytes.
//     3     fill guest memory: u32 guest address, u32 length (at most 4 MiB), u8 value.
//     4     display reply: raw bytes the VMM writes to the display socket (replies to
//           GET_DISPLAY_INFO and GET_EDID, or garbage).
//     5     device reset (the queues stop, CommandDispatcher::Reset), then the same features
//           acked again and the queues started.
//     6     run the display event loop once.
// Like the device (GpuDevice::ProcessControlQueue), control commands wait while one holds the
// queue for the VMM; they run when its answer comes and are dropped if it never does.
//
// Guest RAM: 16 MiB in two adjacent 8 MiB regions. The device model's host memory cap is
// 64 MiB. Oracles besides the sanitizers: the used length never exceeds the writable part, every
// chain goes back exactly once (and by the end of the input, all of them), nothing is written
// into a response buffer after its chain went back, and the resource table stays under its cap.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "base/event_loop.h"
#include "base/log.h"
#include "fuzz_guest_memory.h"
#include "fuzz_input.h"
#include "fuzz_support.h"
#include "gpu/command_decoder.h"
#include "gpu/command_dispatcher.h"
#include "gpu/display_channel.h"
#include "gpu/display_protocol.h"
#include "gpu/reply.h"
#include "virtio/pending_chain.h"

namespace vgpu::fuzz {
namespace {

constexpr uint32_t kFlagDisplay = 1u << 0;          // Attach a display channel.
constexpr uint32_t kFlagAnswerHandshake = 1u << 1;  // The VMM answers GET_PROTOCOL_FEATURES.
constexpr uint32_t kFlagAckEdid = 1u << 2;          // The driver acked VIRTIO_GPU_F_EDID.
constexpr uint32_t kFlagAckUuid = 1u << 3;          // ... and VIRTIO_GPU_F_RESOURCE_UUID.
constexpr uint32_t kFlagHeadlessConfig = 1u << 4;   // EDID not offered.
constexpr uint32_t kFlagAckBlob = 1u << 5;          // The driver acked VIRTIO_GPU_F_RESOURCE_BLOB.

constexpr uint64_t kRegionSize = 8ull << 20;
constexpr uint64_t kRequestArea = 0x1000;
constexpr uint64_t kResponseArea = 0x18000;
constexpr uint64_t kMaxHostMemory = 64ull << 20;
constexpr uint32_t kResponseSizes[8] = {4096, 24, 408, 1056, 0, 8, 16, 64};

enum RecordKind : uint8_t {
  kControl = 0,
  kCursor = 1,
  kWriteMemory = 2,
  kFillMemory = 3,
  kDisplayReply = 4,
  kReset = 5,
  kPump = 6,
  kControlToo = 7,
};

struct Record {
  uint8_t kind;
  uint8_t options;
  std::span<const uint8_t> bytes;
};

FuzzGuestMemory& Memory() {
  static FuzzGuestMemory memory({{0, kRegionSize}, {kRegionSize, kRegionSize}});
  return memory;
}

void Check(bool condition, const char* what) {
  CheckInvariant("gpu_command_fuzzer", condition, what);
}

// Splits spans[0] at `at` bytes (when inside it), as a chain of two descriptors would.
void SplitFirst(virtio::SpanList& spans, uint64_t at) {
  if (spans.empty() || at == 0 || at >= spans[0].size()) return;
  virtio::SpanList split;
  split.push_back(spans[0].first(static_cast<size_t>(at)));
  split.push_back(spans[0].subspan(static_cast<size_t>(at)));
  for (size_t i = 1; i < spans.size(); ++i) split.push_back(spans[i]);
  spans = std::move(split);
}

virtio::DescriptorChain MakeChain(const Record& record, bool writable) {
  FuzzGuestMemory& memory = Memory();
  virtio::DescriptorChain chain;
  chain.memory = &memory.guest();
  const uint64_t length = record.bytes.size();
  const uint64_t request_address =
      (record.options & 0x80) ? kRegionSize - length / 2 : kRequestArea;
  memory.Write(request_address, record.bytes);
  if (length > 0) {
    Check(static_cast<bool>(chain.guest_memory().TranslateRange(
              virtio::GuestAddress{request_address}, length, chain.readable, 4)),
          "request area not mapped");
    SplitFirst(chain.readable, length * ((record.options >> 3) & 7) / 8);
    chain.readable_length = length;
  }
  if (writable) {
    const uint32_t size = kResponseSizes[record.options & 7];
    if (size > 0) {
      memory.Fill(kResponseArea, size, 0xAA);
      Check(static_cast<bool>(chain.guest_memory().TranslateRange(
                virtio::GuestAddress{kResponseArea}, size, chain.writable, 4)),
            "response area not mapped");
      if (record.options & 0x40) SplitFirst(chain.writable, size / 2);
      chain.writable_length = size;
    }
  }
  return chain;
}

// The VMM's end of the display socket: a thread reads (and drops) what the channel sends, so
// that its blocking sends never stall; replies are written from the fuzzing thread.
class FakeVmm {
 public:
  explicit FakeVmm(UniqueFd vmm_end) : socket_(std::move(vmm_end)) {
    reader_ = std::thread([fd = socket_.get()] {
      uint8_t buffer[65536];
      while (read(fd, buffer, sizeof(buffer)) > 0) {
      }
    });
  }
  // Call after the channel closed its end: the reader then sees EOF.
  ~FakeVmm() { reader_.join(); }
  void Write(std::span<const uint8_t> bytes) {
    // Never block: what does not fit in the socket is dropped, the same way every run.
    (void)!send(socket_.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }

 private:
  UniqueFd socket_;
  std::thread reader_;
};

const uint8_t* ResponseArea(uint64_t size) {
  static const uint8_t kNothing = 0;
  if (size == 0) return &kNothing;
  Result<std::span<uint8_t>> area =
      Memory().guest()->Translate(virtio::GuestAddress{kResponseArea}, size);
  Check(static_cast<bool>(area), "response area not mapped");
  return area->data();
}

// The used ring: checks that each head goes back once, with a used length that fits, and
// remembers the response area's bytes at that moment, so that a later write into a returned
// buffer is seen.
class CheckingUsedRing final : public virtio::UsedRing {
 public:
  void Expect(uint16_t head, uint64_t writable_length) {
    Check(!out_[head], "a head handed out twice");
    out_[head] = true;
    writable_[head] = writable_length;
    ++outstanding_;
  }
  void PushUsed(uint16_t head, uint32_t length) override {
    Check(out_[head], "a chain returned twice (or never handed out)");
    Check(length <= writable_[head], "used length over the writable part");
    out_[head] = false;
    --outstanding_;
    last_returned_ = head;
    SnapshotResponseArea();
  }
  void NotifyIfNeeded() override {}

  // Nothing touched the last returned response area since it went back (every control chain
  // shares the area, so only the most recent one can be checked, and only until the next chain
  // is laid out).
  void CheckNoWriteAfterReturn() const {
    if (snapshot_.empty()) return;
    Check(std::memcmp(ResponseArea(snapshot_.size()), snapshot_.data(), snapshot_.size()) == 0,
          "a response buffer written after its chain went back");
  }
  void ForgetSnapshot() { snapshot_.clear(); }
  size_t outstanding() const { return outstanding_; }

 private:
  void SnapshotResponseArea() {
    const uint64_t size = writable_[last_returned_];
    const uint8_t* area = ResponseArea(size);
    snapshot_.assign(area, area + size);
  }

  std::array<bool, 65536> out_{};
  std::array<uint64_t, 65536> writable_{};
  size_t outstanding_ = 0;
  uint16_t last_returned_ = 0;
  std::vector<uint8_t> snapshot_;
};

class Session {
 public:
  Session(uint32_t flags, uint64_t vmm_features) {
    uint64_t acked = 0;
    if (flags & kFlagAckEdid) acked |= 1ull << gpu::kFeatureEdid;
    if (flags & kFlagAckUuid) acked |= 1ull << gpu::kFeatureResourceUuid;
    if (flags & kFlagAckBlob) acked |= 1ull << gpu::kFeatureResourceBlob;
    if (flags & kFlagDisplay) {
      int pair[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        FuzzSetupFailed("socketpair");
      }
      vmm_ = std::make_unique<FakeVmm>(UniqueFd(pair[1]));
      gpu::DisplayChannelOptions options;
      // Never reached within one input: requests end by a reply, a detach or the input's end.
      options.reply_timeout = std::chrono::seconds(600);
      display_ = std::make_unique<gpu::DisplayChannel>(FuzzEventLoop(), options);
      display_->Attach(UniqueFd(pair[0]));
      if (flags & kFlagAnswerHandshake) {
        struct {
          gpu::display::MessageHeader header;
          uint64_t features;
        } __attribute__((packed))
        reply{{static_cast<uint32_t>(gpu::display::Request::kGetProtocolFeatures),
               gpu::display::kReplyFlag, sizeof(uint64_t)},
              vmm_features};
        vmm_->Write(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&reply), sizeof(reply)));
        Pump();
      }
    }
    model_ = std::make_unique<gpu::CommandDispatcher>(
        gpu::DispatcherConfig{kMaxHostMemory, !(flags & kFlagHeadlessConfig)}, display_.get());
    acked_features_ = acked;
    model_->set_acked_features(acked);
    control_.Start(&ring_, /*enabled=*/true);
  }

  ~Session() {
    // The queue stops as the device's does at the end: everything still out goes back.
    control_.Stop();
    ring_.CheckNoWriteAfterReturn();
    Check(ring_.outstanding() == 0, "a chain never went back");
    // The model first (it points at the channel and holds handles), then the channel, whose end
    // closing lets the VMM's reader finish.
    model_.reset();
    display_.reset();
    vmm_.reset();
    ring_.CheckNoWriteAfterReturn();
  }

  void Run(const Record& record) {
    switch (record.kind % 8) {
      case kControl:
      case kControlToo:
        if (control_.held()) {
          pending_.push_back(record);
        } else {
          Control(record);
        }
        break;
      case kCursor:
        model_->DispatchCursor(gpu::DecodeCursor(MakeChain(record, /*writable=*/false)));
        break;
      case kWriteMemory: {
        FuzzInput input(record.bytes.data(), record.bytes.size());
        const uint32_t address = input.Take<uint32_t>();
        Memory().Write(address, input.TakeRest());
        ring_.ForgetSnapshot();  // The guest itself may write anywhere.
        break;
      }
      case kFillMemory: {
        FuzzInput input(record.bytes.data(), record.bytes.size());
        const uint32_t address = input.Take<uint32_t>();
        const uint32_t length = input.Take<uint32_t>();
        // At most a 1280x800 frame's worth (4 MiB): larger fills only cost time.
        Memory().Fill(address, std::min<uint32_t>(length, 4u << 20), input.Take<uint8_t>());
        ring_.ForgetSnapshot();
        break;
      }
      case kDisplayReply:
        if (vmm_) vmm_->Write(record.bytes);
        Pump();
        break;
      case kReset:
        // As the device does: the queues stop (what is out goes back), the model resets, then the
        // driver's features again and the queues start when it re-activates.
        control_.Stop();
        Check(ring_.outstanding() == 0, "a chain still out after the queue stopped");
        model_->Reset();
        model_->set_acked_features(acked_features_);
        control_.Start(&ring_, /*enabled=*/true);
        pending_.clear();
        break;
      case kPump:
        Pump();
        break;
    }
    ring_.CheckNoWriteAfterReturn();
    Check(model_->resources().host_memory_used() <= kMaxHostMemory,
          "resources over the host memory cap");
  }

 private:
  void Control(const Record& record) {
    virtio::DescriptorChain chain = MakeChain(record, /*writable=*/true);
    ring_.ForgetSnapshot();  // MakeChain laid out a fresh response area.
    chain.head_index = next_head_++;
    ring_.Expect(chain.head_index, chain.writable_length);
    gpu::DecodedCommand decoded = gpu::DecodeControl(chain, model_->decode_policy());
    const gpu::CtrlHdr header = decoded.header;
    gpu::Reply reply(
        control_.Admit(chain.head_index, std::move(chain.writable), chain.writable_length), header);
    model_->Dispatch(std::move(decoded), std::move(reply));
  }

  void Pump() {
    if (!display_) return;
    FuzzEventLoop().RunOnce(0);
    while (!control_.held() && !pending_.empty()) {
      Record next = pending_.front();
      pending_.pop_front();
      Control(next);
    }
  }

  CheckingUsedRing ring_;
  virtio::InFlightChains control_;
  std::unique_ptr<FakeVmm> vmm_;
  std::unique_ptr<gpu::DisplayChannel> display_;
  std::unique_ptr<gpu::CommandDispatcher> model_;
  uint64_t acked_features_ = 0;
  uint16_t next_head_ = 0;
  std::deque<Record> pending_;
};

}  // namespace
}  // namespace vgpu::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // As the daemon does (server.cc); the display channel then lends large UPDATEs' pages, and
  // transfers into resources whose pages are lent take their path.
  signal(SIGPIPE, SIG_IGN);
  vgpu::fuzz::SetFuzzLogLevel();
  vgpu::fuzz::Memory();
  vgpu::fuzz::FuzzEventLoop();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vgpu::fuzz;
  FuzzInput input(data, size);
  const uint32_t flags = input.Take<uint32_t>();
  const uint64_t vmm_features = input.Take<uint64_t>();
  Memory().Clear();
  Session session(flags, vmm_features);
  while (!input.empty()) {
    Record record;
    record.kind = input.Take<uint8_t>();
    record.options = input.Take<uint8_t>();
    record.bytes = input.TakeBytes(input.Take<uint16_t>());
    session.Run(record);
  }
  return 0;
}
