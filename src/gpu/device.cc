#include "gpu/device.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "virtio/ring_record.h"

namespace vgpu::gpu {

GpuDevice::GpuDevice(const GpuDeviceConfig& config) : config_(config) {}

GpuDevice::~GpuDevice() = default;

uint64_t GpuDevice::DeviceFeatures() const {
  uint64_t features = 1ull << kFeatureResourceUuid;
  if (!config_.headless) features |= 1ull << kFeatureEdid;
  if (config_.renderer_factory) {
    features |= 1ull << kFeatureVirgl;
    if (config_.context_init) features |= 1ull << kFeatureContextInit;
  }
  return features;
}

uint32_t GpuDevice::ConfigSize() const { return sizeof(Config); }

void GpuDevice::ReadConfig(uint32_t offset, std::span<uint8_t> destination) const {
  Config config{};
  uint32_t num_capsets;
  {
    std::lock_guard lock(config_mutex_);
    config.events_read = events_read_;
    num_capsets = num_capsets_;
  }
  // QEMU replaces num_scanouts with its max_outputs (reference §1.6); 16 is what we can serve.
  config.num_scanouts = kMaxScanouts;
  config.num_capsets = num_capsets;
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

Result<void> GpuDevice::SetEventLoop(EventLoop& loop) {
  loop_ = &loop;
  display_ = std::make_unique<DisplayChannel>(loop);
  if (config_.renderer_factory) {
    Result<std::unique_ptr<renderer::Renderer>> renderer = config_.renderer_factory();
    if (!renderer) return tl::unexpected(renderer.error());
    renderer_ = std::move(*renderer);
    renderer_->SetFenceHandler(
        [this](const renderer::FenceSignal& fence) { processor_->OnFenceSignalled(fence); });
    if (renderer_->PollFd() >= 0) {
      Result<WatchId> watch =
          loop.Watch(renderer_->PollFd(), EPOLLIN, [this](uint32_t) { OnRendererReadable(); });
      if (!watch) return tl::unexpected(watch.error());
      renderer_watch_ = *watch;
    }
    {
      std::lock_guard lock(config_mutex_);
      num_capsets_ = renderer_->CapsetCount();
    }
    LogInfo("%s renderer ready: %u capsets", renderer_->name(), renderer_->CapsetCount());
  }
  processor_ = std::make_unique<CommandProcessor>(
      CommandProcessorConfig{config_.max_host_memory, !config_.headless},
      config_.headless ? nullptr : display_.get(), renderer_.get());
  return {};
}

void GpuDevice::OnRendererReadable() {
  renderer_->Poll();  // Fence callbacks complete held commands through CompleteInFlight.
  if (queues_[kControlQueue] != nullptr) queues_[kControlQueue]->NotifyIfNeeded();
}

void GpuDevice::Activate(uint64_t acked_features) {
  processor_->set_acked_features(acked_features);
}

void GpuDevice::QueueStarted(uint32_t queue_index, virtio::SplitVirtqueue* queue) {
  queues_[queue_index] = queue;
}

void GpuDevice::ReturnInFlightUnanswered() {
  virtio::SplitVirtqueue* queue = queues_[kControlQueue];
  if (queue != nullptr) {
    for (const InFlightCommand& command : in_flight_) queue->PushUsed(command.head, 0);
    queue->NotifyIfNeeded();
  }
  in_flight_.clear();
  blocking_token_.reset();
  if (processor_) processor_->DropHeldCommands();
}

void GpuDevice::QueueStopping(uint32_t queue_index) {
  if (queue_index == kControlQueue) {
    // Finished fences are answered; what the VMM or the renderer still owes goes back
    // unanswered, so that the ring stops with nothing in flight (vhost-user GET_VRING_BASE).
    if (renderer_) OnRendererReadable();
    ReturnInFlightUnanswered();
  }
  queues_[queue_index] = nullptr;
}

void GpuDevice::Reset() {
  if (processor_ && processor_->statistics().commands > 0) {
    const CommandStatistics& totals = processor_->statistics();
    LogInfo(
        "totals so far: %llu control commands (%llu rejected), %llu cursor commands, "
        "%llu display updates sent",
        static_cast<unsigned long long>(totals.commands),
        static_cast<unsigned long long>(totals.errors),
        static_cast<unsigned long long>(totals.cursor_commands),
        static_cast<unsigned long long>(totals.display_updates));
  }
  in_flight_.clear();
  blocking_token_.reset();
  queues_ = {};
  if (processor_) processor_->Reset();
  if (display_) display_->Detach();
  headless_socket_.reset();
}

void GpuDevice::Shutdown() {
  // The processor refers to the renderer; both go here, on the thread that owns the renderer's
  // GL contexts (virgl_renderer_cleanup from another thread aborts in libepoxy).
  processor_.reset();
  if (renderer_watch_) loop_->Unwatch(*renderer_watch_);
  renderer_watch_.reset();
  renderer_.reset();
  display_.reset();
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
  if (ring_recorder_.enabled()) RecordRing(queue_index);
  if (queue_index == kControlQueue) {
    ProcessControlQueue();
  } else {
    ProcessCursorQueue();
  }
}

std::vector<GpuDevice::InFlightCommand>::iterator GpuDevice::FindInFlight(uint64_t token) {
  // Tokens only grow, so the list is sorted; the one asked for is nearly always the last.
  auto it = std::lower_bound(
      in_flight_.begin(), in_flight_.end(), token,
      [](const InFlightCommand& command, uint64_t value) { return command.token < value; });
  return it != in_flight_.end() && it->token == token ? it : in_flight_.end();
}

void GpuDevice::CompleteInFlight(uint64_t token, uint32_t used_length) {
  // An unknown token: the queue stopped or the device reset while the answer was coming.
  auto it = FindInFlight(token);
  if (it == in_flight_.end()) return;
  const uint16_t head = it->head;
  in_flight_.erase(it);
  virtio::SplitVirtqueue* queue = queues_[kControlQueue];
  if (queue != nullptr) queue->PushUsed(head, used_length);
  if (blocking_token_ == token) {
    blocking_token_.reset();
    if (queue != nullptr) queue->NotifyIfNeeded();
    // Resume the commands queued behind it, from the loop rather than from inside this callback.
    loop_->Post([this] { ProcessControlQueue(); });
  }
}

void GpuDevice::RecordRing(uint32_t queue_index) {
  const virtio::SplitVirtqueue* queue = queues_[queue_index];
  if (queue == nullptr || recorded_kicks_[queue_index] >= kMaxRecordedKicks) return;
  std::vector<uint8_t> record = virtio::EncodeRingRecord(*queue, queue_index);
  if (record.empty()) return;
  ring_recorder_.RecordBytes(record);
  ++recorded_kicks_[queue_index];
}

void GpuDevice::ProcessControlQueue() {
  virtio::SplitVirtqueue* queue = queues_[kControlQueue];
  if (queue == nullptr) return;
  uint32_t handled = 0;
  do {
    while (!blocking_token_) {
      if (handled == kControlBatch) {
        // A guest that keeps the queue full would otherwise hold the device thread here for
        // ever: the cursor queue, the renderer's fences and the display's replies wait behind
        // it. Yield to the loop (its wake-up fd is polled with theirs) and come back.
        queue->NotifyIfNeeded();
        loop_->Post([this] { ProcessControlQueue(); });
        return;
      }
      std::optional<virtio::PoppedChain> popped = queue->Pop();
      if (!popped) break;
      ++handled;
      if (!popped->chain) {
        LogWarning("control queue: %s", popped->chain.error().message.c_str());
        queue->PushUsed(popped->head_index, 0);
        continue;
      }
      // In flight before the call, so that an answer that comes at once finds it.
      const uint64_t token = next_token_++;
      in_flight_.push_back(InFlightCommand{token, popped->head_index});
      ControlOutcome outcome = processor_->HandleControl(
          *popped->chain,
          [this, token](uint32_t used_length) { CompleteInFlight(token, used_length); });
      switch (outcome.state) {
        case ControlOutcome::State::kDone:
          if (auto it = FindInFlight(token); it != in_flight_.end()) in_flight_.erase(it);
          queue->PushUsed(popped->head_index, outcome.used_length);
          break;
        case ControlOutcome::State::kWaitingForVmm:
          if (FindInFlight(token) != in_flight_.end()) blocking_token_ = token;
          break;
        case ControlOutcome::State::kWaitingForFence:
          break;
      }
    }
    queue->NotifyIfNeeded();
  } while (!blocking_token_ && queue->EnableKickAndRecheck());
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
