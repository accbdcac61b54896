// PendingChain and InFlightChains: a popped chain goes back to the driver exactly once, and
// nothing is written into its buffers after that, whatever order the answer, a queue stop, a
// disable or the handle's destruction come in.
#include "virtio/pending_chain.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "memory_fixture.h"

namespace vgpu::virtio {
namespace {

constexpr uint8_t kCanary = 0xAA;

class RecordingRing final : public UsedRing {
 public:
  void PushUsed(uint16_t head, uint32_t length) override { returns.emplace_back(head, length); }
  void NotifyIfNeeded() override { ++notifications; }

  size_t Returns(uint16_t head) const {
    size_t count = 0;
    for (const auto& [returned_head, length] : returns) count += returned_head == head ? 1 : 0;
    return count;
  }

  std::vector<std::pair<uint16_t, uint32_t>> returns;
  int notifications = 0;
};

class PendingChainTest : public ::testing::Test {
 protected:
  PendingChainTest() {
    for (auto& buffer : buffers_) buffer.fill(kCanary);
    chains_.Start(&ring_, /*enabled=*/true);
  }

  // A chain with head `head` whose writable part is buffers_[head] (64 bytes), split in two
  // descriptors of 16 and 48 bytes.
  PendingChain Admit(uint16_t head) {
    SpanList writable = {std::span(buffers_[head]).first(16),
                         std::span(buffers_[head]).subspan(16)};
    return chains_.Admit(head, std::move(writable), 64);
  }
  bool Untouched(uint16_t head) const {
    for (uint8_t byte : buffers_[head]) {
      if (byte != kCanary) return false;
    }
    return true;
  }

