#include "vhost_user/device_thread.h"

#include "base/log.h"

namespace vgpu::vhost_user {

DeviceThread::DeviceThread(virtio::Device& device)
    : device_(device), queues_(device.QueueCount()) {}

DeviceThread::~DeviceThread() {
  if (thread_.joinable()) {
    loop_.RunSync([this] {
      for (uint32_t index = 0; index < queues_.size(); ++index) StopQueueOnThread(index);
      device_.Reset();
      device_.Shutdown();
    });
    loop_.Quit();
    thread_.join();
  }
}

Result<void> DeviceThread::Start() {
  Result<void> initialised = loop_.Init();
  if (!initialised) return initialised;
  thread_ = std::thread([this] { loop_.Run(); });
  Result<void> attached;
  loop_.RunSync([&] { attached = device_.SetEventLoop(loop_); });
  return attached;
}

void DeviceThread::Activate(uint64_t acked_features) {
  loop_.RunSync([&] { device_.Activate(acked_features); });
}

Result<void> DeviceThread::StartQueue(uint32_t queue_index,
                                      std::unique_ptr<virtio::SplitVirtqueue> queue,
                                      UniqueFd kick_fd, bool enabled) {
  Result<void> result;
  loop_.RunSync([&] {
    StopQueueOnThread(queue_index);
    QueueState& state = queues_[queue_index];
    state.queue = std::move(queue);
    state.enabled = enabled;
    state.kick_fd = std::move(kick_fd);
    if (state.kick_fd.valid()) {
      Result<WatchId> watch = loop_.Watch(state.kick_fd.get(), EPOLLIN,
                                          [this, queue_index](uint32_t) { OnKick(queue_index); });
      if (!watch) {
        result = tl::unexpected(watch.error());
        state = QueueState{};
        return;
      }
      state.kick_watch = *watch;
    }
    device_.QueueStarted(queue_index, state.queue.get());
    // The driver may have queued work before the ring started: look at it now.
    if (state.enabled) device_.QueueNotified(queue_index);
  });
  return result;
}

void DeviceThread::OnKick(uint32_t queue_index) {
  QueueState& state = queues_[queue_index];
  uint64_t value = 0;
  // Drain the eventfd; its count does not matter, only that the driver kicked.
  ssize_t ignored = read(state.kick_fd.get(), &value, sizeof(value));
  (void)ignored;
  if (state.queue && state.enabled) device_.QueueNotified(queue_index);
}

void DeviceThread::StopQueueOnThread(uint32_t queue_index) {
  QueueState& state = queues_[queue_index];
  if (!state.queue) return;
  device_.QueueStopping(queue_index);
  if (state.kick_watch != 0) loop_.Unwatch(state.kick_watch);
  state = QueueState{};
}

std::optional<uint16_t> DeviceThread::StopQueue(uint32_t queue_index) {
  std::optional<uint16_t> next_available;
  loop_.RunSync([&] {
    QueueState& state = queues_[queue_index];
    if (!state.queue) return;
    device_.QueueStopping(queue_index);
    next_available = state.queue->next_available_index();
    if (state.kick_watch != 0) loop_.Unwatch(state.kick_watch);
    state = QueueState{};
  });
  return next_available;
}

void DeviceThread::SetQueueEnabled(uint32_t queue_index, bool enabled) {
  loop_.RunSync([&] {
    QueueState& state = queues_[queue_index];
    const bool was_enabled = state.enabled;
    state.enabled = enabled;
    if (state.queue && enabled && !was_enabled) device_.QueueNotified(queue_index);
  });
}

void DeviceThread::SetCallFd(uint32_t queue_index, UniqueFd call_fd) {
  loop_.RunSync([&] {
    QueueState& state = queues_[queue_index];
    if (state.queue) state.queue->set_call_fd(std::move(call_fd));
  });
}

void DeviceThread::ReplaceMemory(const std::shared_ptr<const virtio::GuestMemory>& memory) {
  loop_.RunSync([&] {
    for (uint32_t index = 0; index < queues_.size(); ++index) {
      QueueState& state = queues_[index];
      if (!state.queue) continue;
      Result<void> replaced = state.queue->ReplaceMemory(memory);
      if (!replaced) {
        LogWarning("queue %u: %s after a memory table change; stopping it", index,
                   replaced.error().message.c_str());
        StopQueueOnThread(index);
      }
    }
  });
}

void DeviceThread::ResetDevice() {
  loop_.RunSync([&] {
    for (uint32_t index = 0; index < queues_.size(); ++index) StopQueueOnThread(index);
    device_.Reset();
  });
}

}  // namespace vgpu::vhost_user
