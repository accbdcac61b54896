#include "virtio/chain_io.h"

#include <gtest/gtest.h>

#include "memory_fixture.h"

namespace vgpu::virtio {
namespace {

using testing::HostPointer;
using testing::MakeMemory;

DescriptorChain ChainOver(const std::shared_ptr<const GuestMemory>& memory,
                          std::vector<std::pair<uint64_t, uint64_t>> readable,
                          std::vector<std::pair<uint64_t, uint64_t>> writable) {
  DescriptorChain chain;
  chain.memory = &memory;
  for (auto [address, length] : readable) {
    chain.readable.emplace_back(HostPointer(*memory, address, length), length);
    chain.readable_length += length;
  }
  for (auto [address, length] : writable) {
    chain.writable.emplace_back(HostPointer(*memory, address, length), length);
    chain.writable_length += length;
  }
  return chain;
}

TEST(ChainReader, ReadsAnObjectSplitAcrossBuffers) {
  auto memory = MakeMemory({{0, 0x10000}});
  uint8_t* first = HostPointer(*memory, 0x100, 3);
  uint8_t* second = HostPointer(*memory, 0x200, 5);
  const uint8_t bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  std::memcpy(first, bytes, 3);
  std::memcpy(second, bytes + 3, 5);
  DescriptorChain chain = ChainOver(memory, {{0x100, 3}, {0x200, 5}}, {});
  ChainReader reader(chain);
  std::optional<uint64_t> value = reader.ReadObject<uint64_t>();
  ASSERT_TRUE(value);
  uint64_t expected;
  std::memcpy(&expected, bytes, 8);
  EXPECT_EQ(*value, expected);
  EXPECT_EQ(reader.remaining(), 0u);
}

TEST(ChainReader, TruncatedReadConsumesNothing) {
  auto memory = MakeMemory({{0, 0x10000}});
  DescriptorChain chain = ChainOver(memory, {{0x100, 6}}, {});
  ChainReader reader(chain);
  EXPECT_FALSE(reader.ReadObject<uint64_t>());
  EXPECT_EQ(reader.remaining(), 6u);
  EXPECT_TRUE(reader.ReadObject<uint32_t>());
}

TEST(ChainWriter, WritesAcrossBuffersAndCountsBytes) {
  auto memory = MakeMemory({{0, 0x10000}});
  DescriptorChain chain = ChainOver(memory, {}, {{0x100, 2}, {0x200, 10}});
  ChainWriter writer(chain);
  const uint32_t value = 0xa1b2c3d4;
  ASSERT_TRUE(writer.WriteObject(value));
  EXPECT_EQ(writer.bytes_written(), 4u);
  uint8_t* first = HostPointer(*memory, 0x100, 2);
  uint8_t* second = HostPointer(*memory, 0x200, 2);
  EXPECT_EQ(first[0], 0xd4);
  EXPECT_EQ(first[1], 0xc3);
  EXPECT_EQ(second[0], 0xb2);
  EXPECT_EQ(second[1], 0xa1);
}

TEST(ChainWriter, RefusesWhatDoesNotFit) {
  auto memory = MakeMemory({{0, 0x10000}});
  DescriptorChain chain = ChainOver(memory, {}, {{0x100, 3}});
  ChainWriter writer(chain);
  EXPECT_FALSE(writer.WriteObject(uint32_t{1}));
  EXPECT_EQ(writer.bytes_written(), 0u);
}

}  // namespace
}  // namespace vgpu::virtio
