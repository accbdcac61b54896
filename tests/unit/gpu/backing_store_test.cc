#include "gpu/backing_store.h"

#include <gtest/gtest.h>

#include "command_fixture.h"

namespace vgpu::gpu {
namespace {

class BackingStoreTest : public testing::CommandFixture {};

TEST_F(BackingStoreTest, CopiesAcrossEntries) {
  uint8_t* a = Host(kDataArea, 4);
  uint8_t* b = Host(kDataArea + 0x1000, 4);
  std::memcpy(a, "abcd", 4);
  std::memcpy(b, "efgh", 4);
  const MemEntry entries[] = {{kDataArea, 4, 0}, {kDataArea + 0x1000, 4, 0}};
  Result<BackingStore> store = BackingStore::Create(memory_, entries);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->size(), 8u);
  char out[6] = {};
  ASSERT_TRUE(store->CopyOut(1, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out), 6)));
  EXPECT_EQ(std::string(out, 6), "bcdefg");
  EXPECT_FALSE(store->CopyOut(3, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out), 6)));
  EXPECT_FALSE(store->CopyOut(~0ull, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out), 2)));
}

TEST_F(BackingStoreTest, RejectsEntriesOutsideMemory) {
  const MemEntry outside[] = {{kMemorySize, 16, 0}};
  EXPECT_FALSE(BackingStore::Create(memory_, outside));
  const MemEntry straddling[] = {{kMemorySize - 8, 16, 0}};
  EXPECT_FALSE(BackingStore::Create(memory_, straddling));
}

}  // namespace
}  // namespace vgpu::gpu
