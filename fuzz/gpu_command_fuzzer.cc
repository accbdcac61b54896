// Fuzz target: virtio-gpu command decoding and dispatch (CommandProcessor with the software 2D
// renderer) on sequences of control and cursor commands, so that state bugs (resources, backing,
// scanouts, cursor, display replies) are reachable. Optionally with a display channel whose VMM
// end is played here, in this thread, so that runs stay deterministic.
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
//     5     device reset (CommandProcessor::Reset), then the same features acked again.
//     6     run the display event loop once.
// Like the device (GpuDevice::ProcessControlQueue), control commands wait while one waits for the
// VMM; they run when its answer comes and are dropped if it never does.
//
// Guest RAM: 16 MiB in two adjacent 8 MiB regions. The command processor's host memory cap is
// 64 MiB. Oracles besides the sanitizers: the used length never exceeds the writable part, every
// completion runs exactly once, and the resource table stays under its cap.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "base/event_loop.h"
#include "base/log.h"
#include "fuzz_guest_memory.h"
#include "fuzz_input.h"
#include "fuzz_support.h"
#include "gpu/command_processor.h"
#include "gpu/display_channel.h"
#include "gpu/display_protocol.h"

namespace vgpu::fuzz {
namespace {

constexpr uint32_t kFlagDisplay = 1u << 0;          // Attach a display channel.
constexpr uint32_t kFlagAnswerHandshake = 1u << 1;  // The VMM answers GET_PROTOCOL_FEATURES.
constexpr uint32_t kFlagAckEdid = 1u << 2;          // The driver acked VIRTIO_GPU_F_EDID.
constexpr uint32_t kFlagAckUuid = 1u << 3;          // ... and VIRTIO_GPU_F_RESOURCE_UUID.
constexpr uint32_t kFlagHeadlessConfig = 1u << 4;   // EDID not offered.

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
void SplitFirst(std::vector<std::span<uint8_t>>& spans, uint64_t at) {
  if (spans.empty() || at == 0 || at >= spans[0].size()) return;
  std::span<uint8_t> first = spans[0];
  spans[0] = first.first(static_cast<size_t>(at));
  spans.insert(spans.begin() + 1, first.subspan(static_cast<size_t>(at)));
}

virtio::DescriptorChain MakeChain(const Record& record, bool writable) {
  FuzzGuestMemory& memory = Memory();
  virtio::DescriptorChain chain;
  chain.memory = memory.guest();
  const uint64_t length = record.bytes.size();
  const uint64_t request_address =
      (record.options & 0x80) ? kRegionSize - length / 2 : kRequestArea;
  memory.Write(request_address, record.bytes);
  if (length > 0) {
    Check(static_cast<bool>(chain.memory->TranslateRange(virtio::GuestAddress{request_address},
                                                         length, chain.readable, 4)),
          "request area not mapped");
    SplitFirst(chain.readable, length * ((record.options >> 3) & 7) / 8);
    chain.readable_length = length;
  }
  if (writable) {
    const uint32_t size = kResponseSizes[record.options & 7];
    if (size > 0) {
      memory.Fill(kResponseArea, size, 0xAA);
      Check(static_cast<bool>(chain.memory->TranslateRange(virtio::GuestAddress{kResponseArea},
                                                           size, chain.writable, 4)),
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

class Session {
 public:
  Session(uint32_t flags, uint64_t vmm_features) {
    uint64_t acked = 0;
    if (flags & kFlagAckEdid) acked |= 1ull << gpu::kFeatureEdid;
    if (flags & kFlagAckUuid) acked |= 1ull << gpu::kFeatureResourceUuid;
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
    processor_ = std::make_unique<gpu::CommandProcessor>(
        gpu::CommandProcessorConfig{kMaxHostMemory, !(flags & kFlagHeadlessConfig)},
        display_.get());
    acked_features_ = acked;
    processor_->set_acked_features(acked);
  }

  ~Session() {
    // The processor first (it points at the channel), then the channel, whose end closing lets
    // the VMM's reader finish.
    processor_.reset();
    display_.reset();
    vmm_.reset();
  }

  void Run(const Record& record) {
    switch (record.kind % 8) {
      case kControl:
      case kControlToo:
        if (blocked_) {
          pending_.push_back(record);
        } else {
          Control(record);
        }
        break;
      case kCursor:
        processor().HandleCursor(MakeChain(record, /*writable=*/false));
        break;
      case kWriteMemory: {
        FuzzInput input(record.bytes.data(), record.bytes.size());
        const uint32_t address = input.Take<uint32_t>();
        Memory().Write(address, input.TakeRest());
        break;
      }
      case kFillMemory: {
        FuzzInput input(record.bytes.data(), record.bytes.size());
        const uint32_t address = input.Take<uint32_t>();
        const uint32_t length = input.Take<uint32_t>();
        // At most a 1280x800 frame's worth (4 MiB): larger fills only cost time.
        Memory().Fill(address, std::min<uint32_t>(length, 4u << 20), input.Take<uint8_t>());
        break;
      }
      case kDisplayReply:
        if (vmm_) vmm_->Write(record.bytes);
        Pump();
        break;
      case kReset:
        // As the device does: reset, then the driver's features again when it re-activates.
        processor().Reset();
        processor().set_acked_features(acked_features_);
        break;
      case kPump:
        Pump();
        break;
    }
    Check(processor().resources().host_memory_used() <= kMaxHostMemory,
          "resources over the host memory cap");
  }

 private:
  gpu::CommandProcessor& processor() { return *processor_; }

  void Control(const Record& record) {
    virtio::DescriptorChain chain = MakeChain(record, /*writable=*/true);
    const uint64_t writable_length = chain.writable_length;
    auto completions = std::make_shared<int>(0);
    const uint64_t token = ++next_token_;
    gpu::ControlOutcome outcome = processor().HandleControl(
        chain, [this, completions, writable_length, token](uint32_t used_length) {
          Check(++*completions == 1, "a command completed twice");
          Check(used_length <= writable_length, "used length over the writable part");
          if (blocked_ && blocking_token_ == token) blocked_ = false;
        });
    switch (outcome.state) {
      case gpu::ControlOutcome::State::kDone:
        Check(*completions == 0, "a command both completed and returned done");
        Check(outcome.used_length <= writable_length, "used length over the writable part");
        break;
      case gpu::ControlOutcome::State::kWaitingForVmm:
        // An answer that came at once (no display, or the channel detached) does not block.
        if (*completions == 0) {
          blocked_ = true;
          blocking_token_ = token;
        }
        break;
      case gpu::ControlOutcome::State::kWaitingForFence:
        Check(false, "a fence wait without a renderer");
        break;
    }
  }

  void Pump() {
    if (!display_) return;
    FuzzEventLoop().RunOnce(0);
    while (!blocked_ && !pending_.empty()) {
      Record next = pending_.front();
      pending_.pop_front();
      Control(next);
    }
  }

  std::unique_ptr<FakeVmm> vmm_;
  std::unique_ptr<gpu::DisplayChannel> display_;
  std::unique_ptr<gpu::CommandProcessor> processor_;
  uint64_t acked_features_ = 0;
  bool blocked_ = false;
  uint64_t blocking_token_ = 0;
  uint64_t next_token_ = 0;
  std::deque<Record> pending_;
};

}  // namespace
}  // namespace vgpu::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
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
