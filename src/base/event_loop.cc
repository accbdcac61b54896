#include "base/event_loop.h"

#include <cerrno>

#include "base/log.h"

namespace vgpu {
namespace {
constexpr WatchId kWakeWatch = 0;
}  // namespace

Result<void> EventLoop::Init() {
  epoll_fd_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd_) return MakeSystemError("epoll_create1");
  Result<EventFd> wake = EventFd::Create();
  if (!wake) return ErrorOf(wake);
  wake_ = std::move(*wake);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeWatch;
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_.fd(), &event) != 0) {
    return MakeSystemError("epoll_ctl(wake)");
  }
  return {};
}

Result<WatchId> EventLoop::Watch(int fd, uint32_t events, FdCallback callback) {
  WatchId id = next_id_++;
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return MakeSystemError("epoll_ctl(add)");
  }
  watchers_[id] = std::make_shared<Watcher>(Watcher{fd, std::move(callback)});
  return id;
}

void EventLoop::Unwatch(WatchId id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, it->second->fd, nullptr);
  watchers_.erase(it);
}

void EventLoop::Post(Task task) {
  {
    std::lock_guard lock(task_mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.Signal();
}

void EventLoop::RunSync(const Task& task) {
  if (OnLoopThread()) {
    task();
    return;
  }
  std::mutex done_mutex;
  std::condition_variable done_condition;
  bool done = false;
  Post([&] {
    task();
    std::lock_guard lock(done_mutex);
    done = true;
    done_condition.notify_one();
  });
  std::unique_lock lock(done_mutex);
  done_condition.wait(lock, [&] { return done; });
}

void EventLoop::Quit() {
  {
    std::lock_guard lock(task_mutex_);
    quit_ = true;
  }
  wake_.Signal();
}

bool EventLoop::OnLoopThread() const { return loop_thread_.load() == std::this_thread::get_id(); }

void EventLoop::RunPostedTasks() {
  wake_.Consume();
  std::deque<Task> tasks;
  {
    std::lock_guard lock(task_mutex_);
    tasks.swap(tasks_);
  }
  for (Task& task : tasks) task();
}

void EventLoop::RunOnce(int timeout_ms) {
  loop_thread_ = std::this_thread::get_id();
  epoll_event events[32];
  int count = epoll_wait(epoll_fd_.get(), events, 32, timeout_ms);
  if (count < 0) {
    if (errno != EINTR) LogError("epoll_wait: %s", ErrnoText(errno).c_str());
    return;
  }
  for (int i = 0; i < count; ++i) {
    WatchId id = events[i].data.u64;
    if (id == kWakeWatch) {
      RunPostedTasks();
      continue;
    }
    auto it = watchers_.find(id);
    if (it == watchers_.end()) continue;  // Unwatched by an earlier callback in this round.
    std::shared_ptr<Watcher> keep_alive = it->second;
    keep_alive->callback(events[i].events);
  }
}

void EventLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  for (;;) {
    {
      std::lock_guard lock(task_mutex_);
      if (quit_) break;
    }
    RunOnce(-1);
  }
  // Tasks posted after Quit (a RunSync caller may be waiting on one) still run.
  RunPostedTasks();
}

}  // namespace vgpu
