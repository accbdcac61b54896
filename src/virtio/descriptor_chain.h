// Descriptor chains of a split virtqueue (virtio 1.2 §2.7.5), walked and validated.
//
//   Result<DescriptorChain> chain = WalkDescriptorChain(memory, table, head, options);
//   if (!chain) { queue.PushUsed(head, 0); ... }   // A bad chain fails only its own request.
//   ChainReader reader(*chain);
//
// Everything in a descriptor is guest-controlled. Each descriptor is copied out of guest memory
// before it is looked at, indirect tables are copied whole, and the walk is bounded so that loops,
// over-long chains and nested indirect tables end in an error instead of a hang.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/result.h"
#include "virtio/guest_memory.h"
#include "virtio/span_list.h"

namespace vgpu::virtio {

// Spec: struct virtq_desc (virtio 1.2 §2.7.5).
struct VirtqDescriptor {
  uint64_t addr;   // guest-controlled
  uint32_t len;    // guest-controlled
  uint16_t flags;  // guest-controlled
  uint16_t next;   // guest-controlled
} __attribute__((packed));
static_assert(sizeof(VirtqDescriptor) == 16);

inline constexpr uint16_t kDescriptorFlagNext = 1;
inline constexpr uint16_t kDescriptorFlagWrite = 2;
inline constexpr uint16_t kDescriptorFlagIndirect = 4;

// Move-only: its writable buffers are the guest's until the chain goes back, and only one owner
// may hold them (the in-flight entry, pending_chain.h).
struct DescriptorChain {
  DescriptorChain() = default;
  DescriptorChain(DescriptorChain&&) noexcept = default;
  DescriptorChain& operator=(DescriptorChain&&) noexcept = default;
  DescriptorChain(const DescriptorChain&) = delete;
  DescriptorChain& operator=(const DescriptorChain&) = delete;

  uint16_t head_index = 0;
  // Host views of the device-readable and device-writable buffers, in chain order. A descriptor
  // that crosses from one memory region into the next becomes two spans.
  SpanList readable;
  SpanList writable;
  uint64_t readable_length = 0;
  uint64_t writable_length = 0;
  // The memory the spans point into, borrowed from the queue that popped the chain: valid while
  // the chain is handled, in the task that popped it. Whatever keeps the spans longer
  // (InFlightChains) or needs the memory later (a resource's backing) takes a share of it, so
  // that a popped chain costs no reference count.
  const std::shared_ptr<const GuestMemory>* memory = nullptr;

  const GuestMemory& guest_memory() const { return **memory; }
  std::shared_ptr<const GuestMemory> ShareMemory() const { return memory ? *memory : nullptr; }
};

struct WalkOptions {
  uint16_t queue_size = 0;        // Bounds the chain length (§2.7.5.3: no longer than the queue).
  bool indirect_allowed = false;  // VIRTIO_F_INDIRECT_DESC negotiated.
};

// Walks the chain starting at `head` through `descriptor_table` (the queue's table in guest memory,
// queue_size entries).
// `memory` is borrowed by the chain (DescriptorChain::memory): it must outlive the chain's
// handling.
Result<DescriptorChain> WalkDescriptorChain(const std::shared_ptr<const GuestMemory>& memory,
                                            std::span<const uint8_t> descriptor_table,
                                            uint16_t head, const WalkOptions& options);

}  // namespace vgpu::virtio
