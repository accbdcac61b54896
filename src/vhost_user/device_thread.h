// DeviceThread: the thread that runs the device (docs/ARCHITECTURE.md, "Threads").
//
// It owns an EventLoop with the queues' kick fds, the device's own fds, and the started queues.
// The control thread hands it ring and memory (re)configuration through the methods below; each
// runs on the device thread and returns when done, which is the only hand-over between the two
// threads. Nothing here ever waits for the control thread, so the two cannot deadlock.
//
//   DeviceThread device_thread(device);
//   device_thread.Start();
//   device_thread.StartQueue(0, std::move(queue), std::move(kick_fd), /*enabled=*/true);
//   std::optional<uint16_t> next = device_thread.StopQueue(0);
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "base/event_loop.h"
#include "base/unique_fd.h"
#include "virtio/device.h"
#include "virtio/split_virtqueue.h"

namespace vgpu::vhost_user {

class DeviceThread {
 public:
  explicit DeviceThread(virtio::Device& device);
  ~DeviceThread();
  DeviceThread(const DeviceThread&) = delete;
  DeviceThread& operator=(const DeviceThread&) = delete;

  // Starts the thread and attaches the device to it; the device's renderer starts there.
  // Returns when that is done, or fails with kTimedOut after `timeout`, or with kCancelled when
  // `cancel_fd` (if not -1) becomes readable first, e.g. a signalfd of SIGTERM. After either
  // failure the thread is abandoned, still blocked in what did not return (a renderer library
  // that waits forever), and the caller must end the process with _exit: nothing can stop it.
  Result<void> Start(std::chrono::milliseconds timeout = std::chrono::milliseconds::max(),
                     int cancel_fd = -1);

  void Activate(uint64_t acked_features);
  Result<void> StartQueue(uint32_t queue_index, std::unique_ptr<virtio::SplitVirtqueue> queue,
                          UniqueFd kick_fd, bool enabled);
  // Stops a started queue after the device finished what it held; returns the next available
  // index, or nullopt if the queue was not started.
  std::optional<uint16_t> StopQueue(uint32_t queue_index);
  void SetQueueEnabled(uint32_t queue_index, bool enabled);
  void SetCallFd(uint32_t queue_index, UniqueFd call_fd);
  // Points started queues at a new memory table. A queue whose rings are no longer mapped stops.
  // Returns the queues that stopped because their rings are no longer in `memory`.
  std::vector<uint32_t> ReplaceMemory(const std::shared_ptr<const virtio::GuestMemory>& memory);
  // Stops every queue and resets the device.
  void ResetDevice();
  // Runs `task` on the device thread and waits for it.
  void RunSync(const std::function<void()>& task) { loop_.RunSync(task); }

 private:
  struct QueueState {
    std::unique_ptr<virtio::SplitVirtqueue> queue;
    UniqueFd kick_fd;
    WatchId kick_watch = 0;
    bool enabled = false;
  };
  void OnKick(uint32_t queue_index);
  void StopQueueOnThread(uint32_t queue_index);

  virtio::Device& device_;
  EventLoop loop_;
  std::thread thread_;
  bool abandoned_ = false;  // Start() gave up on the thread: the destructor leaves it alone.
  std::vector<QueueState> queues_;  // Device thread only.
};

}  // namespace vgpu::vhost_user
