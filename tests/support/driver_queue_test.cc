// Checks DriverQueue against a minimal device-side reader of the split ring (virtio 1.2 §2.7)
// written here from the spec, independent of the daemon's implementation.
#include "support/driver_queue.h"

#include <gtest/gtest.h>

namespace vgpu::test {
namespace {

// The device's view: reads avail, walks descriptors, writes used.
class TestDevice {
 public:
  TestDevice(GuestRam& ram, const DriverQueue& queue) : ram_(ram), queue_(queue) {}

  uint16_t AvailableIndex() const {
    return *ram_.ReadObject<uint16_t>(queue_.layout().available_guest_address + 2);
  }
  uint16_t HeadAt(uint16_t position) const {
    return *ram_.ReadObject<uint16_t>(queue_.layout().available_guest_address + 4 +
                                      2 * (position % queue_.size()));
  }
  VirtqDescriptor Descriptor(uint16_t index) const {
    return *ram_.ReadObject<VirtqDescriptor>(queue_.layout().descriptor_guest_address +
                                             16ull * index);
  }
  // Flattens a chain (following one level of indirection).
  std::vector<VirtqDescriptor> Walk(uint16_t head) const {
    std::vector<VirtqDescriptor> chain;
    VirtqDescriptor descriptor = Descriptor(head);
    if (descriptor.flags & kDescriptorFlagIndirect) {
      const uint64_t table = descriptor.addr;
      uint16_t index = 0;
      while (true) {
        VirtqDescriptor entry = *ram_.ReadObject<VirtqDescriptor>(table + 16ull * index);
        chain.push_back(entry);
        if (!(entry.flags & kDescriptorFlagNext)) return chain;
        index = entry.next;
      }
    }
    while (true) {
      chain.push_back(descriptor);
      if (!(descriptor.flags & kDescriptorFlagNext)) return chain;
      descriptor = Descriptor(descriptor.next);
    }
  }
  void PushUsed(uint32_t id, uint32_t length) {
    const uint64_t used = queue_.layout().used_guest_address;
    ASSERT_TRUE(
        ram_.WriteObject(used + 4 + 8ull * (used_index_ % queue_.size()), UsedElement{id, length}));
    ++used_index_;
    ASSERT_TRUE(ram_.WriteObject(used + 2, used_index_));
    queue_.call().Signal();
  }

 private:
  GuestRam& ram_;
  const DriverQueue& queue_;
  uint16_t used_index_ = 0;
};

class DriverQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<GuestRam>> ram =
        GuestRam::Create(4ull << 20, GuestRamLayout::kTwoRegionsWithVgaHole);
    ASSERT_TRUE(ram) << ram.error().message;
    ram_ = std::move(*ram);
    Result<std::unique_ptr<DriverQueue>> queue =
        DriverQueue::Create(*ram_, {.size = 8, .event_index = true});
    ASSERT_TRUE(queue) << queue.error().message;
    queue_ = std::move(*queue);
  }

  std::unique_ptr<GuestRam> ram_;
  std::unique_ptr<DriverQueue> queue_;
};

TEST_F(DriverQueueTest, RingsAreAlignedAndHaveUserAddresses) {
  const DriverQueueLayout& layout = queue_->layout();

  EXPECT_EQ(layout.descriptor_guest_address % 16, 0u);
  EXPECT_EQ(layout.available_guest_address % 2, 0u);
  EXPECT_EQ(layout.used_guest_address % 4, 0u);
  EXPECT_EQ(layout.descriptor_user_address, *ram_->UserAddress(layout.descriptor_guest_address, 1));
  EXPECT_EQ(layout.used_user_address, *ram_->UserAddress(layout.used_guest_address, 1));
}