  std::array<std::array<uint8_t, 64>, 8> buffers_{};
  RecordingRing ring_;
  InFlightChains chains_;
};

std::vector<uint8_t> Bytes(size_t size, uint8_t value) { return std::vector<uint8_t>(size, value); }

TEST_F(PendingChainTest, CompleteWritesAcrossDescriptorsAndReturnsOnce) {
  PendingChain pending = Admit(1);
  const std::vector<uint8_t> header = Bytes(24, 0x11);
  const std::vector<uint8_t> body = Bytes(20, 0x22);
  EXPECT_EQ(pending.Complete(header, body), 44u);
  ASSERT_EQ(ring_.returns.size(), 1u);
  EXPECT_EQ(ring_.returns[0], std::make_pair(uint16_t{1}, uint32_t{44}));
  EXPECT_EQ(buffers_[1][0], 0x11);
  EXPECT_EQ(buffers_[1][23], 0x11);
  EXPECT_EQ(buffers_[1][24], 0x22);
  EXPECT_EQ(buffers_[1][43], 0x22);
  EXPECT_EQ(buffers_[1][44], kCanary);  // Nothing past the response.
  EXPECT_TRUE(pending.returned());
  EXPECT_EQ(pending.writable_length(), 0u);

  // A second answer through the same handle writes nothing and returns nothing.
  buffers_[1].fill(kCanary);
  EXPECT_EQ(pending.Complete(header), 0u);
  pending.Cancel();
  EXPECT_TRUE(Untouched(1));
  EXPECT_EQ(ring_.Returns(1), 1u);
}

TEST_F(PendingChainTest, AResponseThatDoesNotFitIsNotWrittenAndTheChainGoesBackEmpty) {
  PendingChain pending = Admit(2);
  EXPECT_EQ(pending.Complete(Bytes(65, 0x33)), 0u);
  EXPECT_TRUE(Untouched(2));
  ASSERT_EQ(ring_.returns.size(), 1u);
  EXPECT_EQ(ring_.returns[0], std::make_pair(uint16_t{2}, uint32_t{0}));
}

TEST_F(PendingChainTest, CancelAndDestructionReturnWithNothingWritten) {
  { PendingChain dropped = Admit(3); }
  PendingChain cancelled = Admit(4);
  cancelled.Cancel();
  EXPECT_EQ(ring_.Returns(3), 1u);
  EXPECT_EQ(ring_.Returns(4), 1u);
  EXPECT_TRUE(Untouched(3));
  EXPECT_TRUE(Untouched(4));
  EXPECT_EQ(chains_.size(), 0u);
}

TEST_F(PendingChainTest, MovingAHandleMovesTheDutyToAnswer) {
  PendingChain first = Admit(1);
  PendingChain second = std::move(first);
  EXPECT_TRUE(first.returned());  // NOLINT(bugprone-use-after-move): a moved-from handle is empty.
  EXPECT_EQ(first.Complete(Bytes(8, 0x44)), 0u);
  EXPECT_TRUE(ring_.returns.empty());
  EXPECT_EQ(second.Complete(Bytes(8, 0x44)), 8u);
  EXPECT_EQ(ring_.Returns(1), 1u);

  // Assigning over a handle that still owes an answer cancels that chain.
  PendingChain third = Admit(2);
  third = Admit(3);
  EXPECT_EQ(ring_.Returns(2), 1u);
  EXPECT_EQ(ring_.Returns(3), 0u);
}

TEST_F(PendingChainTest, StopReturnsEveryChainStillOutAndLateAnswersWriteNothing) {
  PendingChain a = Admit(1);
  PendingChain b = Admit(2);
  PendingChain c = Admit(3);
  EXPECT_EQ(b.Complete(Bytes(24, 0x55)), 24u);
  chains_.Stop();
  EXPECT_EQ(ring_.Returns(1), 1u);
  EXPECT_EQ(ring_.Returns(2), 1u);
  EXPECT_EQ(ring_.Returns(3), 1u);
  EXPECT_EQ(ring_.returns.back().second, 0u);
  EXPECT_GE(ring_.notifications, 2);

  // The late reply, timeout or fence: nothing written, nothing returned.
  const size_t returns = ring_.returns.size();
  EXPECT_EQ(a.Complete(Bytes(24, 0x66)), 0u);
  c.Cancel();
  EXPECT_TRUE(Untouched(1));
  EXPECT_TRUE(Untouched(3));
  EXPECT_EQ(ring_.returns.size(), returns);
}

TEST_F(PendingChainTest, AHandleFromBeforeARestartCannotAnswerAChainOfTheNewQueue) {
  PendingChain old = Admit(1);
  chains_.Stop();
  chains_.Start(&ring_, true);
  PendingChain fresh = Admit(1);  // The same head, popped again after the restart.
  buffers_[1].fill(kCanary);
  EXPECT_EQ(old.Complete(Bytes(24, 0x77)), 0u);
  EXPECT_TRUE(Untouched(1));
  EXPECT_FALSE(fresh.returned());
  EXPECT_EQ(fresh.Complete(Bytes(24, 0x12)), 24u);
  EXPECT_EQ(ring_.Returns(1), 2u);  // Once for the stop, once for the fresh chain.
}

TEST_F(PendingChainTest, AnswersWhileDisabledAreParkedAndGoOutInOrderWhenEnabled) {
  PendingChain a = Admit(1);
  PendingChain b = Admit(2);
  PendingChain c = Admit(3);
  chains_.SetEnabled(false);
  EXPECT_EQ(b.Complete(Bytes(24, 0x22)), 24u);
  EXPECT_EQ(a.Complete(Bytes(30, 0x11)), 30u);
  EXPECT_TRUE(ring_.returns.empty());
  EXPECT_TRUE(Untouched(1));  // Not written while disabled either.
  EXPECT_TRUE(Untouched(2));

  chains_.SetEnabled(true);
  ASSERT_EQ(ring_.returns.size(), 2u);
  EXPECT_EQ(ring_.returns[0], std::make_pair(uint16_t{1}, uint32_t{30}));
  EXPECT_EQ(ring_.returns[1], std::make_pair(uint16_t{2}, uint32_t{24}));
  EXPECT_EQ(buffers_[1][29], 0x11);
  EXPECT_EQ(buffers_[1][30], kCanary);
  EXPECT_EQ(buffers_[2][16], 0x22);  // Across the descriptor boundary.
  EXPECT_EQ(c.Complete(Bytes(8, 0x33)), 8u);
  EXPECT_EQ(ring_.Returns(3), 1u);
}

TEST_F(PendingChainTest, ParkedAnswersAreDroppedWhenTheQueueStops) {
  PendingChain a = Admit(1);
  chains_.SetEnabled(false);
  EXPECT_EQ(a.Complete(Bytes(24, 0x11)), 24u);
  chains_.Stop();
  ASSERT_EQ(ring_.returns.size(), 1u);
  EXPECT_EQ(ring_.returns[0], std::make_pair(uint16_t{1}, uint32_t{0}));
  EXPECT_TRUE(Untouched(1));
}

TEST_F(PendingChainTest, AHoldIsReleasedOnceWhenItsChainGoesBackHoweverThatHappens) {
  int released = 0;
  chains_.set_on_released([&] { ++released; });
  PendingChain answered = Admit(1);
  answered.HoldQueueUntilReturned();
  answered.HoldQueueUntilReturned();  // Holding twice is one hold.
  EXPECT_TRUE(chains_.held());
  EXPECT_EQ(answered.Complete(Bytes(24, 0x11)), 24u);
  EXPECT_FALSE(chains_.held());
  EXPECT_EQ(released, 1);

  PendingChain cancelled = Admit(2);
  cancelled.HoldQueueUntilReturned();
  cancelled.Cancel();
  EXPECT_EQ(released, 2);

  // A stop ends holds without calling back: the queue is gone, there is nothing to go on with.
  PendingChain stopped = Admit(3);
  stopped.HoldQueueUntilReturned();
  chains_.Stop();
  EXPECT_FALSE(chains_.held());
  EXPECT_EQ(released, 2);
  stopped.HoldQueueUntilReturned();  // A dead handle cannot hold the next queue.
  chains_.Start(&ring_, true);
  EXPECT_FALSE(chains_.held());
}

TEST_F(PendingChainTest, ABatchNotifiesOnceAtItsEnd) {
  {
    InFlightChains::Batch batch(chains_);
    for (uint16_t head = 0; head < 5; ++head) Admit(head).Complete(Bytes(8, 0x11));
    EXPECT_EQ(ring_.notifications, 0);
  }
  EXPECT_EQ(ring_.returns.size(), 5u);
  EXPECT_EQ(ring_.notifications, 1);
  Admit(6).Cancel();  // Outside a batch: at once.
  EXPECT_EQ(ring_.notifications, 2);
}

// The queue keeps its current memory; a chain still out when the memory table changes keeps the
// old one mapped until it goes back, however it goes back.
TEST_F(PendingChainTest, ReplacedMemoryStaysMappedWhileAChainIntoItIsOut) {
  std::shared_ptr<const GuestMemory> old_memory = testing::MakeMemory({{0, 0x10000}});
  std::weak_ptr<const GuestMemory> watch = old_memory;
  std::span<uint8_t> buffer = *old_memory->Translate(GuestAddress{0x100}, 64);
  PendingChain held = chains_.Admit(5, SpanList{buffer}, 64);
  PendingChain answered = Admit(1);
  chains_.KeepMemory(std::move(old_memory));  // The queue now reads a new table.
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(answered.Complete(Bytes(8, 0x11)), 8u);
  EXPECT_FALSE(watch.expired()) << "let go while a chain into it is out";
  EXPECT_EQ(held.Complete(Bytes(24, 0x22)), 24u);  // Written into the old mapping.
  EXPECT_TRUE(watch.expired());

  // Nothing out when the table changes: nothing to keep.
  std::shared_ptr<const GuestMemory> idle = testing::MakeMemory({{0, 0x10000}});
  std::weak_ptr<const GuestMemory> idle_watch = idle;
  chains_.KeepMemory(std::move(idle));
  EXPECT_TRUE(idle_watch.expired());

  // A stop lets go too.
  std::shared_ptr<const GuestMemory> stopped = testing::MakeMemory({{0, 0x10000}});
  std::weak_ptr<const GuestMemory> stopped_watch = stopped;
  PendingChain out = Admit(2);
  chains_.KeepMemory(std::move(stopped));
  EXPECT_FALSE(stopped_watch.expired());
  chains_.Stop();
  EXPECT_TRUE(stopped_watch.expired());
}

TEST_F(PendingChainTest, ADefaultHandleAnswersNothing) {
  PendingChain nothing;
  EXPECT_TRUE(nothing.returned());
  EXPECT_EQ(nothing.Complete(Bytes(8, 0x11)), 0u);
  nothing.HoldQueueUntilReturned();
  EXPECT_FALSE(chains_.held());
  EXPECT_TRUE(ring_.returns.empty());
}

}  // namespace
}  // namespace vgpu::virtio
