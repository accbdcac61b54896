// Fuzz target: the device side of a split virtqueue (virtio 1.2 §2.7) over arbitrary guest
// memory and ring state: SplitVirtqueue::Pop (which walks each chain with WalkDescriptorChain),
// ChainReader/ChainWriter over what it returns, PushUsed, NotifyIfNeeded and
// EnableKickAndRecheck.
//
// Input: a 16-byte header, then the contents of guest RAM from guest address 0.
//   u16 queue size (1 + value % 1024)    u8 feature and mode bits (kBit*)
//   u8  unused                           u32 descriptor table offset
//   u16 available ring offset / 2        u16 used ring offset / 4
//   u16 next available index (the device's)   u16 available index (written into avail->idx)
// Guest RAM: two adjacent 64 KiB regions at 0 and 0x10000 (buffers may cross between them) and
// a 4 KiB region at 1 MiB after a gap. The ring offsets are relative to the frontend address
// of guest address 0 and aligned as the spec wants, unless kBitRawAddresses keeps them as given.
//
// Oracles besides the sanitizers: every span of a chain points into guest memory, the spans add
// up to the chain's lengths, and the reader and writer never move more than the chain holds.
#include <sys/eventfd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "base/log.h"
#include "fuzz_guest_memory.h"
#include "fuzz_input.h"
#include "fuzz_support.h"
#include "virtio/chain_io.h"
#include "virtio/split_virtqueue.h"

