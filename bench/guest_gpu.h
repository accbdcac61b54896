// GuestGpu: the guest driver's use of the virtio-gpu queues, shaped like Linux's virtio_gpu
// driver: every control command is one indirect descriptor (request, then a writable response;
// Linux's virtqueue_add uses an indirect table whenever a chain has more than one buffer and
// VIRTIO_RING_F_INDIRECT_DESC is negotiated), cursor commands are a single readable buffer with
// no response (virtio_gpu_queue_cursor), notifications honour event suppression
// (virtqueue_kick_prepare).
//
//   GuestGpu gpu(connection->session());
//   Result<void> created = gpu.Run(CreateResource2d(1, gpu::Format::kB8G8R8X8Unorm, 1920, 1080));
//   Result<uint16_t> transfer = gpu.Submit(GuestGpu::Queue::kControl, TransferToHost2d(...));
//   Result<uint16_t> flush = gpu.Submit(GuestGpu::Queue::kControl, ResourceFlush(...));
//   gpu.Notify(GuestGpu::Queue::kControl);
//   Result<Completion> done = gpu.WaitForCompletion(GuestGpu::Queue::kControl, timeout);
//
// Request and response buffers are a fixed pool allocated once from guest RAM (GuestRam never
// reuses what it hands out), one pair per descriptor of the queue.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "gpu/protocol.h"
#include "support/vhost_user_frontend.h"

namespace vgpu::bench {

struct Completion {
  uint16_t head = 0;
  gpu::ResponseType response = gpu::ResponseType::kOkNodata;  // Control queue only.
  // Where the device wrote the response, and how many bytes (the used length).
  uint64_t response_address = 0;
  uint32_t response_length = 0;
};

class GuestGpu {
 public:
  enum class Queue { kControl, kCursor };

  // Allocates the buffer pools; `session` must outlive this object.
  static Result<std::unique_ptr<GuestGpu>> Create(test::Session& session);

  // Whether control commands carry VIRTIO_GPU_FLAG_FENCE with increasing fence ids (§5.7.6.7).
  void set_fence_control_commands(bool fence) { fence_control_commands_ = fence; }

  // Puts one command on `queue` without notifying. `request` starts with a CtrlHdr; a fence is
  // added here when enabled. Fails when no buffer pair is free.
  Result<uint16_t> Submit(Queue queue, std::span<const uint8_t> request, bool fence);
  template <class T>
  Result<uint16_t> Submit(Queue queue, const T& request) {
    return Submit(queue, Bytes(request), queue == Queue::kControl && fence_control_commands_);
  }
  // Notifies the device of everything submitted since the last Notify, if it asked to be
  // notified (§2.7.10 with EVENT_IDX).
  void Notify(Queue queue);
  // The next used element of `queue` (waiting on the used-buffer notification up to `timeout`);
  // its response is read and checked: a control command must be answered OK_*, and a fenced one
  // must echo its fence (§5.7.6.7), otherwise the completion is an error.
  Result<Completion> WaitForCompletion(Queue queue, std::chrono::milliseconds timeout);
  // Submit, notify, wait for that command (others completed meanwhile are checked too).
  Result<void> Run(std::span<const uint8_t> request, bool fence);
  template <class T>
  Result<void> Run(const T& request) {
    return Run(Bytes(request), fence_control_commands_);
  }
  size_t in_flight(Queue queue) const;

  // Puts one control command of any size (SUBMIT_3D with its command stream, a backing table) on
  // the control queue without notifying: Linux places such requests in buffers of their own.
  // The request goes to a separate guest buffer (grown as needed), so only one such command may
  // be in flight at a time. `fence` as for Submit. A response larger than the pool's buffers
  // (GET_CAPSET) gets a buffer of `response_capacity` bytes.
  Result<uint16_t> SubmitLarge(std::span<const uint8_t> request, bool fence,
                               uint32_t response_capacity = 0);
  // SubmitLarge, notify, wait for that command.
  Result<Completion> RunLarge(std::span<const uint8_t> request, bool fence,
                              uint32_t response_capacity = 0);

  // RESOURCE_ATTACH_BACKING with `entries` (any count; big tables use a separate buffer).
  Result<void> AttachBacking(uint32_t resource_id, const std::vector<gpu::MemEntry>& entries);

  template <class T>
  static std::span<const uint8_t> Bytes(const T& value) {
    return {reinterpret_cast<const uint8_t*>(&value), sizeof(T)};
  }

 private:
  struct Slot {
    uint64_t request_address = 0;
    uint64_t response_address = 0;
    bool busy = false;
    bool fenced = false;
    uint64_t fence_id = 0;
    uint32_t command = 0;
    bool large = false;  // Its request is in the large-request buffer.
    // The response buffer of the command in flight: response_address, or a large one.
    uint64_t answer_address = 0;
    uint32_t answer_capacity = 0;
  };
  struct QueueState {
    test::DriverQueue* queue = nullptr;
    std::vector<Slot> slots;
    std::vector<int> slot_of_head;  // By head descriptor: index into slots, -1 if none.
    uint16_t notified_index = 0;    // avail->idx at the last Notify.
    size_t in_flight = 0;
  };

  explicit GuestGpu(test::Session& session) : session_(session) {}
  QueueState& state(Queue queue) { return queue == Queue::kControl ? control_ : cursor_; }
  Result<uint16_t> SubmitAt(Queue queue, uint64_t request_address, uint32_t request_length,
                            int slot_index, const Slot& description);
  int FreeSlot(Queue queue);
  // Sets VIRTIO_GPU_FLAG_FENCE and the next fence id in the CtrlHdr at `bytes` when `fence`;
  // fills `description`'s fence and command fields.
  void PrepareHeader(uint8_t* bytes, bool fence, Slot& description);

  test::Session& session_;
  QueueState control_;
  QueueState cursor_;
  bool fence_control_commands_ = false;
  uint64_t next_fence_id_ = 1;
  uint64_t large_request_address_ = 0;  // For SubmitLarge.
  uint32_t large_request_capacity_ = 0;
  bool large_request_busy_ = false;
  uint64_t large_response_address_ = 0;
  uint32_t large_response_capacity_ = 0;
};

// Command builders (Spec: the structs of §5.7.6.8, built as Linux's virtgpu_vq.c fills them).
gpu::ResourceCreate2d CreateResource2d(uint32_t id, gpu::Format format, uint32_t width,
                                       uint32_t height);
gpu::ResourceUnref ResourceUnref(uint32_t id);
gpu::SetScanout SetScanout(uint32_t scanout_id, uint32_t resource_id, gpu::Rect rect);
// `stride` in bytes: Linux sends offset = y * pitch + x * cpp (virtio_gpu_update_dumb_bo).
gpu::TransferToHost2d TransferToHost2d(uint32_t resource_id, gpu::Rect rect, uint32_t stride);
gpu::ResourceFlush ResourceFlush(uint32_t resource_id, gpu::Rect rect);
gpu::UpdateCursor UpdateCursor(uint32_t resource_id, uint32_t x, uint32_t y);
gpu::UpdateCursor MoveCursor(uint32_t resource_id, uint32_t x, uint32_t y);

// "OK_NODATA", "ERR_INVALID_PARAMETER", or the number.
std::string ResponseName(uint32_t type);

}  // namespace vgpu::bench
