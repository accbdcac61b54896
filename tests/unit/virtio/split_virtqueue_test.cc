#include "virtio/split_virtqueue.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>

#include "base/event_fd.h"
#include "memory_fixture.h"

namespace vgpu::virtio {
namespace {

using testing::HostPointer;
using testing::kAvailable;
using testing::kDescriptors;
using testing::kUsed;
using testing::kUserAddressOffset;
using testing::MakeMemory;
using testing::WriteDescriptor;

constexpr uint64_t kBuffer = 0x8000;
constexpr uint16_t kSize = 8;

class SplitVirtqueueTest : public ::testing::Test {
 protected:
  SplitVirtqueueLayout Layout(uint32_t size = kSize) { return testing::RingLayout(size); }
  std::unique_ptr<SplitVirtqueue> MakeQueue(QueueFeatures features = {true, false}) {
    auto queue = SplitVirtqueue::Create(memory_, Layout(), features, 0);
    EXPECT_TRUE(queue) << queue.error().message;
    return std::move(*queue);
  }
  uint16_t* Field16(uint64_t address) {
    return reinterpret_cast<uint16_t*>(HostPointer(*memory_, address, 2));
  }
  uint32_t* Field32(uint64_t address) {
    return reinterpret_cast<uint32_t*>(HostPointer(*memory_, address, 4));
  }
  // Driver side: one readable descriptor at `index`, made available.
  void Publish(uint16_t head) {
    uint16_t* index = Field16(kAvailable + 2);
    *Field16(kAvailable + 4 + 2 * (*index % kSize)) = head;
    ++*index;
  }
  void SimpleDescriptor(uint16_t index) {
    WriteDescriptor(*memory_, kDescriptors, index, VirtqDescriptor{kBuffer, 64, 0, 0});
  }
  bool CallSignalled(const EventFd& call) { return call.Consume() != 0; }