namespace vgpu::fuzz {
namespace {

constexpr uint8_t kBitIndirect = 1u << 0;
constexpr uint8_t kBitEventIndex = 1u << 1;
constexpr uint8_t kBitRawAddresses = 1u << 2;
constexpr uint8_t kBitCallFd = 1u << 3;
constexpr uint8_t kBitReplaceMemory = 1u << 4;

constexpr uint64_t kRingWindow = 0x20000;  // Both adjacent regions.

FuzzGuestMemory& Memory() {
  static FuzzGuestMemory memory({{0, 0x10000}, {0x10000, 0x10000}, {0x100000, 0x1000}});
  return memory;
}

void Check(bool condition, const char* what) {
  CheckInvariant("virtqueue_fuzzer", condition, what);
}

void CheckSpans(const virtio::SpanList& spans, uint64_t length) {
  uint64_t total = 0;
  for (const std::span<uint8_t>& span : spans) {
    Check(!span.empty(), "empty span in a chain");
    Check(Memory().Contains(span.data(), span.size()), "chain span outside guest memory");
    total += span.size();
  }
  Check(total == length, "chain spans do not add up to the chain length");
}

// Reads the whole readable part in uneven pieces and fills part of the writable part, as a
// device would. Returns the number of bytes written.
uint32_t ConsumeChain(const virtio::DescriptorChain& chain) {
  CheckSpans(chain.readable, chain.readable_length);
  CheckSpans(chain.writable, chain.writable_length);

  virtio::ChainReader reader(chain);
  uint8_t buffer[4096];
  static constexpr size_t kPieces[] = {1, 7, 24, 512, 4096};
  uint64_t read = 0;
  for (size_t piece = 0; reader.remaining() > 0; ++piece) {
    const size_t length = kPieces[piece % std::size(kPieces)];
    const uint64_t before = reader.remaining();
    if (piece % 4 == 3) {
      if (reader.Skip(length)) {
        read += length;
      } else {
        Check(reader.remaining() == before, "failed Skip consumed bytes");
        Check(reader.Skip(before), "Skip of exactly the remaining bytes failed");
        read += before;
      }
    } else if (reader.Read(std::span<uint8_t>(buffer, length))) {
      read += length;
    } else {
      Check(reader.remaining() == before, "failed Read consumed bytes");
      Check(reader.Read(std::span<uint8_t>(buffer, static_cast<size_t>(before))),
            "Read of exactly the remaining bytes failed");
      read += before;
    }
  }
  Check(read == chain.readable_length, "reader did not read the whole chain");

  virtio::ChainWriter writer(chain);
  std::memset(buffer, 0x5a, sizeof(buffer));
  const uint64_t want = std::min<uint64_t>(chain.writable_length, 3 * sizeof(buffer));
  while (writer.bytes_written() < want) {
    const size_t length =
        static_cast<size_t>(std::min<uint64_t>(want - writer.bytes_written(), 1000));
    Check(writer.Write(std::span<const uint8_t>(buffer, length)), "Write within room failed");
  }
  if (writer.remaining() == 0) {
    Check(!writer.Write(std::span<const uint8_t>(buffer, 1)), "Write past the end succeeded");
  }
  Check(writer.bytes_written() <= chain.writable_length, "writer wrote past the chain");
  return static_cast<uint32_t>(writer.bytes_written());
}

}  // namespace
}  // namespace vgpu::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vgpu::fuzz::SetFuzzLogLevel();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vgpu;
  using namespace vgpu::fuzz;
  FuzzInput input(data, size);
  const uint16_t size_raw = input.Take<uint16_t>();
  const uint8_t bits = input.Take<uint8_t>();
  (void)input.Take<uint8_t>();
  const uint32_t descriptor_offset = input.Take<uint32_t>();
  const uint16_t available_offset = input.Take<uint16_t>();
  const uint16_t used_offset = input.Take<uint16_t>();
  const uint16_t next_available = input.Take<uint16_t>();
  const uint16_t available_index = input.Take<uint16_t>();

  FuzzGuestMemory& memory = Memory();
  memory.Clear();
  memory.Write(0, input.TakeRest());

  virtio::SplitVirtqueueLayout layout;
  layout.size = 1 + size_raw % 1024;
  uint64_t descriptor = descriptor_offset;
  uint64_t available = uint64_t{available_offset} * 2;
  uint64_t used = uint64_t{used_offset} * 4;
  if (bits & kBitRawAddresses) {
    available = available_offset;
    used = used_offset;
  } else {
    descriptor = (descriptor % kRingWindow) & ~uint64_t{15};
  }
  layout.descriptor_user_address = kUserAddressOffset + descriptor;
  layout.available_user_address = kUserAddressOffset + available;
  layout.used_user_address = kUserAddressOffset + used;
  // The driver's available index, where the ring says (if that is in memory).
  const uint8_t index_bytes[2] = {static_cast<uint8_t>(available_index),
                                  static_cast<uint8_t>(available_index >> 8)};
  memory.Write(available + 2, index_bytes);

  const virtio::QueueFeatures features{(bits & kBitIndirect) != 0, (bits & kBitEventIndex) != 0};
  Result<std::unique_ptr<virtio::SplitVirtqueue>> created =
      virtio::SplitVirtqueue::Create(memory.guest(), layout, features, next_available);
  if (!created) return 0;
  virtio::SplitVirtqueue& queue = **created;
  if (bits & kBitCallFd) queue.set_call_fd(UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)));

  // Writable buffers may overlap the rings, so the device's own writes can make more chains
  // available; bound the rounds rather than trusting the guest to stop.
  const uint32_t max_pops = 4 * layout.size + 16;
  uint32_t pops = 0;
  for (int round = 0; round < 4 && pops < max_pops; ++round) {
    while (pops < max_pops) {
      std::optional<virtio::PoppedChain> popped = queue.Pop();
      if (!popped) break;
      ++pops;
      Check(popped->head_index < layout.size, "popped a head outside the queue");
      uint32_t written = 0;
      if (popped->chain) {
        Check(popped->chain->head_index == popped->head_index, "chain head differs from popped");
        written = ConsumeChain(*popped->chain);
      }
      queue.PushUsed(popped->head_index, written);
      if ((bits & kBitReplaceMemory) && pops % 3 == 0) {
        Check(static_cast<bool>(queue.ReplaceMemory(memory.guest())),
              "ReplaceMemory with the same memory failed");
      }
    }
    queue.NotifyIfNeeded();
    if (!queue.EnableKickAndRecheck()) break;
  }
  Check(queue.in_flight() == 0, "chains still in flight after all were pushed");
  return 0;
}
