// DeviceThread::Start: a device that starts, one whose start fails, and one whose start never
// returns (a renderer library waiting for ever), given up on after a timeout or a cancel fd.
#include "vhost_user/device_thread.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "base/event_fd.h"

namespace vgpu::vhost_user {
namespace {

// A device whose SetEventLoop returns `result`, or blocks until `release` is set.
class StartingDevice final : public virtio::Device {
 public:
  explicit StartingDevice(Result<void> result, std::shared_future<void> release = {})
      : result_(std::move(result)), release_(std::move(release)) {}
  uint64_t DeviceFeatures() const override { return 0; }
  uint32_t QueueCount() const override { return 2; }
  uint32_t MaxQueueSize(uint32_t) const override { return 64; }
  uint32_t ConfigSize() const override { return 0; }
  void ReadConfig(uint32_t, std::span<uint8_t>) const override {}
  void WriteConfig(uint32_t, std::span<const uint8_t>) override {}
  Result<void> SetEventLoop(EventLoop&) override {
    if (release_.valid()) release_.wait();
    return result_;
  }
  void Activate(uint64_t) override {}
  void QueueStarted(uint32_t, virtio::SplitVirtqueue*, bool) override {}
  void QueueEnabled(uint32_t, bool) override {}
  void QueueNotified(uint32_t) override {}
  void QueueMemoryReplaced(uint32_t, std::shared_ptr<const virtio::GuestMemory>) override {}
  void QueueStopping(uint32_t) override {}
  void Reset() override {}

 private:
  Result<void> result_;
  std::shared_future<void> release_;
};

TEST(DeviceThreadTest, StartReturnsTheDevicesOwnResult) {
  StartingDevice good({});
  DeviceThread good_thread(good);
  EXPECT_TRUE(good_thread.Start(std::chrono::seconds(5)));

  StartingDevice bad(MakeError(ErrorKind::kUnsupported, "no renderer here"));
  DeviceThread bad_thread(bad);
  Result<void> started = bad_thread.Start(std::chrono::seconds(5));
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().message, "no renderer here");
}

// A start that never returns is given up on: the thread is abandoned, blocked where it is. What
// it blocks on lives as long as the process, as in the daemon, which then calls _exit.
TEST(DeviceThreadTest, StartThatNeverReturnsTimesOut) {
  static std::promise<void>* never = new std::promise<void>;
  static StartingDevice* device = new StartingDevice({}, never->get_future().share());
  static DeviceThread* thread = new DeviceThread(*device);
  const auto before = std::chrono::steady_clock::now();
  Result<void> started = thread->Start(std::chrono::milliseconds(200));
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().kind, ErrorKind::kTimedOut);
  const auto waited = std::chrono::steady_clock::now() - before;
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  EXPECT_LT(waited, std::chrono::seconds(3));
}

TEST(DeviceThreadTest, StartThatNeverReturnsIsCancelledByItsFd) {
  static std::promise<void>* never = new std::promise<void>;
  static StartingDevice* device = new StartingDevice({}, never->get_future().share());
  static DeviceThread* thread = new DeviceThread(*device);
  Result<EventFd> cancel = EventFd::Create();
  ASSERT_TRUE(cancel);
  cancel->Signal();  // Already pending: the device's start never completes, so it cannot win.
  Result<void> started = thread->Start(std::chrono::seconds(30), cancel->fd());
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().kind, ErrorKind::kCancelled);
}

}  // namespace
}  // namespace vgpu::vhost_user
