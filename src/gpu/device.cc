#include "gpu/device.h"

#include <cstddef>
#include <cstring>

#include "base/log.h"

namespace vgpu::gpu {

GpuDevice::GpuDevice(const GpuDeviceConfig& config) : config_(config) {}

GpuDevice::~GpuDevice() = default;

uint64_t GpuDevice::DeviceFeatures() const {
  uint64_t features = 1ull << kFeatureResourceUuid;
  if (!config_.headless) features |= 1ull << kFeatureEdid;
  return features;
}

uint32_t GpuDevice::ConfigSize() const { return sizeof(Config); }

void GpuDevice::ReadConfig(uint32_t offset, std::span<uint8_t> destination) const {
  Config config{};
  {
    std::lock_guard lock(config_mutex_);
    config.events_read = events_read_;
  }
  // QEMU replaces num_scanouts with its max_outputs (reference §1.6); 16 is what we can serve.
  config.num_scanouts = kMaxScanouts;
  config.num_capsets = config_.num_capsets;
  // Bounds: the vhost-user layer checked offset + size <= ConfigSize().
  std::memcpy(destination.data(), reinterpret_cast<const uint8_t*>(&config) + offset,
              destination.size());
}

void GpuDevice::WriteConfig(uint32_t offset, std::span<const uint8_t> source) {
  // Only events_clear is writable (§5.7.4): each 1 bit clears that bit of events_read.
  Config written{};
  std::memcpy(reinterpret_cast<uint8_t*>(&written) + offset, source.data(), source.size());
  const size_t clear_offset = offsetof(Config, events_clear);
  if (offset <= clear_offset && offset + source.size() >= clear_offset + sizeof(uint32_t)) {
    std::lock_guard lock(config_mutex_);
    events_read_ &= ~written.events_clear;
  }
}

void GpuDevice::SetEventLoop(EventLoop& loop) {
  loop_ = &loop;
  display_ = std::make_unique<DisplayChannel>(loop);
  processor_ = std::make_unique<CommandProcessor>(
      CommandProcessorConfig{config_.max_host_memory, !config_.headless},
      config_.headless ? nullptr : display_.get());
}

void GpuDevice::Activate(uint64_t acked_features) {
  processor_->set_acked_features(acked_features);
}

void GpuDevice::QueueStarted(uint32_t queue_index, virtio::SplitVirtqueue* queue) {
  queues_[queue_index] = queue;
}

void GpuDevice::QueueStopping(uint32_t queue_index) {
  virtio::SplitVirtqueue* queue = queues_[queue_index];
  if (queue_index == kControlQueue && pending_ && queue != nullptr) {
    // The VMM's answer will not come in time: hand the chain back unanswered, so that the ring
    // stops with nothing in flight (vhost-user GET_VRING_BASE).
    queue->PushUsed(pending_->head_index, 0);
    queue->NotifyIfNeeded();
    pending_.reset();
  }
  queues_[queue_index] = nullptr;
}

void GpuDevice::Reset() {
  if (processor_ && processor_->statistics().commands > 0) {
    const CommandStatistics& totals = processor_->statistics();
    LogInfo("totals so far: %llu control commands (%llu rejected), %llu cursor commands, "
            "%llu display updates sent",
            static_cast<unsigned long long>(totals.commands),
            static_cast<unsigned long long>(totals.errors),
            static_cast<unsigned long long>(totals.cursor_commands),
            static_cast<unsigned long long>(totals.display_updates));
  }
  pending_.reset();
  queues_ = {};
  if (processor_) processor_->Reset();
  if (display_) display_->Detach();
  headless_socket_.reset();
}

void GpuDevice::SetDisplaySocket(UniqueFd socket) {
  if (config_.headless) {
    // Kept open but never written: closing it would look like a broken backend to QEMU.
    LogInfo("headless: holding the VMM's display socket without sending display output");
    headless_socket_ = std::move(socket);
    return;
  }
  if (display_) display_->Attach(std::move(socket));
}

void GpuDevice::QueueNotified(uint32_t queue_index) {
  if (queue_index == kControlQueue) {
    ProcessControlQueue();
  } else {
    ProcessCursorQueue();
  }
}

void GpuDevice::CompletePending(uint64_t token, uint32_t used_length) {
  // A stale token: the queue stopped or the device reset while the VMM was thinking.
  if (!pending_ || pending_->token != token) return;
  const uint16_t head = pending_->head_index;
  pending_.reset();
  virtio::SplitVirtqueue* queue = queues_[kControlQueue];
  if (queue == nullptr) return;
  queue->PushUsed(head, used_length);
  queue->NotifyIfNeeded();
  // Resume the commands queued behind it, from the loop rather than from inside this callback.
  loop_->Post([this] { ProcessControlQueue(); });
}

void GpuDevice::ProcessControlQueue() {
  virtio::SplitVirtqueue* queue = queues_[kControlQueue];
  if (queue == nullptr) return;
  do {
    while (!pending_) {
      std::optional<virtio::PoppedChain> popped = queue->Pop();
      if (!popped) break;
      if (!popped->chain) {
        LogWarning("control queue: %s", popped->chain.error().message.c_str());
        queue->PushUsed(popped->head_index, 0);
        continue;
      }
      // Marked pending before the call, so a completion that arrives at once finds it.
      const uint64_t token = next_token_++;
      pending_ = PendingCommand{token, popped->head_index};
      std::optional<uint32_t> used = processor_->HandleControl(
          *popped->chain,
          [this, token](uint32_t used_length) { CompletePending(token, used_length); });
      if (used) {
        pending_.reset();
        queue->PushUsed(popped->head_index, *used);
      }
    }
    queue->NotifyIfNeeded();
  } while (!pending_ && queue->EnableKickAndRecheck());
}

void GpuDevice::ProcessCursorQueue() {
  virtio::SplitVirtqueue* queue = queues_[kCursorQueue];
  if (queue == nullptr) return;
  do {
    while (std::optional<virtio::PoppedChain> popped = queue->Pop()) {
      if (popped->chain) {
        processor_->HandleCursor(*popped->chain);
      } else {
        LogWarning("cursor queue: %s", popped->chain.error().message.c_str());
      }
      // Like QEMU, cursor commands are returned with nothing written.
      queue->PushUsed(popped->head_index, 0);
    }
    queue->NotifyIfNeeded();
  } while (queue->EnableKickAndRecheck());
}

}  // namespace vgpu::gpu
