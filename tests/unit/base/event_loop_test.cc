#include "base/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "base/event_fd.h"

namespace vgpu {
namespace {

TEST(EventLoop, RunsWatchCallbacksOnTheLoopThread) {
  EventLoop loop;
  ASSERT_TRUE(loop.Init());
  Result<EventFd> event = EventFd::Create();
  ASSERT_TRUE(event);
  std::thread::id callback_thread;
  ASSERT_TRUE(loop.Watch(event->fd(), EPOLLIN, [&](uint32_t) {
    event->Consume();
    callback_thread = std::this_thread::get_id();
    loop.Quit();
  }));
  std::thread runner([&] { loop.Run(); });
  const std::thread::id runner_id = runner.get_id();
  event->Signal();
  runner.join();
  EXPECT_EQ(callback_thread, runner_id);
}

TEST(EventLoop, RunSyncWaitsForTheTask) {
  EventLoop loop;
  ASSERT_TRUE(loop.Init());
  std::thread runner([&] { loop.Run(); });
  int value = 0;
  loop.RunSync([&] { value = 42; });
  EXPECT_EQ(value, 42);  // Visible here because RunSync returned after the task ran.
  loop.Quit();
  runner.join();
}

TEST(EventLoop, UnwatchFromInsideACallbackStopsFurtherCalls) {
  EventLoop loop;
  ASSERT_TRUE(loop.Init());
  Result<EventFd> event = EventFd::Create();
  ASSERT_TRUE(event);
  int calls = 0;
  WatchId id = 0;
  Result<WatchId> watch = loop.Watch(event->fd(), EPOLLIN, [&](uint32_t) {
    ++calls;
    loop.Unwatch(id);  // The eventfd stays readable: without Unwatch it would fire again.
  });
  ASSERT_TRUE(watch);
  id = *watch;
  event->Signal();
  loop.RunOnce(1000);
  loop.RunOnce(0);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace vgpu
