#include "virtio/split_virtqueue.h"

#include <unistd.h>

#include <atomic>

#include "base/checked_math.h"
#include "base/log.h"

namespace vgpu::virtio {
namespace {

// Spec: struct virtq_avail { le16 flags; le16 idx; le16 ring[size]; le16 used_event; }.
constexpr size_t kAvailableFlagsOffset = 0;
constexpr size_t kAvailableIndexOffset = 2;
constexpr size_t kAvailableRingOffset = 4;
constexpr uint16_t kAvailableFlagNoInterrupt = 1;
// Spec: struct virtq_used { le16 flags; le16 idx; struct virtq_used_elem ring[size];
//                           le16 avail_event; }, virtq_used_elem { le32 id; le32 len; }.
constexpr size_t kUsedIndexOffset = 2;
constexpr size_t kUsedRingOffset = 4;
constexpr size_t kUsedElementSize = 8;

uint16_t LoadGuest16(const uint8_t* address) {
  // Alignment was checked at setup, so this is one untorn load the compiler cannot repeat.
  return __atomic_load_n(reinterpret_cast<const uint16_t*>(address), __ATOMIC_RELAXED);
}
void StoreGuest16(uint8_t* address, uint16_t value) {
  __atomic_store_n(reinterpret_cast<uint16_t*>(address), value, __ATOMIC_RELAXED);
}
void StoreGuest32(uint8_t* address, uint32_t value) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(address), value, __ATOMIC_RELAXED);
}

// §2.7.10.1 / Linux vring_need_event: notify if new_index passed event_index since old_index.
bool NeedEvent(uint16_t event_index, uint16_t new_index, uint16_t old_index) {
  return static_cast<uint16_t>(new_index - event_index - 1) <
         static_cast<uint16_t>(new_index - old_index);
}

}  // namespace

Result<std::unique_ptr<SplitVirtqueue>> SplitVirtqueue::Create(
    std::shared_ptr<const GuestMemory> memory, const SplitVirtqueueLayout& layout,
    const QueueFeatures& features, uint16_t next_available_index) {
  std::unique_ptr<SplitVirtqueue> queue(new SplitVirtqueue(layout, features));
  if (layout.size == 0 || layout.size > kMaxQueueSize) {
    return MakeError(ErrorKind::kInvalidArgument, "queue size out of range");
  }
  if (layout.descriptor_user_address % 16 != 0 || layout.available_user_address % 2 != 0 ||
      layout.used_user_address % 4 != 0) {
    return MakeError(ErrorKind::kInvalidArgument, "ring address misaligned");
  }
  Result<void> resolved = queue->ResolveRings(std::move(memory));
  if (!resolved) return ErrorOf(resolved);
  queue->next_available_ = next_available_index;
  // The used ring continues where the previous owner left it; its index is the device's from now
  // on and is never read back from guest memory.
  queue->used_index_ = LoadGuest16(queue->used_ring_ + kUsedIndexOffset);
  return queue;
}

Result<void> SplitVirtqueue::ResolveRings(std::shared_ptr<const GuestMemory> memory) {
  const uint64_t size = size_;
  Result<std::span<uint8_t>> descriptors =
      memory->TranslateUserAddress(layout_.descriptor_user_address, size * 16);
  // Available ring including used_event; used ring including avail_event.
  Result<std::span<uint8_t>> available =
      memory->TranslateUserAddress(layout_.available_user_address, 6 + 2 * size);
  Result<std::span<uint8_t>> used =
      memory->TranslateUserAddress(layout_.used_user_address, 6 + kUsedElementSize * size);
  if (!descriptors) return MakeError(ErrorKind::kOutOfRange, "descriptor table outside memory");
  if (!available) return MakeError(ErrorKind::kOutOfRange, "available ring outside memory");
  if (!used) return MakeError(ErrorKind::kOutOfRange, "used ring outside memory");
  // The mapping is page aligned and the user addresses are aligned, so host pointers are too.
  descriptor_table_ = *descriptors;
  available_ring_ = available->data();
  used_ring_ = used->data();
  memory_ = std::move(memory);
  return {};
}

