#include "virtio/descriptor_chain.h"

#include <gtest/gtest.h>

#include "memory_fixture.h"

namespace vgpu::virtio {
namespace {

using testing::MakeMemory;
using testing::WriteDescriptor;

constexpr uint64_t kTable = 0x1000;
constexpr uint64_t kIndirectTable = 0x2000;
constexpr uint64_t kBuffer = 0x4000;
constexpr uint16_t kQueueSize = 8;

class DescriptorChainTest : public ::testing::Test {
 protected:
  Result<DescriptorChain> Walk(uint16_t head, bool indirect_allowed = true) {
    std::span<uint8_t> table = *memory_->Translate(GuestAddress{kTable}, 16 * kQueueSize);
    return WalkDescriptorChain(memory_, table, head, WalkOptions{kQueueSize, indirect_allowed});
  }
  void Descriptor(uint32_t index, uint64_t address, uint32_t length, uint16_t flags,
                  uint16_t next = 0) {
    WriteDescriptor(*memory_, kTable, index, VirtqDescriptor{address, length, flags, next});
  }
  void IndirectEntry(uint32_t index, uint64_t address, uint32_t length, uint16_t flags,
                     uint16_t next = 0) {
    WriteDescriptor(*memory_, kIndirectTable, index, VirtqDescriptor{address, length, flags, next});
  }

  std::shared_ptr<const GuestMemory> memory_ = MakeMemory({{0, 0x10000}, {0x10000, 0x10000}});
};

TEST_F(DescriptorChainTest, ReadableThenWritableChain) {
  Descriptor(0, kBuffer, 24, kDescriptorFlagNext, 3);
  Descriptor(3, kBuffer + 0x100, 408, kDescriptorFlagWrite);
  Result<DescriptorChain> chain = Walk(0);
  ASSERT_TRUE(chain) << chain.error().message;
  EXPECT_EQ(chain->readable_length, 24u);
  EXPECT_EQ(chain->writable_length, 408u);
  EXPECT_EQ(chain->readable.size(), 1u);
  EXPECT_EQ(chain->writable.size(), 1u);
}

TEST_F(DescriptorChainTest, BufferAcrossTwoRegionsIsSplit) {
  Descriptor(0, 0xfff0, 0x20, 0);
  Result<DescriptorChain> chain = Walk(0);
  ASSERT_TRUE(chain) << chain.error().message;
  EXPECT_EQ(chain->readable.size(), 2u);
  EXPECT_EQ(chain->readable_length, 0x20u);
}

TEST_F(DescriptorChainTest, LoopIsRejected) {
  Descriptor(0, kBuffer, 16, kDescriptorFlagNext, 1);
  Descriptor(1, kBuffer, 16, kDescriptorFlagNext, 0);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, SelfLoopIsRejected) {
  Descriptor(2, kBuffer, 16, kDescriptorFlagNext, 2);
  EXPECT_FALSE(Walk(2));
}

TEST_F(DescriptorChainTest, NextOutsideTheTableIsRejected) {
  Descriptor(0, kBuffer, 16, kDescriptorFlagNext, kQueueSize);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, ZeroLengthDescriptorIsRejected) {
  Descriptor(0, kBuffer, 0, 0);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, AddressOutsideGuestMemoryIsRejected) {
  Descriptor(0, 0x20000, 16, 0);
  EXPECT_FALSE(Walk(0));
  Descriptor(0, 0x1fff0, 0x20, 0);  // Runs off the end of the last region.
  EXPECT_FALSE(Walk(0));
  Descriptor(0, ~0ull - 8, 16, 0);  // Wraps.
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, ReadableAfterWritableIsRejected) {
  Descriptor(0, kBuffer, 16, kDescriptorFlagWrite | kDescriptorFlagNext, 1);
  Descriptor(1, kBuffer, 16, 0);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, IndirectTableIsFollowed) {
  IndirectEntry(0, kBuffer, 24, kDescriptorFlagNext, 1);
  IndirectEntry(1, kBuffer + 0x100, 24, kDescriptorFlagWrite);
  Descriptor(0, kIndirectTable, 32, kDescriptorFlagIndirect);
  Result<DescriptorChain> chain = Walk(0);
  ASSERT_TRUE(chain) << chain.error().message;
  EXPECT_EQ(chain->readable_length, 24u);
  EXPECT_EQ(chain->writable_length, 24u);
}

TEST_F(DescriptorChainTest, IndirectWithoutTheFeatureIsRejected) {
  IndirectEntry(0, kBuffer, 24, 0);
  Descriptor(0, kIndirectTable, 16, kDescriptorFlagIndirect);
  EXPECT_FALSE(Walk(0, /*indirect_allowed=*/false));
}

TEST_F(DescriptorChainTest, IndirectInsideIndirectIsRejected) {
  IndirectEntry(0, kIndirectTable, 16, kDescriptorFlagIndirect);
  Descriptor(0, kIndirectTable, 16, kDescriptorFlagIndirect);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, IndirectWithNextIsRejected) {
  IndirectEntry(0, kBuffer, 24, 0);
  Descriptor(0, kIndirectTable, 16, kDescriptorFlagIndirect | kDescriptorFlagNext, 1);
  Descriptor(1, kBuffer, 16, 0);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, IndirectTableWithBadLengthIsRejected) {
  IndirectEntry(0, kBuffer, 24, 0);
  Descriptor(0, kIndirectTable, 17, kDescriptorFlagIndirect);
  EXPECT_FALSE(Walk(0));
  Descriptor(0, kIndirectTable, 0, kDescriptorFlagIndirect);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, IndirectTableLongerThanTheQueueIsRejected) {
  for (uint32_t i = 0; i <= kQueueSize; ++i) {
    IndirectEntry(i, kBuffer, 8, kDescriptorFlagNext, static_cast<uint16_t>(i + 1));
  }
  Descriptor(0, kIndirectTable, 16 * (kQueueSize + 1), kDescriptorFlagIndirect);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, LoopInsideIndirectTableIsRejected) {
  IndirectEntry(0, kBuffer, 8, kDescriptorFlagNext, 1);
  IndirectEntry(1, kBuffer, 8, kDescriptorFlagNext, 0);
  Descriptor(0, kIndirectTable, 32, kDescriptorFlagIndirect);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, IndirectTableOutsideMemoryIsRejected) {
  Descriptor(0, 0x1fff0, 32, kDescriptorFlagIndirect);
  EXPECT_FALSE(Walk(0));
}

TEST_F(DescriptorChainTest, IndirectTableIsCopiedBeforeUse) {
  // The walk must not re-read the table from guest memory after checking it: change the guest's
  // copy after the walk and the chain keeps what was validated.
  IndirectEntry(0, kBuffer, 24, 0);
  Descriptor(0, kIndirectTable, 16, kDescriptorFlagIndirect);
  Result<DescriptorChain> chain = Walk(0);
  ASSERT_TRUE(chain);
  IndirectEntry(0, 0x7fffffff0000ull, 0xffffffff, 0);
  EXPECT_EQ(chain->readable_length, 24u);
  EXPECT_EQ(chain->readable[0].size(), 24u);
}

}  // namespace
}  // namespace vgpu::virtio