TEST_F(DriverQueueTest, DirectChainIsReadableThenWritable) {
  TestDevice device(*ram_, *queue_);

  Result<uint16_t> head = queue_->AddChain({{0x2000, 24}, {0x3000, 8}}, {{0x4000, 408}});

  ASSERT_TRUE(head);
  EXPECT_EQ(device.AvailableIndex(), 1);
  EXPECT_EQ(device.HeadAt(0), *head);
  std::vector<VirtqDescriptor> chain = device.Walk(*head);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0].addr, 0x2000u);
  EXPECT_EQ(chain[0].len, 24u);
  EXPECT_EQ(chain[0].flags & kDescriptorFlagWrite, 0);
  EXPECT_EQ(chain[1].addr, 0x3000u);
  EXPECT_EQ(chain[2].addr, 0x4000u);
  EXPECT_EQ(chain[2].len, 408u);
  EXPECT_EQ(chain[2].flags, kDescriptorFlagWrite);
}

TEST_F(DriverQueueTest, IndirectChainUsesOneDescriptor) {
  TestDevice device(*ram_, *queue_);

  Result<uint16_t> head = queue_->AddChain({{0x2000, 24}}, {{0x4000, 408}}, ChainLayout::kIndirect);

  ASSERT_TRUE(head);
  VirtqDescriptor descriptor = device.Descriptor(*head);
  EXPECT_EQ(descriptor.flags, kDescriptorFlagIndirect);
  EXPECT_EQ(descriptor.len, 32u);
  std::vector<VirtqDescriptor> chain = device.Walk(*head);
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[1].flags, kDescriptorFlagWrite);
}

TEST_F(DriverQueueTest, UsedElementsComeBackAndFreeDescriptors) {
  TestDevice device(*ram_, *queue_);
  for (int round = 0; round < 20; ++round) {  // More chains than the queue has descriptors.
    Result<uint16_t> head = queue_->AddChain({{0x2000, 24}}, {{0x4000, 24}, {0x5000, 100}});
    ASSERT_TRUE(head) << head.error().message;
    device.PushUsed(*head, 24);

    std::optional<UsedElement> used = queue_->WaitForUsed(std::chrono::seconds(1));

    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, *head);
    EXPECT_EQ(used->length, 24u);
  }
  EXPECT_EQ(queue_->available_index(), 20);
  EXPECT_EQ(queue_->last_used_index(), 20);
}

TEST_F(DriverQueueTest, WaitForUsedTimesOutWhenNothingIsUsed) {
  ASSERT_TRUE(queue_->AddChain({{0x2000, 24}}, {}));

  EXPECT_FALSE(queue_->WaitForUsed(std::chrono::milliseconds(50)));
  EXPECT_FALSE(queue_->PollUsed());
}

TEST_F(DriverQueueTest, EventIndexPublishesUsedEvent) {
  TestDevice device(*ram_, *queue_);
  Result<uint16_t> head = queue_->AddChain({{0x2000, 24}}, {});
  device.PushUsed(*head, 0);

  ASSERT_TRUE(queue_->WaitForUsed(std::chrono::seconds(1)));

  // used_event sits after the avail ring (§2.7.6).
  Result<uint16_t> used_event =
      ram_->ReadObject<uint16_t>(queue_->layout().available_guest_address + 4 + 2 * queue_->size());
  ASSERT_TRUE(used_event);
  EXPECT_EQ(*used_event, 1);
}

TEST_F(DriverQueueTest, RawLayerWritesWhatItIsGiven) {
  TestDevice device(*ram_, *queue_);

  ASSERT_TRUE(queue_->WriteDescriptor(3, 0xdead0000, 0, kDescriptorFlagNext, 3));  // A loop.
  queue_->PublishHead(3);
  queue_->PublishHead(200);  // Outside the table.
  EXPECT_FALSE(queue_->WriteDescriptor(8, 0, 0, 0, 0));

  EXPECT_EQ(device.HeadAt(0), 3);
  EXPECT_EQ(device.HeadAt(1), 200);
  EXPECT_EQ(device.Descriptor(3).next, 3);
  queue_->SetAvailIndex(1000);
  EXPECT_EQ(device.AvailableIndex(), 1000);
}

}  // namespace
}  // namespace vgpu::test
