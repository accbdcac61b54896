#include "renderer/virgl/fence_timelines.h"

#include <gtest/gtest.h>

#include <vector>

namespace vgpu::renderer::virgl {
namespace {

constexpr uint64_t kBeyond32Bits = (uint64_t{1} << 32) + 7;

FenceSignal Global(uint64_t fence_id, uint32_t context = 0) {
  return FenceSignal{
      .context = ContextId{context}, .ring_index = 0, .fence_id = fence_id, .per_context = false};
}

FenceSignal OnRing(uint32_t context, uint32_t ring, uint64_t fence_id) {
  return FenceSignal{
      .context = ContextId{context}, .ring_index = ring, .fence_id = fence_id, .per_context = true};
}

TEST(FenceTimelines, GlobalFenceKeepsItsFull64BitId) {
  FenceTimelines timelines;
  const uint32_t virgl_id = timelines.AddGlobal(kBeyond32Bits, ContextId{3}, 0);

  ASSERT_TRUE(timelines.RetireGlobal(virgl_id));

  EXPECT_EQ(timelines.TakeSignalled(), std::vector<FenceSignal>{Global(kBeyond32Bits, 3)});
  EXPECT_EQ(timelines.pending_count(), 0u);
}

TEST(FenceTimelines, GlobalIdsAreDistinctEvenWhenFenceIdsRepeat) {
  FenceTimelines timelines;
  const uint32_t first = timelines.AddGlobal(5, ContextId{0}, 0);
  const uint32_t second = timelines.AddGlobal(5, ContextId{0}, 0);

  EXPECT_NE(first, second);
  EXPECT_NE(first, 0u);
}

TEST(FenceTimelines, MergedGlobalRetirementSignalsEveryOlderFenceInOrder) {
  FenceTimelines timelines;
  timelines.AddGlobal(10, ContextId{0}, 0);
  timelines.AddGlobal(20, ContextId{0}, 0);
  const uint32_t third = timelines.AddGlobal(30, ContextId{0}, 0);
  timelines.AddGlobal(40, ContextId{0}, 0);

  ASSERT_TRUE(timelines.RetireGlobal(third));

  EXPECT_EQ(timelines.TakeSignalled(),
            (std::vector<FenceSignal>{Global(10), Global(20), Global(30)}));
  EXPECT_EQ(timelines.pending_count(), 1u);
  EXPECT_TRUE(timelines.TakeSignalled().empty());
}

TEST(FenceTimelines, UnknownGlobalRetirementChangesNothing) {
  FenceTimelines timelines;
  const uint32_t only = timelines.AddGlobal(10, ContextId{0}, 0);

  EXPECT_FALSE(timelines.RetireGlobal(only + 100));

  EXPECT_TRUE(timelines.TakeSignalled().empty());
  EXPECT_EQ(timelines.pending_count(), 1u);
}

TEST(FenceTimelines, RemoveLastGlobalUndoesAFailedCreate) {
  FenceTimelines timelines;
  timelines.AddGlobal(10, ContextId{0}, 0);
  const uint32_t failed = timelines.AddGlobal(11, ContextId{0}, 0);

  timelines.RemoveLastGlobal();

  EXPECT_FALSE(timelines.RetireGlobal(failed));
  EXPECT_EQ(timelines.pending_count(), 1u);
}

TEST(FenceTimelines, ContextRingsRetireIndependently) {
  FenceTimelines timelines;
  timelines.AddContext(ContextId{1}, 0, 100);
  timelines.AddContext(ContextId{1}, 3, kBeyond32Bits);
  timelines.AddContext(ContextId{2}, 3, 100);

  ASSERT_TRUE(timelines.RetireContext(ContextId{1}, 3, kBeyond32Bits));

  EXPECT_EQ(timelines.TakeSignalled(), std::vector<FenceSignal>{OnRing(1, 3, kBeyond32Bits)});
  EXPECT_EQ(timelines.pending_count(), 2u);
}

TEST(FenceTimelines, MergedContextRetirementSignalsOlderFencesOfThatRingOnly) {
  FenceTimelines timelines;
  timelines.AddContext(ContextId{1}, 0, 1);
  timelines.AddContext(ContextId{1}, 0, 2);
  timelines.AddContext(ContextId{1}, 1, 1);
  timelines.AddContext(ContextId{1}, 0, 3);

  ASSERT_TRUE(timelines.RetireContext(ContextId{1}, 0, 2));

  EXPECT_EQ(timelines.TakeSignalled(),
            (std::vector<FenceSignal>{OnRing(1, 0, 1), OnRing(1, 0, 2)}));
  EXPECT_EQ(timelines.pending_count(), 2u);
}

TEST(FenceTimelines, UnknownContextRetirementChangesNothing) {
  FenceTimelines timelines;
  timelines.AddContext(ContextId{1}, 0, 1);

  EXPECT_FALSE(timelines.RetireContext(ContextId{1}, 0, 2));
  EXPECT_FALSE(timelines.RetireContext(ContextId{2}, 0, 1));

  EXPECT_TRUE(timelines.TakeSignalled().empty());
  EXPECT_EQ(timelines.pending_count(), 1u);
}

TEST(FenceTimelines, DropContextForgetsOnlyThatContextsRings) {
  FenceTimelines timelines;
  timelines.AddContext(ContextId{1}, 0, 1);
  timelines.AddContext(ContextId{1}, 2, 1);
  timelines.AddContext(ContextId{2}, 0, 1);
  timelines.AddGlobal(9, ContextId{1}, 0);

  EXPECT_EQ(timelines.DropContext(ContextId{1}), 2u);

  EXPECT_EQ(timelines.pending_count(), 2u);
  EXPECT_FALSE(timelines.RetireContext(ContextId{1}, 0, 1));
}

TEST(FenceTimelines, RemoveLastContextUndoesAFailedCreate) {
  FenceTimelines timelines;
  timelines.AddContext(ContextId{1}, 3, 7);

  timelines.RemoveLastContext(ContextId{1}, 3);

  EXPECT_EQ(timelines.pending_count(), 0u);
  EXPECT_FALSE(timelines.RetireContext(ContextId{1}, 3, 7));
}

}  // namespace
}  // namespace vgpu::renderer::virgl
