// A split virtqueue's state at a kick, as the debug recorder writes it (gpu/command_recorder.h,
// VHOST_DEVICE_GPU_RECORD_VIRTQUEUE), for fuzz/seeds_from_recording.py to lay out in
// virtqueue_fuzzer's guest RAM.
//
//   std::vector<uint8_t> record = EncodeRingRecord(queue, queue_index);   // Empty: nothing to
//   keep.
//
// Layout (host byte order; this project's own, not a spec's):
//   RingRecordHeader
//   descriptor table   16 * queue_size bytes (struct virtq_desc[])
//   available ring     6 + 2 * queue_size bytes (flags, idx, ring[], used_event)
//   used ring          6 + 8 * queue_size bytes (flags, idx, ring[], avail_event)
//   piece_count times: RingRecordPiece, then `length` bytes of guest memory at guest_address:
//                      the indirect tables and the device-readable buffers of the chains made
//                      available (from next_available to the available ring's idx), each cut
//                      to kMaxRecordedBuffer bytes. Writable buffers are not copied: their
//                      descriptors say where and how long they are.
// Descriptor addresses are the guest's own; the converter relocates them.
//
// Reads are single copies of guest memory, and the walk is bounded (at most queue_size chains
// of at most queue_size descriptors each, kMaxRingRecord bytes in all); a ring the guest breaks
// gives a record of what was there, never an error. A queue larger than kMaxRecordedQueueSize
// (virtqueue_fuzzer's largest) is not recorded.
#pragma once

#include <cstdint>
#include <vector>

#include "virtio/split_virtqueue.h"

namespace vgpu::virtio {

inline constexpr uint32_t kMaxRecordedQueueSize = 1024;
inline constexpr uint32_t kMaxRecordedBuffer = 16 << 10;
inline constexpr uint32_t kMaxRingRecord = 64 << 10;

inline constexpr uint8_t kRingRecordIndirect = 1u << 0;    // VIRTIO_F_INDIRECT_DESC negotiated.
inline constexpr uint8_t kRingRecordEventIndex = 1u << 1;  // VIRTIO_F_EVENT_IDX negotiated.

// Spec: none (this project's debug record, described above).
struct RingRecordHeader {
  uint16_t queue_index;
  uint16_t queue_size;
  uint8_t flags;  // kRingRecord*.
  uint8_t reserved;
  uint16_t next_available;  // The device's next available ring slot.
  uint32_t piece_count;
} __attribute__((packed));
static_assert(sizeof(RingRecordHeader) == 12);

// Spec: none.
struct RingRecordPiece {
  uint64_t guest_address;
  uint32_t length;
} __attribute__((packed));
static_assert(sizeof(RingRecordPiece) == 12);

// The record of `queue`'s current state, or an empty vector when no chain is available or the
// queue is too large to record.
std::vector<uint8_t> EncodeRingRecord(const SplitVirtqueue& queue, uint32_t queue_index);

}  // namespace vgpu::virtio
