// DriverQueue: the guest driver's side of a split virtqueue (virtio 1.2 §2.7) in GuestRam, for
// tests that drive the daemon's queues through a real vhost-user socket.
//
//   Result<std::unique_ptr<DriverQueue>> queue = DriverQueue::Create(ram, {.size = 64});
//   Result<uint16_t> head = (*queue)->AddChain({{request, 24}}, {{response, 408}});
//   (*queue)->Kick();
//   std::optional<UsedElement> used = (*queue)->WaitForUsed(std::chrono::seconds(2));
//   // used->id == *head; used->length == bytes the device wrote.
//
// Well-behaved use goes through AddChain/Kick/WaitForUsed, which track free descriptors. Attack
// tests use the raw layer (WriteDescriptor, WriteIndirectTable, PublishHead, SetAvailIndex) to
// put anything into the rings; it bypasses the tracking, so such a test picks descriptor indices
// that no AddChain chain is using (AddChain takes the lowest free ones).
//
// The kick and call eventfds belong to the queue; the frontend sends duplicates of them to the
// daemon with SET_VRING_KICK / SET_VRING_CALL.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "support/guest_ram.h"

namespace vgpu::test {

// Spec: struct virtq_desc (virtio 1.2 §2.7.5).
struct VirtqDescriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
} __attribute__((packed));
static_assert(sizeof(VirtqDescriptor) == 16);

// Spec: VIRTQ_DESC_F_* (virtio 1.2 §2.7.5).
inline constexpr uint16_t kDescriptorFlagNext = 1;
inline constexpr uint16_t kDescriptorFlagWrite = 2;
inline constexpr uint16_t kDescriptorFlagIndirect = 4;

// A guest buffer: guest-physical address and length.
struct Buffer {
  uint64_t guest_address = 0;
  uint32_t length = 0;
};

enum class ChainLayout {
  kDirect,    // One descriptor per buffer in the queue's table.
  kIndirect,  // One VIRTQ_DESC_F_INDIRECT descriptor pointing at a table of the buffers (§2.7.5.3).
};

// Spec: struct virtq_used_elem (virtio 1.2 §2.7.8).
struct UsedElement {
  uint32_t id = 0;
  uint32_t length = 0;
};

struct DriverQueueOptions {
  uint16_t size = 64;  // A power of two is not required by §2.7 but QEMU's sizes are.
  // VIRTIO_F_EVENT_IDX negotiated: the driver publishes used_event (§2.7.10) and Kick() honours
  // avail_event only in KickIfNeeded().
  bool event_index = false;
};

// Where the rings are, both as guest-physical addresses and as QEMU user addresses.
struct DriverQueueLayout {
  uint64_t descriptor_guest_address = 0;
  uint64_t available_guest_address = 0;
  uint64_t used_guest_address = 0;
  uint64_t descriptor_user_address = 0;
  uint64_t available_user_address = 0;
  uint64_t used_user_address = 0;
};

class DriverQueue {
 public:
  // Allocates the rings from `ram` with §2.7's alignment (desc 16, avail 2, used 4) and zeroes
  // them. `ram` must outlive the queue.
  static Result<std::unique_ptr<DriverQueue>> Create(GuestRam& ram, DriverQueueOptions options);

  uint16_t size() const { return size_; }
  const DriverQueueLayout& layout() const { return layout_; }
  const EventFd& kick() const { return kick_; }
  const EventFd& call() const { return call_; }
  // The next avail index the driver will publish (the daemon's SET_VRING_BASE value at start).
  uint16_t available_index() const { return available_index_; }
  // How many used elements have been consumed so far.
  uint16_t last_used_index() const { return last_used_index_; }

  // Builds a chain of the readable buffers followed by the writable ones and publishes it.
  // Returns the head descriptor index.
  Result<uint16_t> AddChain(const std::vector<Buffer>& readable,
                            const std::vector<Buffer>& writable,
                            ChainLayout layout = ChainLayout::kDirect);
  // Notifies the device unconditionally.
  void Kick() const { kick_.Signal(); }
  // Notifies the device only if it asked for it (§2.7.10 with EVENT_IDX, §2.7.7 otherwise).
  void KickIfNeeded(uint16_t old_available_index) const;

  // The next used element if the device has published one; never blocks.
  std::optional<UsedElement> PollUsed();
  // Waits for the next used element, polling the call eventfd, up to `timeout`.
  std::optional<UsedElement> WaitForUsed(std::chrono::milliseconds timeout);
  // Waits for the used element whose id is `head`, collecting others into `others` (if given).
  std::optional<UsedElement> WaitForUsedHead(uint16_t head, std::chrono::milliseconds timeout,
                                             std::vector<UsedElement>* others = nullptr);
  // The device's used->idx as it is in memory now.
  uint16_t DeviceUsedIndex() const;

  // Raw layer for attack tests.
  Result<void> WriteDescriptor(uint16_t index, uint64_t address, uint32_t length, uint16_t flags,
                               uint16_t next);
  // Allocates guest memory for an indirect table and writes `descriptors` into it; returns its
  // guest address.
  Result<uint64_t> WriteIndirectTable(const std::vector<VirtqDescriptor>& descriptors);
  // Puts `head` (any value, even >= size) into the next avail ring slot and bumps avail->idx.
  void PublishHead(uint16_t head);
  // Writes avail->idx directly (and adopts it as the driver's index).
  void SetAvailIndex(uint16_t value);

 private:
  DriverQueue(GuestRam& ram, uint16_t size, bool event_index, DriverQueueLayout layout,
              EventFd kick, EventFd call);
  uint16_t* AvailableIndexPointer() const;
  uint16_t* AvailableRing() const;
  uint16_t* UsedEventPointer() const;
  uint16_t* AvailableEventPointer() const;
  uint16_t* UsedIndexPointer() const;
  VirtqDescriptor* Descriptors() const;
  Result<uint64_t> IndirectTableFor(uint16_t head, size_t entries);
  void ReleaseChain(uint16_t head);

  GuestRam& ram_;
  const uint16_t size_;
  const bool event_index_;
  const DriverQueueLayout layout_;
  EventFd kick_;
  EventFd call_;
  uint16_t available_index_ = 0;
  uint16_t last_used_index_ = 0;
  std::vector<bool> descriptor_free_;
  std::vector<std::vector<uint16_t>> chain_descriptors_;  // By head: the descriptors it holds.
  // By head: a reusable indirect table (guest address, capacity in entries).
  std::vector<std::pair<uint64_t, size_t>> indirect_tables_;
};

}  // namespace vgpu::test
