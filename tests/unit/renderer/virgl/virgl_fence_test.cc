// VirglRenderer fences on real virglrenderer: ids, contexts and rings come back through
// PollFd()/Poll() as they went in.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "renderer/virgl/virgl_api.h"
#include "renderer/virgl/virgl_renderer.h"
#include "virgl_test_environment.h"

namespace vgpu::renderer::virgl {
namespace {

constexpr uint64_t kBeyond32Bits = (uint64_t{1} << 32) + 0x1234;

class VirglFenceTest : public VirglTest {
 protected:
  void SetUp() override {
    VirglTest::SetUp();
    if (IsSkipped()) return;
    Renderer().SetFenceHandler([this](const FenceSignal& signal) { signals_.push_back(signal); });
  }

  std::vector<FenceSignal> signals_;
};

TEST_F(VirglFenceTest, PollFdExistsWithThreadSync) { EXPECT_GE(Renderer().PollFd(), 0); }

TEST_F(VirglFenceTest, GlobalFenceBeyond32BitsComesBackWhole) {
  ASSERT_TRUE(Renderer().CreateFence(FenceSignal{ContextId{7}, 0, kBeyond32Bits, false}));

  ASSERT_TRUE(PollUntil([&] { return !signals_.empty(); }));

  ASSERT_EQ(signals_.size(), 1u);
  EXPECT_EQ(signals_[0], (FenceSignal{.context = ContextId{7},
                                      .ring_index = 0,
                                      .fence_id = kBeyond32Bits,
                                      .per_context = false}));
  EXPECT_EQ(Renderer().PendingFenceCount(), 0u);
}

TEST_F(VirglFenceTest, SeveralGlobalFencesSignalOnceEachInOrder) {
  const std::vector<uint64_t> ids = {kBeyond32Bits + 5, 3, kBeyond32Bits, 900, 901};
  for (uint64_t id : ids) {
    ASSERT_TRUE(Renderer().CreateFence(FenceSignal{ContextId{0}, 0, id, false}));
  }

  ASSERT_TRUE(PollUntil([&] { return signals_.size() >= ids.size(); }));

  std::vector<uint64_t> signalled;
  for (const FenceSignal& signal : signals_) signalled.push_back(signal.fence_id);
  EXPECT_EQ(signalled, ids);
  EXPECT_EQ(Renderer().PendingFenceCount(), 0u);
}

TEST_F(VirglFenceTest, ContextFenceComesBackWithItsContextAndRing) {
  const ContextId context = NextContextId();
  ASSERT_TRUE(Renderer().CreateContext(ContextParams{context, kCapsetVirgl2, {}}));
  ASSERT_TRUE(Renderer().CreateFence(FenceSignal{context, 0, kBeyond32Bits, true}));

  ASSERT_TRUE(PollUntil([&] { return !signals_.empty(); }));

  ASSERT_EQ(signals_.size(), 1u);
  EXPECT_EQ(
      signals_[0],
      (FenceSignal{
          .context = context, .ring_index = 0, .fence_id = kBeyond32Bits, .per_context = true}));
  Renderer().DestroyContext(context);
}

TEST_F(VirglFenceTest, SeveralContextFencesSignalOnceEachInOrder) {
  const ContextId context = NextContextId();
  ASSERT_TRUE(Renderer().CreateContext(ContextParams{context, kCapsetVirgl2, {}}));
  const std::vector<uint64_t> ids = {1, 2, 3, kBeyond32Bits};
  for (uint64_t id : ids) {
    ASSERT_TRUE(Renderer().CreateFence(FenceSignal{context, 0, id, true}));
  }

  ASSERT_TRUE(PollUntil([&] { return signals_.size() >= ids.size(); }));

  std::vector<uint64_t> signalled;
  for (const FenceSignal& signal : signals_) signalled.push_back(signal.fence_id);
  EXPECT_EQ(signalled, ids);
  Renderer().DestroyContext(context);
}

// virglrenderer 0.10.4's GL (vrend) contexts have a single timeline: any ring but 0 is refused
// (vrend_decode_ctx_submit_fence returns -EINVAL), and nothing is left pending.
TEST_F(VirglFenceTest, ContextFenceOnRing3IsRefusedByGlContexts) {
  const ContextId context = NextContextId();
  ASSERT_TRUE(Renderer().CreateContext(ContextParams{context, kCapsetVirgl2, {}}));
  const size_t pending_before = Renderer().PendingFenceCount();

  Result<void> fence = Renderer().CreateFence(FenceSignal{context, 3, 42, true});

  ASSERT_FALSE(fence);
  EXPECT_NE(fence.error().message.find("ring 3"), std::string::npos);
  EXPECT_EQ(Renderer().PendingFenceCount(), pending_before);
  Renderer().DestroyContext(context);
}

TEST_F(VirglFenceTest, HandlerMayCreateTheNextFence) {
  Renderer().SetFenceHandler([this](const FenceSignal& signal) {
    signals_.push_back(signal);
    if (signal.fence_id == 1) {
      EXPECT_TRUE(Renderer().CreateFence(FenceSignal{ContextId{0}, 0, 2, false}));
    }
  });
  ASSERT_TRUE(Renderer().CreateFence(FenceSignal{ContextId{0}, 0, 1, false}));

  ASSERT_TRUE(PollUntil([&] { return signals_.size() >= 2; }));

  EXPECT_EQ(signals_[0].fence_id, 1u);
  EXPECT_EQ(signals_[1].fence_id, 2u);
}

TEST_F(VirglFenceTest, FenceAfterRealWorkSignals) {
  const ResourceId resource = NextResourceId();
  std::vector<uint8_t> memory(256 * 256 * 4, 0x5a);
  ASSERT_TRUE(CreateTarget(resource, 256, 256));
  ASSERT_TRUE(Renderer().AttachBacking(resource, GuestBacking({std::span(memory)})));
  ASSERT_TRUE(Renderer().TransferToHost(
      TransferParams{.resource = resource, .stride = 1024, .box = Box{0, 0, 0, 256, 256, 1}}));
  ASSERT_TRUE(Renderer().CreateFence(FenceSignal{ContextId{0}, 0, 77, false}));

  ASSERT_TRUE(PollUntil([&] { return !signals_.empty(); }));

  EXPECT_EQ(signals_[0].fence_id, 77u);
  Renderer().DestroyResource(resource);
}

}  // namespace
}  // namespace vgpu::renderer::virgl
