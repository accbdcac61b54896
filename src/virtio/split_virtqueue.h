// SplitVirtqueue: the device side of a split virtqueue (virtio 1.2 §2.7) in guest memory.
//
//   Result<std::unique_ptr<SplitVirtqueue>> queue =
//       SplitVirtqueue::Create(memory, layout, features, next_available_index);
//   while (std::optional<PoppedChain> popped = queue->Pop()) {
//     if (!popped->chain) { queue->PushUsed(popped->head_index, 0); continue; }
//     ... handle, write the response ...
//     queue->PushUsed(popped->head_index, bytes_written);
//   }
//   queue->NotifyIfNeeded();
//
// The rings are guest-controlled memory. Indices read from them are loaded once and checked; the
// device keeps its own copy of every index it owns (next available, used), so the guest can
// confuse itself but never the device. A driver that breaks the ring's invariants (a head outside
// the table, an available index more than a queue ahead) marks the queue broken: it is no longer
// processed until it is set up again (virtio 1.2 §2.1.2: the device needs a reset).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "base/result.h"
#include "base/unique_fd.h"
#include "virtio/descriptor_chain.h"
#include "virtio/guest_memory.h"

namespace vgpu::virtio {

inline constexpr uint32_t kMaxQueueSize = 32768;  // virtio 1.2 §2.7: Queue Size ≤ 32768.

// Where chains go back to the driver: the used ring and its notification (§2.7.8, §2.7.10).
// SplitVirtqueue is one; tests give InFlightChains (pending_chain.h) a recording one.
class UsedRing {
 public:
  virtual ~UsedRing() = default;
  // Returns a chain to the driver with the number of bytes written into its writable buffers.
  virtual void PushUsed(uint16_t head_index, uint32_t written_length) = 0;
  // Signals the driver if it wants an interrupt for what was pushed.
  virtual void NotifyIfNeeded() = 0;
};

// Where the rings are, in the frontend's address space (vhost-user SET_VRING_ADDR).
struct SplitVirtqueueLayout {
  uint32_t size = 0;  // 1..32768.
  uint64_t descriptor_user_address = 0;
  uint64_t available_user_address = 0;
  uint64_t used_user_address = 0;
};

struct QueueFeatures {
  bool indirect_descriptors = false;  // VIRTIO_F_INDIRECT_DESC
  bool event_index = false;           // VIRTIO_F_EVENT_IDX
};

struct PoppedChain {
  uint16_t head_index = 0;
  Result<DescriptorChain> chain;  // An error when the chain is malformed; push it back used-len 0.
};

class SplitVirtqueue final : public UsedRing {
 public:
  // Checks the layout's alignment (§2.7: desc 16, avail 2, used 4) and that each ring lies inside
  // mapped memory. `used_index` is where the used ring continues (normally equal to
  // next_available_index when a queue starts, since nothing is in flight).
  static Result<std::unique_ptr<SplitVirtqueue>> Create(std::shared_ptr<const GuestMemory> memory,
                                                        const SplitVirtqueueLayout& layout,
                                                        const QueueFeatures& features,
                                                        uint16_t next_available_index);

  // Re-resolves the rings against a new memory table, keeping every index.
  Result<void> ReplaceMemory(std::shared_ptr<const GuestMemory> memory);

  // The next chain the driver made available, or nullopt when there is none (or the queue broke).
  std::optional<PoppedChain> Pop();
  // Returns a chain to the driver with the number of bytes written into its writable buffers.
  void PushUsed(uint16_t head_index, uint32_t written_length) override;
  // Signals the call fd if the driver wants an interrupt for what was pushed (§2.7.7, §2.7.10).
  void NotifyIfNeeded() override;

  // With EVENT_IDX: asks the driver to kick on the next buffer, then re-checks for buffers that
  // raced in. Returns true if more work arrived (call Pop again).
  bool EnableKickAndRecheck();

  void set_call_fd(UniqueFd call_fd) { call_fd_ = std::move(call_fd); }
  bool broken() const { return broken_; }
  uint16_t next_available_index() const { return next_available_; }
  uint16_t size() const { return size_; }
  const SplitVirtqueueLayout& layout() const { return layout_; }
  const QueueFeatures& features() const { return features_; }
  uint32_t in_flight() const { return in_flight_; }
  const std::shared_ptr<const GuestMemory>& memory() const { return memory_; }

 private:
  SplitVirtqueue(const SplitVirtqueueLayout& layout, const QueueFeatures& features)
      : layout_(layout), features_(features), size_(layout.size) {}
  Result<void> ResolveRings(std::shared_ptr<const GuestMemory> memory);
  uint16_t LoadAvailableIndex() const;

  SplitVirtqueueLayout layout_;
  QueueFeatures features_;
  uint32_t size_;
  std::shared_ptr<const GuestMemory> memory_;

  // Host views of the rings (guest-controlled memory; accessed only through atomic loads/stores
  // or single copies).
  std::span<uint8_t> descriptor_table_;
  uint8_t* available_ring_ = nullptr;  // struct virtq_avail
  uint8_t* used_ring_ = nullptr;       // struct virtq_used

  uint16_t next_available_ = 0;  // Device-owned copy: next avail ring slot to read.
  uint16_t used_index_ = 0;      // Device-owned copy of used->idx.
  uint16_t signalled_used_ = 0;  // used_index_ when the driver was last notified.
  bool signalled_used_valid_ = false;
  uint32_t in_flight_ = 0;
  bool broken_ = false;
  UniqueFd call_fd_;
};

}  // namespace vgpu::virtio
