#include "renderer/gfxstream/fence_handoff.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <thread>
#include <vector>

namespace vgpu::renderer::gfxstream {
namespace {

bool Readable(int fd, int timeout_ms) {
  pollfd entry{fd, POLLIN, 0};
  return poll(&entry, 1, timeout_ms) == 1 && (entry.revents & POLLIN) != 0;
}

TEST(FenceHandoffTest, FencesFromOneThreadComeOutInOrder) {
  Result<std::unique_ptr<FenceHandoff>> handoff = FenceHandoff::Create();
  ASSERT_TRUE(handoff);
  EXPECT_FALSE(Readable((*handoff)->fd(), 0));
  for (uint64_t id = 1; id <= 3; ++id) (*handoff)->Push(FenceSignal{ContextId{1}, 0, id, true});
  EXPECT_TRUE(Readable((*handoff)->fd(), 0));
  std::vector<FenceSignal> taken = (*handoff)->Take();
  ASSERT_EQ(taken.size(), 3u);
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(taken[id - 1].fence_id, id);
  EXPECT_FALSE(Readable((*handoff)->fd(), 0));
  EXPECT_TRUE((*handoff)->Take().empty());
}

TEST(FenceHandoffTest, FencesFromOtherThreadsAllArriveEachThreadInOrder) {
  Result<std::unique_ptr<FenceHandoff>> handoff = FenceHandoff::Create();
  ASSERT_TRUE(handoff);
  constexpr uint32_t kThreads = 4;
  constexpr uint64_t kPerThread = 500;
  std::vector<std::thread> threads;
  for (uint32_t thread = 0; thread < kThreads; ++thread) {
    threads.emplace_back([&, thread] {
      for (uint64_t id = 1; id <= kPerThread; ++id) {
        (*handoff)->Push(FenceSignal{ContextId{thread + 1}, 0, id, true});
      }
    });
  }
  std::vector<uint64_t> last(kThreads + 1, 0);
  uint64_t received = 0;
  while (received < kThreads * kPerThread) {
    ASSERT_TRUE(Readable((*handoff)->fd(), 5000)) << "only " << received << " fences arrived";
    for (const FenceSignal& fence : (*handoff)->Take()) {
      EXPECT_EQ(fence.fence_id, last[fence.context.value()] + 1);
      last[fence.context.value()] = fence.fence_id;
      ++received;
    }
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE((*handoff)->Take().empty());
}

}  // namespace
}  // namespace vgpu::renderer::gfxstream
