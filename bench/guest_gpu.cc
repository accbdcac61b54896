#include "guest_gpu.h"

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace vgpu::bench {
namespace {

// Room for the largest fixed-size request and response (RESP_DISPLAY_INFO, 408 bytes).
constexpr uint32_t kRequestBufferSize = 128;
constexpr uint32_t kResponseBufferSize = 512;

gpu::CtrlHdr Header(gpu::CommandType type) {
  gpu::CtrlHdr header{};
  header.type = static_cast<uint32_t>(type);
  return header;
}

// GuestRam never reuses what it hands out: buffers grow in powers of two, so that a stream of
// slowly growing requests does not use up guest RAM.
Result<void> GrowBuffer(test::GuestRam& ram, uint32_t needed, uint64_t& address,
                        uint32_t& capacity) {
  if (needed <= capacity) return {};
  uint32_t grown = 4096;
  while (grown < needed) grown *= 2;
  Result<uint64_t> buffer = ram.Allocate(grown, 4096);
  if (!buffer) return ErrorOf(buffer);
  address = *buffer;
  capacity = grown;
  return {};
}

}  // namespace

// gpu::CommandName names response types too; an undefined one is shown as its number.
std::string ResponseName(uint32_t type) {
  const std::string name = gpu::CommandName(type);
  if (name != "UNKNOWN") return name;
  char text[16];
  std::snprintf(text, sizeof(text), "0x%x", type);
  return text;
}

Result<std::unique_ptr<GuestGpu>> GuestGpu::Create(test::Session& session) {
  std::unique_ptr<GuestGpu> gpu(new GuestGpu(session));
  for (Queue queue : {Queue::kControl, Queue::kCursor}) {
    QueueState& state = gpu->state(queue);
    state.queue =
        queue == Queue::kControl ? session.control_queue.get() : session.cursor_queue.get();
    state.slots.resize(state.queue->size());
    state.slot_of_head.assign(state.queue->size(), -1);
    state.notified_index = state.queue->available_index();
    for (Slot& slot : state.slots) {
      Result<uint64_t> request = session.ram->Allocate(kRequestBufferSize, 64);
      Result<uint64_t> response = session.ram->Allocate(kResponseBufferSize, 64);
      if (!request) return ErrorOf(request);
      if (!response) return ErrorOf(response);
      slot.request_address = *request;
      slot.response_address = *response;
    }
  }
  return gpu;
}

size_t GuestGpu::in_flight(Queue queue) const {
  return queue == Queue::kControl ? control_.in_flight : cursor_.in_flight;
}

int GuestGpu::FreeSlot(Queue queue) {
  QueueState& state = this->state(queue);
  for (size_t index = 0; index < state.slots.size(); ++index) {
    if (!state.slots[index].busy) return static_cast<int>(index);
  }
  return -1;
}

void GuestGpu::PrepareHeader(uint8_t* bytes, bool fence, Slot& description) {
  gpu::CtrlHdr header;
  std::memcpy(&header, bytes, sizeof(header));
  if (fence) {
    header.flags |= gpu::kFlagFence;
    header.fence_id = next_fence_id_++;
    std::memcpy(bytes, &header, sizeof(header));
  }
  description.fenced = fence;
  description.fence_id = header.fence_id;
  description.command = header.type;
}

Result<uint16_t> GuestGpu::Submit(Queue queue, std::span<const uint8_t> request, bool fence) {
  if (request.size() < sizeof(gpu::CtrlHdr) || request.size() > kRequestBufferSize) {
    return MakeError(ErrorKind::kInvalidArgument, "request size out of range");
  }
  const int free_slot = FreeSlot(queue);
  if (free_slot < 0) return MakeError(ErrorKind::kResourceExhausted, "all buffers in flight");
  Slot& slot = state(queue).slots[static_cast<size_t>(free_slot)];
  Result<uint8_t*> bytes = session_.ram->HostPointer(slot.request_address, request.size());
  if (!bytes) return ErrorOf(bytes);
  std::memcpy(*bytes, request.data(), request.size());
  Slot description = slot;
  description.large = false;
  description.answer_address = slot.response_address;
  description.answer_capacity = kResponseBufferSize;
  PrepareHeader(*bytes, fence, description);
  return SubmitAt(queue, slot.request_address, static_cast<uint32_t>(request.size()), free_slot,
                  description);
}

Result<uint16_t> GuestGpu::SubmitLarge(std::span<const uint8_t> request, bool fence,
                                       uint32_t response_capacity) {
  if (request.size() < sizeof(gpu::CtrlHdr) || request.size() > UINT32_MAX) {
    return MakeError(ErrorKind::kInvalidArgument, "request size out of range");
  }
  if (large_request_busy_) {
    return MakeError(ErrorKind::kResourceExhausted, "a large request is already in flight");
  }
  const int free_slot = FreeSlot(Queue::kControl);
  if (free_slot < 0) return MakeError(ErrorKind::kResourceExhausted, "all buffers in flight");
  const auto length = static_cast<uint32_t>(request.size());
  if (Result<void> grown =
          GrowBuffer(*session_.ram, length, large_request_address_, large_request_capacity_);
      !grown) {
    return ErrorOf(grown);
  }
  Result<uint8_t*> bytes = session_.ram->HostPointer(large_request_address_, length);
  if (!bytes) return ErrorOf(bytes);
  std::memcpy(*bytes, request.data(), length);
  Slot description = control_.slots[static_cast<size_t>(free_slot)];
  description.large = true;
  description.answer_address = description.response_address;
  description.answer_capacity = kResponseBufferSize;
  if (response_capacity > kResponseBufferSize) {
    if (Result<void> grown = GrowBuffer(*session_.ram, response_capacity, large_response_address_,
                                        large_response_capacity_);
        !grown) {
      return ErrorOf(grown);
    }
    description.answer_address = large_response_address_;
    description.answer_capacity = large_response_capacity_;
  }
  PrepareHeader(*bytes, fence, description);
  Result<uint16_t> head =
      SubmitAt(Queue::kControl, large_request_address_, length, free_slot, description);
  if (head) large_request_busy_ = true;
  return head;
}

Result<uint16_t> GuestGpu::SubmitAt(Queue queue, uint64_t request_address, uint32_t request_length,
                                    int slot_index, const Slot& description) {
  QueueState& state = this->state(queue);
  Slot& slot = state.slots[static_cast<size_t>(slot_index)];
  Result<uint16_t> head =
      queue == Queue::kControl
          ? state.queue->AddChain({{request_address, request_length}},
                                  {{description.answer_address, description.answer_capacity}},
                                  test::ChainLayout::kIndirect)
          : state.queue->AddChain({{request_address, request_length}}, {});
  if (!head) return ErrorOf(head);
  slot = description;
  slot.busy = true;
  state.slot_of_head[*head] = slot_index;
  ++state.in_flight;
  return *head;
}

void GuestGpu::Notify(Queue queue) {
  QueueState& state = this->state(queue);
  state.queue->KickIfNeeded(state.notified_index);
  state.notified_index = state.queue->available_index();
}

Result<Completion> GuestGpu::WaitForCompletion(Queue queue, std::chrono::milliseconds timeout) {
  QueueState& state = this->state(queue);
  std::optional<test::UsedElement> used = state.queue->PollUsed();
  if (!used) used = state.queue->WaitForUsed(timeout);
  if (!used) {
    return MakeError(ErrorKind::kTimedOut, "no used buffer within " +
                                               std::to_string(timeout.count()) + " ms (" +
                                               std::to_string(state.in_flight) + " in flight)");
  }
  if (used->id >= state.slot_of_head.size() || state.slot_of_head[used->id] < 0) {
    return MakeError(ErrorKind::kMalformed,
                     "device used descriptor " + std::to_string(used->id) + " it was not given");
  }
  Slot& slot = state.slots[static_cast<size_t>(state.slot_of_head[used->id])];
  state.slot_of_head[used->id] = -1;
  slot.busy = false;
  if (slot.large) large_request_busy_ = false;
  --state.in_flight;
  Completion completion{static_cast<uint16_t>(used->id), gpu::ResponseType::kOkNodata,
                        slot.answer_address, used->length};
  if (queue == Queue::kCursor) return completion;

  Result<gpu::CtrlHdr> response = session_.ram->ReadObject<gpu::CtrlHdr>(slot.answer_address);
  if (!response) return ErrorOf(response);
  const std::string command = gpu::CommandName(slot.command);
  if (used->length < sizeof(gpu::CtrlHdr)) {
    return MakeError(ErrorKind::kMalformed, command + ": used length " +
                                                std::to_string(used->length) +
                                                " is shorter than a response header");
  }
  completion.response = static_cast<gpu::ResponseType>(response->type);
  if (response->type < static_cast<uint32_t>(gpu::ResponseType::kOkNodata) ||
      response->type >= static_cast<uint32_t>(gpu::ResponseType::kErrUnspec)) {
    return MakeError(ErrorKind::kInvalidArgument,
                     command + " answered " + ResponseName(response->type));
  }
  if (slot.fenced &&
      ((response->flags & gpu::kFlagFence) == 0 || response->fence_id != slot.fence_id)) {
    return MakeError(ErrorKind::kMalformed,
                     command + ": the response does not echo the fence (§5.7.6.7)");
  }
  return completion;
}

Result<void> GuestGpu::Run(std::span<const uint8_t> request, bool fence) {
  Result<uint16_t> head = Submit(Queue::kControl, request, fence);
  if (!head) return ErrorOf(head);
  Notify(Queue::kControl);
  constexpr std::chrono::milliseconds kTimeout{5000};
  for (;;) {
    Result<Completion> done = WaitForCompletion(Queue::kControl, kTimeout);
    if (!done) return ErrorOf(done);
    if (done->head == *head) return {};
  }
}

Result<void> GuestGpu::AttachBacking(uint32_t resource_id,
                                     const std::vector<gpu::MemEntry>& entries) {
  gpu::ResourceAttachBacking attach{};
  attach.hdr = Header(gpu::CommandType::kResourceAttachBacking);
  attach.resource_id = resource_id;
  attach.nr_entries = static_cast<uint32_t>(entries.size());
  // Linux sends the table as a second readable buffer; one buffer with both is equivalent on
  // the wire (§2.7.4: the device must not depend on buffer boundaries).
  std::vector<uint8_t> request(sizeof(attach) + entries.size() * sizeof(gpu::MemEntry));
  std::memcpy(request.data(), &attach, sizeof(attach));
  std::memcpy(request.data() + sizeof(attach), entries.data(),
              entries.size() * sizeof(gpu::MemEntry));
  Result<Completion> done = RunLarge(request, /*fence=*/false);
  if (!done) return ErrorOf(done);
  return {};
}

Result<Completion> GuestGpu::RunLarge(std::span<const uint8_t> request, bool fence,
                                      uint32_t response_capacity) {
  Result<uint16_t> head = SubmitLarge(request, fence, response_capacity);
  if (!head) return ErrorOf(head);
  Notify(Queue::kControl);
  for (;;) {
    Result<Completion> done = WaitForCompletion(Queue::kControl, std::chrono::seconds(5));
    if (!done) return ErrorOf(done);
    if (done->head == *head) return done;
  }
}

gpu::ResourceCreate2d CreateResource2d(uint32_t id, gpu::Format format, uint32_t width,
                                       uint32_t height) {
  gpu::ResourceCreate2d create{};
  create.hdr = Header(gpu::CommandType::kResourceCreate2d);
  create.resource_id = id;
  create.format = static_cast<uint32_t>(format);
  create.width = width;
  create.height = height;
  return create;
}

gpu::ResourceUnref ResourceUnref(uint32_t id) {
  gpu::ResourceUnref unref{};
  unref.hdr = Header(gpu::CommandType::kResourceUnref);
  unref.resource_id = id;
  return unref;
}

gpu::SetScanout SetScanout(uint32_t scanout_id, uint32_t resource_id, gpu::Rect rect) {
  gpu::SetScanout set{};
  set.hdr = Header(gpu::CommandType::kSetScanout);
  set.r = rect;
  set.scanout_id = scanout_id;
  set.resource_id = resource_id;
  return set;
}

gpu::TransferToHost2d TransferToHost2d(uint32_t resource_id, gpu::Rect rect, uint32_t stride) {
  gpu::TransferToHost2d transfer{};
  transfer.hdr = Header(gpu::CommandType::kTransferToHost2d);
  transfer.r = rect;
  transfer.offset = uint64_t{rect.y} * stride + uint64_t{rect.x} * 4;
  transfer.resource_id = resource_id;
  return transfer;
}

gpu::ResourceFlush ResourceFlush(uint32_t resource_id, gpu::Rect rect) {
  gpu::ResourceFlush flush{};
  flush.hdr = Header(gpu::CommandType::kResourceFlush);
  flush.r = rect;
  flush.resource_id = resource_id;
  return flush;
}

gpu::UpdateCursor UpdateCursor(uint32_t resource_id, uint32_t x, uint32_t y) {
  gpu::UpdateCursor update{};
  update.hdr = Header(gpu::CommandType::kUpdateCursor);
  update.pos.x = x;
  update.pos.y = y;
  update.resource_id = resource_id;
  return update;
}

gpu::UpdateCursor MoveCursor(uint32_t resource_id, uint32_t x, uint32_t y) {
  gpu::UpdateCursor move = UpdateCursor(resource_id, x, y);
  move.hdr.type = static_cast<uint32_t>(gpu::CommandType::kMoveCursor);
  return move;
}

}  // namespace vgpu::bench
