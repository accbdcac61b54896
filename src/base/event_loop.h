// EventLoop: an epoll loop owned by one thread, with tasks that other threads can post to it.
//
//   EventLoop loop;                                   // Result-checked via loop.Init().
//   WatchId id = loop.Watch(fd, EPOLLIN, [&](uint32_t events) { ... });
//   loop.Post([&] { ... });                           // From any thread.
//   loop.RunSync([&] { ... });                        // From another thread; waits for it to run.
//   loop.Run();                                       // Until Quit().
//
// Callbacks run on the loop's thread. A callback may Watch/Unwatch (itself included).
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "base/event_fd.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vgpu {

using WatchId = uint64_t;

class EventLoop {
 public:
  using FdCallback = std::function<void(uint32_t events)>;
  using Task = std::function<void()>;

  EventLoop() = default;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  Result<void> Init();

  // Starts watching `fd` (which the caller keeps open until Unwatch) for `events`.
  Result<WatchId> Watch(int fd, uint32_t events, FdCallback callback);
  void Unwatch(WatchId id);

  // Queues `task` to run on the loop's thread. Thread-safe.
  void Post(Task task);
  // Runs `task` on the loop's thread and waits for it. Runs it inline when called on that thread.
  void RunSync(const Task& task);

  // Runs until Quit(). Returns at once if the loop was already told to quit.
  void Run();
  // Makes Run() return after the current callback. Thread-safe.
  void Quit();
  // Runs one round: waits up to `timeout_ms` (-1: forever) and dispatches what is ready.
  void RunOnce(int timeout_ms);

  bool OnLoopThread() const;

 private:
  struct Watcher {
    int fd;
    FdCallback callback;
  };
  void RunPostedTasks();

  UniqueFd epoll_fd_;
  EventFd wake_;
  std::map<WatchId, std::shared_ptr<Watcher>> watchers_;
  WatchId next_id_ = 1;

  std::mutex task_mutex_;
  std::deque<Task> tasks_;  // Guarded by task_mutex_.
  bool quit_ = false;       // Guarded by task_mutex_.
  // Written by the loop's thread when it starts running, read by any thread in RunSync().
  std::atomic<std::thread::id> loop_thread_{};
};

}  // namespace vgpu
