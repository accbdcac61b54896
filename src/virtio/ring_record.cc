#include "virtio/ring_record.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <utility>

#include "virtio/descriptor_chain.h"

namespace vgpu::virtio {
namespace {

// Spec: struct virtq_avail { le16 flags; le16 idx; le16 ring[size]; le16 used_event; }.
constexpr size_t kAvailableIndexOffset = 2;
constexpr size_t kAvailableRingOffset = 4;

// Builds one record: the header and rings first, then pieces while the budget lasts.
class RingRecordBuilder {
 public:
  RingRecordBuilder(const GuestMemory& memory, uint32_t queue_size)
      : memory_(memory), queue_size_(queue_size) {}

  void Append(std::span<const uint8_t> bytes) {
    record_.insert(record_.end(), bytes.begin(), bytes.end());
  }

  // Walks the chain at `start` of `table` (a copy, `entries` descriptors), adding the indirect
  // table it points to and its readable buffers. Stops quietly at anything a walk would refuse.
  void AddChain(std::span<const uint8_t> table, uint32_t entries, uint32_t start,
                bool in_indirect) {
    uint32_t index = start;
    for (uint32_t steps = 0; steps < entries && index < entries; ++steps) {
      VirtqDescriptor descriptor{};
      std::memcpy(&descriptor, table.data() + size_t{index} * sizeof(descriptor),
                  sizeof(descriptor));
      if (descriptor.flags & kDescriptorFlagIndirect) {
        if (in_indirect) return;  // §2.7.5.3.1: never nested.
        const uint32_t indirect_entries =
            std::min(descriptor.len / uint32_t{sizeof(VirtqDescriptor)}, queue_size_);
        std::vector<uint8_t> indirect(size_t{indirect_entries} * sizeof(VirtqDescriptor));
        if (indirect.empty() || !memory_.Read(GuestAddress{descriptor.addr}, indirect)) return;
        if (!AddPiece(descriptor.addr, indirect)) return;
        AddChain(indirect, indirect_entries, 0, true);
        return;
      }
      if (!(descriptor.flags & kDescriptorFlagWrite) && descriptor.len > 0) {
        std::vector<uint8_t> buffer(std::min(descriptor.len, kMaxRecordedBuffer));
        if (memory_.Read(GuestAddress{descriptor.addr}, buffer) &&
            !AddPiece(descriptor.addr, buffer)) {
          return;
        }
      }
      if (!(descriptor.flags & kDescriptorFlagNext)) return;
      index = descriptor.next;
    }
  }

  std::vector<uint8_t> Finish() {
    std::memcpy(record_.data() + offsetof(RingRecordHeader, piece_count), &piece_count_,
                sizeof(piece_count_));
    return std::move(record_);
  }

 private:
  // False once the record is full.
  bool AddPiece(uint64_t address, std::span<const uint8_t> bytes) {
    const auto piece = std::make_pair(address, static_cast<uint32_t>(bytes.size()));
    if (std::find(added_.begin(), added_.end(), piece) != added_.end()) return true;
    if (record_.size() + sizeof(RingRecordPiece) + bytes.size() > kMaxRingRecord) return false;
    const RingRecordPiece header{address, piece.second};
    Append({reinterpret_cast<const uint8_t*>(&header), sizeof(header)});
    Append(bytes);
    added_.push_back(piece);
    ++piece_count_;
    return true;
  }

  const GuestMemory& memory_;
  const uint32_t queue_size_;
  std::vector<uint8_t> record_;
  std::vector<std::pair<uint64_t, uint32_t>> added_;
  uint32_t piece_count_ = 0;
};

// A copy of `length` bytes at a ring's frontend address (Create checked that it is mapped).
std::vector<uint8_t> CopyRing(const GuestMemory& memory, uint64_t user_address, uint64_t length) {
  Result<std::span<uint8_t>> ring = memory.TranslateUserAddress(user_address, length);
  if (!ring) return {};
  return std::vector<uint8_t>(ring->begin(), ring->end());
}

}  // namespace

std::vector<uint8_t> EncodeRingRecord(const SplitVirtqueue& queue, uint32_t queue_index) {
  const uint32_t size = queue.size();
  if (size == 0 || size > kMaxRecordedQueueSize || queue.memory() == nullptr) return {};
  const GuestMemory& memory = *queue.memory();
  const SplitVirtqueueLayout& layout = queue.layout();
  // Copies first: the guest may change its rings while they are read; the walk below reads only
  // the copies (and the indirect tables, copied once each).
  const std::vector<uint8_t> table =
      CopyRing(memory, layout.descriptor_user_address, sizeof(VirtqDescriptor) * size);
  const std::vector<uint8_t> available =
      CopyRing(memory, layout.available_user_address, 6 + 2 * size);
  const std::vector<uint8_t> used = CopyRing(memory, layout.used_user_address, 6 + 8 * size);
  if (table.empty() || available.empty() || used.empty()) return {};

  uint16_t available_index = 0;
  std::memcpy(&available_index, available.data() + kAvailableIndexOffset, sizeof(available_index));
  const uint16_t next_available = queue.next_available_index();
  const uint32_t pending =
      std::min<uint32_t>(static_cast<uint16_t>(available_index - next_available), size);
  if (pending == 0) return {};

  RingRecordHeader header{};
  header.queue_index = static_cast<uint16_t>(queue_index);
  header.queue_size = static_cast<uint16_t>(size);
  header.flags =
      static_cast<uint8_t>((queue.features().indirect_descriptors ? kRingRecordIndirect : 0) |
                           (queue.features().event_index ? kRingRecordEventIndex : 0));
  header.next_available = next_available;
  RingRecordBuilder builder(memory, size);
  builder.Append({reinterpret_cast<const uint8_t*>(&header), sizeof(header)});
  builder.Append(table);
  builder.Append(available);
  builder.Append(used);
  for (uint32_t i = 0; i < pending; ++i) {
    uint16_t head = 0;
    const size_t slot = static_cast<uint16_t>(next_available + i) % size;
    std::memcpy(&head, available.data() + kAvailableRingOffset + 2 * slot, sizeof(head));
    builder.AddChain(table, size, head, false);
  }
  return builder.Finish();
}

}  // namespace vgpu::virtio