  std::shared_ptr<const GuestMemory> memory_ = MakeMemory({{0, 0x10000}});
};

TEST_F(SplitVirtqueueTest, CreateValidatesLayout) {
  EXPECT_FALSE(SplitVirtqueue::Create(memory_, Layout(0), {}, 0));
  EXPECT_FALSE(SplitVirtqueue::Create(memory_, Layout(kMaxQueueSize + 1), {}, 0));
  SplitVirtqueueLayout misaligned = Layout();
  misaligned.descriptor_user_address += 8;
  EXPECT_FALSE(SplitVirtqueue::Create(memory_, misaligned, {}, 0));
  SplitVirtqueueLayout outside = Layout();
  outside.used_user_address = 0xfffc + kUserAddressOffset;  // Used ring runs off the region.
  EXPECT_FALSE(SplitVirtqueue::Create(memory_, outside, {}, 0));
  SplitVirtqueueLayout unmapped = Layout();
  unmapped.available_user_address = 0x1000;  // Not a frontend address at all.
  EXPECT_FALSE(SplitVirtqueue::Create(memory_, unmapped, {}, 0));
}

TEST_F(SplitVirtqueueTest, PopAndPushRoundTrip) {
  auto queue = MakeQueue();
  EXPECT_FALSE(queue->Pop());
  SimpleDescriptor(5);
  Publish(5);
  std::optional<PoppedChain> popped = queue->Pop();
  ASSERT_TRUE(popped);
  EXPECT_EQ(popped->head_index, 5);
  ASSERT_TRUE(popped->chain);
  EXPECT_EQ(popped->chain->readable_length, 64u);
  EXPECT_FALSE(queue->Pop());
  queue->PushUsed(5, 12);
  EXPECT_EQ(*Field16(kUsed + 2), 1);
  EXPECT_EQ(*Field32(kUsed + 4), 5u);
  EXPECT_EQ(*Field32(kUsed + 8), 12u);
}

TEST_F(SplitVirtqueueTest, MalformedChainFailsOnlyItself) {
  auto queue = MakeQueue();
  WriteDescriptor(*memory_, kDescriptors, 0, VirtqDescriptor{kBuffer, 0, 0, 0});  // Zero length.
  SimpleDescriptor(1);
  Publish(0);
  Publish(1);
  std::optional<PoppedChain> bad = queue->Pop();
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->chain);
  queue->PushUsed(bad->head_index, 0);
  std::optional<PoppedChain> good = queue->Pop();
  ASSERT_TRUE(good);
  EXPECT_TRUE(good->chain);
  EXPECT_FALSE(queue->broken());
}

TEST_F(SplitVirtqueueTest, HeadOutsideTheTableBreaksTheQueue) {
  auto queue = MakeQueue();
  Publish(kSize);
  EXPECT_FALSE(queue->Pop());
  EXPECT_TRUE(queue->broken());
  SimpleDescriptor(0);
  Publish(0);
  EXPECT_FALSE(queue->Pop());  // Stays stopped until it is set up again.
}

TEST_F(SplitVirtqueueTest, AvailableIndexJumpingAheadBreaksTheQueue) {
  auto queue = MakeQueue();
  *Field16(kAvailable + 2) = kSize + 1;
  EXPECT_FALSE(queue->Pop());
  EXPECT_TRUE(queue->broken());
}

TEST_F(SplitVirtqueueTest, StartsAtTheGivenAvailableIndex) {
  *Field16(kAvailable + 2) = 0xfffe;  // Driver's index before wrapping.
  auto queue = SplitVirtqueue::Create(memory_, Layout(), {}, 0xfffe);
  ASSERT_TRUE(queue);
  SimpleDescriptor(3);
  Publish(3);
  Publish(3);
  EXPECT_TRUE((*queue)->Pop());
  EXPECT_TRUE((*queue)->Pop());
  EXPECT_FALSE((*queue)->Pop());
  EXPECT_EQ((*queue)->next_available_index(), 0);
}

TEST_F(SplitVirtqueueTest, NoInterruptFlagSuppressesTheCall) {
  auto queue = MakeQueue();
  Result<EventFd> call = EventFd::Create();
  ASSERT_TRUE(call);
  queue->set_call_fd(UniqueFd(dup(call->fd())));
  SimpleDescriptor(0);
  Publish(0);
  ASSERT_TRUE(queue->Pop());
  *Field16(kAvailable) = 1;  // VRING_AVAIL_F_NO_INTERRUPT
  queue->PushUsed(0, 0);
  queue->NotifyIfNeeded();
  EXPECT_FALSE(CallSignalled(*call));
  *Field16(kAvailable) = 0;
  Publish(0);
  ASSERT_TRUE(queue->Pop());
  queue->PushUsed(0, 0);
  queue->NotifyIfNeeded();
  EXPECT_TRUE(CallSignalled(*call));
}

TEST_F(SplitVirtqueueTest, EventIndexControlsCallsAndKicks) {
  auto queue = MakeQueue({true, true});
  Result<EventFd> call = EventFd::Create();
  ASSERT_TRUE(call);
  queue->set_call_fd(UniqueFd(dup(call->fd())));
  SimpleDescriptor(0);
  Publish(0);
  Publish(0);
  ASSERT_TRUE(queue->Pop());
  // avail_event (after the used ring) tells the driver which index to kick at: not moved while
  // the device is taking chains (no kicks needed then), moved when it has drained the ring.
  EXPECT_EQ(*Field16(kUsed + 4 + 8 * kSize), 0);
  ASSERT_TRUE(queue->Pop());
  EXPECT_EQ(*Field16(kUsed + 4 + 8 * kSize), 0);
  EXPECT_FALSE(queue->EnableKickAndRecheck());
  EXPECT_EQ(*Field16(kUsed + 4 + 8 * kSize), 2);

  // used_event (after the available ring) = 1: the driver wants a call once used idx passes 1.
  *Field16(kAvailable + 4 + 2 * kSize) = 1;
  queue->PushUsed(0, 0);  // used idx 1: first notification always goes out.
  queue->NotifyIfNeeded();
  EXPECT_TRUE(CallSignalled(*call));
  queue->PushUsed(0, 0);  // used idx 2 passes used_event 1 -> call.
  queue->NotifyIfNeeded();
  EXPECT_TRUE(CallSignalled(*call));

  *Field16(kAvailable + 4 + 2 * kSize) = 10;  // Driver asks for a call only much later.
  Publish(0);
  ASSERT_TRUE(queue->Pop());
  queue->PushUsed(0, 0);
  queue->NotifyIfNeeded();
  EXPECT_FALSE(CallSignalled(*call));
}

TEST_F(SplitVirtqueueTest, ReplaceMemoryKeepsIndices) {
  auto queue = MakeQueue();
  SimpleDescriptor(0);
  Publish(0);
  ASSERT_TRUE(queue->Pop());
  queue->PushUsed(0, 0);
  ASSERT_TRUE(queue->ReplaceMemory(memory_));
  EXPECT_EQ(queue->next_available_index(), 1);
  Publish(0);
  ASSERT_TRUE(queue->Pop());
  queue->PushUsed(0, 0);
  EXPECT_EQ(*Field16(kUsed + 2), 2);
  auto empty = MakeMemory({{0x100000, 0x1000}});
  EXPECT_FALSE(queue->ReplaceMemory(empty));
}

}  // namespace
}  // namespace vgpu::virtio
