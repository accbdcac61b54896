// ReadbackPacer: a 3D scanout is read back at most once per interval; the newest damage is never
// lost, and a flush after a quiet interval goes at once.
#include "gpu/readback_pacer.h"

#include <gtest/gtest.h>

#include <vector>

namespace vgpu::gpu {
namespace {

using namespace std::chrono_literals;
using Clock = ReadbackPacer::Clock;

struct Sent {
  uint32_t scanout;
  Rect damage;
};

class ReadbackPacerTest : public ::testing::Test {
 protected:
  ReadbackPacerTest() { EXPECT_TRUE(loop_.Init()); }

  ReadbackPacer MakePacer(std::chrono::nanoseconds interval) {
    return ReadbackPacer(&loop_, interval, [this](uint32_t scanout, const Rect& damage) {
      sent_.push_back({scanout, damage});
    });
  }

  EventLoop loop_;
  std::vector<Sent> sent_;
  const Clock::time_point t0_ = Clock::now();
};

TEST_F(ReadbackPacerTest, AFlushAfterAQuietIntervalGoesAtOnce) {
  ReadbackPacer pacer = MakePacer(16ms);
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 64, 64}, t0_);
  ASSERT_EQ(sent_.size(), 1u);
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 64, 64}, t0_ + 20ms);
  EXPECT_EQ(sent_.size(), 2u);
  EXPECT_FALSE(pacer.next_due());
}

TEST_F(ReadbackPacerTest, ABurstIsReadBackOncePerIntervalWithItsMergedDamage) {
  ReadbackPacer pacer = MakePacer(16ms);
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 10, 10}, t0_);
  pacer.Flushed(0, ResourceId{3}, Rect{20, 20, 10, 10}, t0_ + 2ms);
  pacer.Flushed(0, ResourceId{3}, Rect{5, 40, 5, 5}, t0_ + 4ms);
  ASSERT_EQ(sent_.size(), 1u) << "only the first of the burst at once";
  ASSERT_TRUE(pacer.next_due());
  EXPECT_EQ(*pacer.next_due(), t0_ + 16ms);
  pacer.Tick(t0_ + 10ms);  // Early: nothing due.
  EXPECT_EQ(sent_.size(), 1u);
  pacer.Tick(t0_ + 16ms);
  ASSERT_EQ(sent_.size(), 2u);
  // The union of what the two held flushes damaged.
  EXPECT_EQ(sent_[1].damage.x, 5u);
  EXPECT_EQ(sent_[1].damage.y, 20u);
  EXPECT_EQ(sent_[1].damage.width, 25u);
  EXPECT_EQ(sent_[1].damage.height, 25u);
  EXPECT_FALSE(pacer.next_due());
  // The next flush within the interval after that read-back is held again.
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 1, 1}, t0_ + 20ms);
  EXPECT_EQ(sent_.size(), 2u);
  EXPECT_EQ(*pacer.next_due(), t0_ + 32ms);
}

TEST_F(ReadbackPacerTest, ScanoutsArePacedEachOnItsOwn) {
  ReadbackPacer pacer = MakePacer(16ms);
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 8, 8}, t0_);
  pacer.Flushed(1, ResourceId{4}, Rect{0, 0, 8, 8}, t0_ + 1ms);
  EXPECT_EQ(sent_.size(), 2u);
  pacer.Flushed(1, ResourceId{4}, Rect{0, 0, 8, 8}, t0_ + 2ms);
  EXPECT_EQ(sent_.size(), 2u);
  EXPECT_EQ(*pacer.next_due(), t0_ + 17ms);
}

TEST_F(ReadbackPacerTest, HeldDamageIsDroppedWhenTheScanoutChangesOrIsSentWhole) {
  ReadbackPacer pacer = MakePacer(16ms);
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 8, 8}, t0_);
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 8, 8}, t0_ + 1ms);
  ASSERT_TRUE(pacer.kept(0));
  pacer.SentWhole(0, t0_ + 2ms);  // SET_SCANOUT sent it whole.
  EXPECT_FALSE(pacer.kept(0));
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 8, 8}, t0_ + 3ms);
  ASSERT_TRUE(pacer.kept(0));
  pacer.Forget(0);  // Disabled.
  EXPECT_FALSE(pacer.kept(0));
  pacer.Tick(t0_ + 100ms);
  EXPECT_EQ(sent_.size(), 1u);
  // A flush of another resource on the scanout replaces what was held for the old one.
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 8, 8}, t0_ + 200ms);
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 8, 8}, t0_ + 201ms);
  pacer.Flushed(0, ResourceId{9}, Rect{4, 4, 2, 2}, t0_ + 202ms);
  ASSERT_TRUE(pacer.kept(0));
  EXPECT_EQ(pacer.kept(0)->x, 4u);
  pacer.Reset();
  EXPECT_FALSE(pacer.kept(0));
}

TEST_F(ReadbackPacerTest, AZeroIntervalSendsEveryFlush) {
  ReadbackPacer pacer = MakePacer(0ns);
  for (int i = 0; i < 5; ++i) pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 8, 8}, t0_);
  EXPECT_EQ(sent_.size(), 5u);
}

TEST_F(ReadbackPacerTest, TheTimerSendsWhatIsHeldWhenTheLoopRuns) {
  ReadbackPacer pacer = MakePacer(5ms);
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 8, 8});
  pacer.Flushed(0, ResourceId{3}, Rect{0, 0, 16, 16});
  ASSERT_EQ(sent_.size(), 1u);
  // The timerfd wakes the loop once the interval has passed (bounded by the test's patience).
  const auto deadline = Clock::now() + 5s;
  while (sent_.size() < 2 && Clock::now() < deadline) loop_.RunOnce(100);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].damage.width, 16u);
}

}  // namespace
}  // namespace vgpu::gpu