Result<void> SplitVirtqueue::ReplaceMemory(std::shared_ptr<const GuestMemory> memory) {
  return ResolveRings(std::move(memory));
}

uint16_t SplitVirtqueue::LoadAvailableIndex() const {
  return LoadGuest16(available_ring_ + kAvailableIndexOffset);
}

std::optional<PoppedChain> SplitVirtqueue::Pop() {
  if (broken_) return std::nullopt;
  const uint16_t available_index = LoadAvailableIndex();
  const uint16_t pending = static_cast<uint16_t>(available_index - next_available_);
  if (pending == 0) return std::nullopt;
  if (pending > size_) {
    LogWarning(
        "virtqueue: driver moved the available index %u entries ahead (size %u); "
        "queue stopped until reset",
        pending, size_);
    broken_ = true;
    return std::nullopt;
  }
  // Read the ring entry only after the index that published it (§2.7.13: the driver writes the
  // entry before the index, with a barrier in between).
  std::atomic_thread_fence(std::memory_order_acquire);
  const size_t slot = next_available_ % size_;
  const uint16_t head = LoadGuest16(available_ring_ + kAvailableRingOffset + 2 * slot);
  // avail_event is not moved here: while the device is taking chains the driver need not kick
  // (§2.7.10); EnableKickAndRecheck asks for kicks again once the ring is drained.
  ++next_available_;
  if (head >= size_) {
    LogWarning(
        "virtqueue: driver made head %u available in a queue of %u; queue stopped until "
        "reset",
        head, size_);
    broken_ = true;
    return std::nullopt;
  }
  ++in_flight_;
  const WalkOptions options{static_cast<uint16_t>(size_), features_.indirect_descriptors};
  return PoppedChain{head, WalkDescriptorChain(memory_, descriptor_table_, head, options)};
}

void SplitVirtqueue::PushUsed(uint16_t head_index, uint32_t written_length) {
  const size_t slot = used_index_ % size_;
  uint8_t* element = used_ring_ + kUsedRingOffset + kUsedElementSize * slot;
  StoreGuest32(element, head_index);
  StoreGuest32(element + 4, written_length);
  // The element must be visible before the index that publishes it (§2.7.8).
  std::atomic_thread_fence(std::memory_order_release);
  ++used_index_;
  StoreGuest16(used_ring_ + kUsedIndexOffset, used_index_);
  if (in_flight_ > 0) --in_flight_;
}

void SplitVirtqueue::NotifyIfNeeded() {
  if (!call_fd_.valid()) return;
  // Order the used index store before reading the driver's suppression fields.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool notify;
  if (features_.event_index) {
    const uint16_t used_event = LoadGuest16(available_ring_ + kAvailableRingOffset + 2 * size_);
    const uint16_t old_index = signalled_used_;
    const bool valid = signalled_used_valid_;
    if (valid && old_index == used_index_) return;  // Nothing new since the last signal.
    notify = !valid || NeedEvent(used_event, used_index_, old_index);
    signalled_used_ = used_index_;
    signalled_used_valid_ = true;
  } else {
    notify = !(LoadGuest16(available_ring_ + kAvailableFlagsOffset) & kAvailableFlagNoInterrupt);
  }
  if (!notify) return;
  const uint64_t one = 1;
  ssize_t ignored = write(call_fd_.get(), &one, sizeof(one));
  (void)ignored;
}

bool SplitVirtqueue::EnableKickAndRecheck() {
  if (broken_) return false;
  if (features_.event_index) {
    // avail_event: kick us once the driver goes past what we have taken.
    StoreGuest16(used_ring_ + kUsedRingOffset + kUsedElementSize * size_, next_available_);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return LoadAvailableIndex() != next_available_;
}

}  // namespace vgpu::virtio
