#include "vhost_user/device_thread.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <memory>
#include <mutex>

#include "base/event_fd.h"
#include "base/log.h"

namespace vgpu::vhost_user {

DeviceThread::DeviceThread(virtio::Device& device)
    : device_(device), queues_(device.QueueCount()) {}

DeviceThread::~DeviceThread() {
  if (abandoned_) return;
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

Result<void> DeviceThread::Start(std::chrono::milliseconds timeout, int cancel_fd) {
  Result<void> initialised = loop_.Init();
  if (!initialised) return initialised;
  // Shared with the task: on a timeout the task may still finish, long after this returned.
  struct Attach {
    EventFd done;
    std::mutex mutex;  // The eventfd wakes the waiter; the mutex orders the result's bytes.
    Result<void> result;
  };
  Result<EventFd> done = EventFd::Create();
  if (!done) return ErrorOf(done);
  auto attach = std::make_shared<Attach>();
  attach->done = std::move(*done);
  thread_ = std::thread([this] { loop_.Run(); });
  loop_.Post([this, attach] {
    Result<void> result = device_.SetEventLoop(loop_);
    {
      std::lock_guard lock(attach->mutex);
      attach->result = std::move(result);
    }
    attach->done.Signal();
  });

  pollfd fds[2] = {{attach->done.fd(), POLLIN, 0}, {cancel_fd, POLLIN, 0}};
  // Unbounded by default: no deadline is computed then (now + max() would overflow).
  const bool bounded = timeout != std::chrono::milliseconds::max();
  const auto deadline = bounded ? std::chrono::steady_clock::now() + timeout
                                : std::chrono::steady_clock::time_point::max();
  while (true) {
    int wait_ms = -1;
    if (bounded) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT32_MAX));
    }
    const int ready = poll(fds, cancel_fd >= 0 ? 2 : 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return MakeSystemError("poll");
    if ((fds[0].revents & POLLIN) != 0) {
      std::lock_guard lock(attach->mutex);
      return attach->result;
    }
    if (cancel_fd >= 0 && (fds[1].revents & POLLIN) != 0) {
      abandoned_ = true;
      thread_.detach();
      return MakeError(ErrorKind::kCancelled, "cancelled while the device was starting");
    }
    if (ready == 0) {
      abandoned_ = true;
      thread_.detach();
      return MakeError(ErrorKind::kTimedOut,
                       "not started within " + std::to_string(timeout.count()) + " ms");
    }
  }
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
        result = ErrorOf(watch);
        state = QueueState{};
        return;
      }
      state.kick_watch = *watch;
    }
    device_.QueueStarted(queue_index, state.queue.get(), state.enabled);
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
    if (!state.queue || enabled == was_enabled) return;
    device_.QueueEnabled(queue_index, enabled);
    if (enabled) device_.QueueNotified(queue_index);
  });
}

void DeviceThread::SetCallFd(uint32_t queue_index, UniqueFd call_fd) {
  loop_.RunSync([&] {
    QueueState& state = queues_[queue_index];
    if (state.queue) state.queue->set_call_fd(std::move(call_fd));
  });
}

std::vector<uint32_t> DeviceThread::ReplaceMemory(
    const std::shared_ptr<const virtio::GuestMemory>& memory) {
  std::vector<uint32_t> stopped;
  loop_.RunSync([&] {
    for (uint32_t index = 0; index < queues_.size(); ++index) {
      QueueState& state = queues_[index];
      if (!state.queue) continue;
      std::shared_ptr<const virtio::GuestMemory> previous = state.queue->memory();
      Result<void> replaced = state.queue->ReplaceMemory(memory);
      if (replaced) {
        device_.QueueMemoryReplaced(index, std::move(previous));
      } else {
        LogWarning("queue %u: %s after a memory table change; stopping it", index,
                   replaced.error().message.c_str());
        StopQueueOnThread(index);
        stopped.push_back(index);
      }
    }
  });
  return stopped;
}

void DeviceThread::ResetDevice() {
  loop_.RunSync([&] {
    for (uint32_t index = 0; index < queues_.size(); ++index) StopQueueOnThread(index);
    device_.Reset();
  });
}

}  // namespace vgpu::vhost_user
