// Fences against the real virglrenderer (Mesa llvmpipe here): per-context fences with 64-bit ids
// (virgl's callbacks v3), ctx0 fences beside them, and a ring that a virgl context does not have.
// The timeline rules themselves, on several rings, are unit-tested with a fake renderer
// (tests/unit/gpu/device_model_3d_test.cc); here the daemon process and virglrenderer
// decide.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "gpu_daemon_fixture.h"

namespace vgpu::test {
namespace {

using gpu::CommandType;
using gpu::ResponseType;

// VIRGL2: Mesa's virgl driver creates its contexts with this capset in context_init.
constexpr uint32_t kCapsetVirgl2 = 2;
constexpr uint32_t kContext = 1;
// Above 2^32, so that a renderer or daemon that kept 32 bits would lose them and never answer.
constexpr uint64_t kFirstFence = (uint64_t{1} << 32) + 5;

class VirglFenceTest : public GpuDaemonTest {
 protected:
  void SetUp() override {
    StartVirglDaemonOrSkip();
    if (IsSkipped()) return;
    Connect();
    gpu::CtxCreate create{};
    create.hdr = Header(CommandType::kCtxCreate);
    create.hdr.ctx_id = kContext;
    create.context_init = kCapsetVirgl2;
    ASSERT_EQ(Run(create), ResponseType::kOkNodata);
  }

  // A fenced SUBMIT_3D of four NOP dwords, queued (not kicked): on context `context`'s ring
  // `ring` when `per_context`, else on ctx0's timeline.
  CommandBuffers QueueFencedSubmit(uint64_t fence_id, bool per_context, uint32_t ring = 0) {
    gpu::CmdSubmit submit{};
    submit.hdr = Header(CommandType::kSubmit3d);
    submit.hdr.ctx_id = kContext;
    submit.hdr.flags = gpu::kFlagFence | (per_context ? gpu::kFlagInfoRingIdx : 0);
    submit.hdr.fence_id = fence_id;
    submit.hdr.ring_idx = static_cast<uint8_t>(ring);
    const uint8_t stream[16] = {};
    submit.size = sizeof(stream);
    return Queue(submit, sizeof(gpu::CtrlHdr), stream, sizeof(stream));
  }

  gpu::CtrlHdr ResponseHeaderOf(const CommandBuffers& buffers) {
    return session()
        .ram->ReadObject<gpu::CtrlHdr>(buffers.response_address)
        .value_or(gpu::CtrlHdr{});
  }

  // Kicks and collects the used heads of `count` commands, in the order the device used them.
  std::vector<uint16_t> KickAndCollect(size_t count) {
    session().control_queue->Kick();
    std::vector<uint16_t> order;
    while (order.size() < count) {
      std::optional<UsedElement> used = session().control_queue->WaitForUsed(kCommandTimeout);
      if (!used) break;
      order.push_back(static_cast<uint16_t>(used->id));
    }
    return order;
  }
};

TEST_F(VirglFenceTest, PerContextFencesWith64BitIdsAnswerInOrderBesideCtx0Fences) {
  std::vector<CommandBuffers> ring_zero;
  std::vector<CommandBuffers> global;
  for (uint64_t index = 0; index < 6; ++index) {
    ring_zero.push_back(QueueFencedSubmit(kFirstFence + index, /*per_context=*/true));
    global.push_back(QueueFencedSubmit(100 + index, /*per_context=*/false));
  }

  const std::vector<uint16_t> order = KickAndCollect(ring_zero.size() + global.size());

  ASSERT_EQ(order.size(), ring_zero.size() + global.size()) << "fenced commands never answered";
  // Each timeline answers in the order it was submitted (§5.7.6.7); the two may interleave.
  auto position = [&](uint16_t head) {
    return std::find(order.begin(), order.end(), head) - order.begin();
  };
  for (const std::vector<CommandBuffers>* timeline : {&ring_zero, &global}) {
    for (size_t index = 1; index < timeline->size(); ++index) {
      EXPECT_LT(position((*timeline)[index - 1].head), position((*timeline)[index].head));
    }
  }
  for (size_t index = 0; index < ring_zero.size(); ++index) {
    const gpu::CtrlHdr response = ResponseHeaderOf(ring_zero[index]);
    EXPECT_EQ(static_cast<ResponseType>(response.type), ResponseType::kOkNodata);
    EXPECT_EQ(response.fence_id, kFirstFence + index) << "the 64-bit fence id comes back whole";
    EXPECT_EQ(response.flags, gpu::kFlagFence | gpu::kFlagInfoRingIdx);
    EXPECT_EQ(response.ctx_id, kContext);
    EXPECT_EQ(ResponseHeaderOf(global[index]).fence_id, 100 + index);
  }
  // Every fence went through virglrenderer: none was refused and answered at once.
  EXPECT_EQ(daemon_->StderrText().find("answering at once"), std::string::npos)
      << daemon_->StderrText();
}

// virglrenderer's GL contexts have one timeline (ring 0); it refuses a fence on any other. The
// daemon then answers that command at once, logs why, and the context's ring 0 keeps working.
TEST_F(VirglFenceTest, FenceOnARingTheVirglContextLacksIsAnsweredAtOnceAndRingZeroGoesOn) {
  const CommandBuffers other_ring = QueueFencedSubmit(7, /*per_context=*/true, /*ring=*/1);
  const std::vector<uint16_t> first = KickAndCollect(1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(static_cast<ResponseType>(ResponseHeaderOf(other_ring).type), ResponseType::kOkNodata);

  const CommandBuffers ring_zero = QueueFencedSubmit(kFirstFence, /*per_context=*/true);
  ASSERT_EQ(KickAndCollect(1).size(), 1u);
  EXPECT_EQ(ResponseHeaderOf(ring_zero).fence_id, kFirstFence);
  // Logged before the command was answered.
  EXPECT_NE(daemon_->StderrText().find("ring 1"), std::string::npos) << daemon_->StderrText();
}

}  // namespace
}  // namespace vgpu::test
