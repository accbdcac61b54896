// The device model's 3D rules against a scripted renderer: capsets over the enabled set, ids
// checked before the renderer sees them, bounded SUBMIT_3D, and fenced commands answered in
// fence order per timeline (§5.7.6.7).
#include <gtest/gtest.h>

#include "command_fixture.h"
#include "fake_renderer.h"

namespace vgpu::gpu {
namespace {

class DeviceModel3dTest : public testing::CommandFixture {
 protected:
  DeviceModel3dTest() {
    model_ = std::make_unique<CommandDispatcher>(DispatcherConfig{64ull << 20, true}, nullptr,
                                                 &renderer_);
    renderer_.SetFenceHandler(
        [this](const renderer::FenceSignal& fence) { model_->OnFenceSignalled(fence); });
    model_->set_acked_features((1ull << kFeatureVirgl) | (1ull << kFeatureContextInit));
  }
  ResponseType CreateContext(uint32_t id, uint32_t context_init = 0, uint32_t nlen = 4) {
    CtxCreate request{};
    request.hdr = Header(CommandType::kCtxCreate);
    request.hdr.ctx_id = id;
    request.nlen = nlen;
    request.context_init = context_init;
    std::memcpy(request.debug_name, "test", 4);
    return RunType(request);
  }
  ResponseType Create3d(uint32_t id, uint32_t width = 64, uint32_t height = 64) {
    return Create3dTexture(id, 1, width, height);
  }
  // Submits a fenced command (held until its fence signals); returns its head.
  uint16_t RunFenced(CommandType type, uint64_t fence, uint32_t ctx = 0, bool ring = false,
                     uint8_t ring_idx = 0) {
    CtrlHdr header = Header(type, kFlagFence | (ring ? kFlagInfoRingIdx : 0), fence);
    header.ctx_id = ctx;
    header.ring_idx = ring_idx;
    return Submit(Chain(&header, sizeof(header)));
  }
  static renderer::FenceSignal Fence(uint32_t context, uint32_t ring, uint64_t id,
                                     bool per_context) {
    return renderer::FenceSignal{ContextId{context}, ring, id, per_context};
  }

  testing::FakeRenderer renderer_;
};

TEST_F(DeviceModel3dTest, CapsetInfoIsIndexedOverTheEnabledSet) {
  GetCapsetInfo request{};
  request.hdr = Header(CommandType::kGetCapsetInfo);
  request.capset_index = 1;
  ASSERT_EQ(RunType(request), ResponseType::kOkCapsetInfo);
  RespCapsetInfo info;
  std::memcpy(&info, Host(kResponseArea, sizeof(info)), sizeof(info));
  EXPECT_EQ(info.capset_id, 2u);
  EXPECT_EQ(info.capset_max_version, 2u);
  EXPECT_EQ(info.capset_max_size, 1376u);
  EXPECT_EQ(info.padding, 0u);
  request.capset_index = 2;
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidParameter);
}

TEST_F(DeviceModel3dTest, GetCapsetValidatesIdAndVersion) {
  GetCapset request{};
  request.hdr = Header(CommandType::kGetCapset);
  request.capset_id = 1;
  request.capset_version = 1;
  uint32_t used = 0;
  EXPECT_EQ(Run(request, &used).type, static_cast<uint32_t>(ResponseType::kOkCapset));
  EXPECT_EQ(used, sizeof(RespCapset) + 308);
  request.capset_version = 2;  // VIRGL's max version is 1.
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidParameter);
  request.capset_id = 3;
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidParameter);
  renderer_.capsets[0].max_size = 0;  // CVE-2021-3546: an empty capset is an error.
  request.capset_id = 1;
  request.capset_version = 1;
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidParameter);
}

TEST_F(DeviceModel3dTest, ContextIdsAreChecked) {
  EXPECT_EQ(CreateContext(0), ResponseType::kErrInvalidContextId);
  EXPECT_EQ(CreateContext(1, /*context_init=*/2), ResponseType::kOkNodata);
  EXPECT_EQ(renderer_.context_capsets[1], 2u);
  EXPECT_EQ(CreateContext(1), ResponseType::kErrInvalidContextId);
  EXPECT_EQ(CreateContext(2, 0, /*nlen=*/65), ResponseType::kErrInvalidParameter);
  CtrlHdr destroy = Header(CommandType::kCtxDestroy);
  destroy.ctx_id = 9;
  EXPECT_EQ(RunType(destroy), ResponseType::kErrInvalidContextId);
  destroy.ctx_id = 1;
  EXPECT_EQ(RunType(destroy), ResponseType::kOkNodata);
  EXPECT_TRUE(renderer_.contexts.empty());
}

TEST_F(DeviceModel3dTest, ContextInitNeedsTheFeature) {
  model_->set_acked_features(1ull << kFeatureVirgl);
  EXPECT_EQ(CreateContext(1, 2), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(CreateContext(1, 0), ResponseType::kOkNodata);
}

TEST_F(DeviceModel3dTest, AttachOnlyExistingResourcesToExistingContexts) {
  ASSERT_EQ(CreateContext(1), ResponseType::kOkNodata);
  ASSERT_EQ(Create3d(5), ResponseType::kOkNodata);
  ASSERT_EQ(Create(6, 64, 64), ResponseType::kOkNodata);  // A software 2D resource.
  CtxResource request{};
  request.hdr = Header(CommandType::kCtxAttachResource);
  request.hdr.ctx_id = 2;
  request.resource_id = 5;
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidContextId);
  request.hdr.ctx_id = 1;
  request.resource_id = 7;
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidResourceId);
  request.resource_id = 6;  // Linux attaches dumb buffers too: accepted, nothing to do.
  EXPECT_EQ(RunType(request), ResponseType::kOkNodata);
  EXPECT_FALSE(renderer_.attached.contains({1, 6}));
  request.resource_id = 5;
  EXPECT_EQ(RunType(request), ResponseType::kOkNodata);
  EXPECT_TRUE(renderer_.attached.contains({1, 5}));
}

TEST_F(DeviceModel3dTest, Create3dIsCappedAndUnique) {
  EXPECT_EQ(Create3d(1), ResponseType::kOkNodata);
  EXPECT_EQ(Create3d(1), ResponseType::kErrInvalidResourceId);
  EXPECT_EQ(Create3d(2, 8192, 8192), ResponseType::kErrOutOfMemory);  // 256 MiB > 64 MiB cap.
  EXPECT_EQ(Create3d(3, 0xffffffff, 0xffffffff), ResponseType::kErrOutOfMemory);
  EXPECT_EQ(renderer_.resources.size(), 1u);
}

TEST_F(DeviceModel3dTest, UnrefAndResetReleaseRendererObjects) {
  ASSERT_EQ(CreateContext(1), ResponseType::kOkNodata);
  ASSERT_EQ(Create3d(1), ResponseType::kOkNodata);
  ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
  EXPECT_EQ(renderer_.backings.size(), 1u);
  EXPECT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kErrUnspec);  // Double attach.
  ASSERT_EQ(Unref(1), ResponseType::kOkNodata);
  EXPECT_TRUE(renderer_.resources.empty());
  EXPECT_TRUE(renderer_.backings.empty());
  ASSERT_EQ(Create3d(2), ResponseType::kOkNodata);
  model_->Reset();
  EXPECT_TRUE(renderer_.resources.empty());
  EXPECT_TRUE(renderer_.contexts.empty());
  EXPECT_EQ(model_->resources().host_memory_used(), 0u);
}

TEST_F(DeviceModel3dTest, SubmitIsBoundedAndNeedsItsContext) {
  ASSERT_EQ(CreateContext(1), ResponseType::kOkNodata);
  CmdSubmit request{};
  request.hdr = Header(CommandType::kSubmit3d);
  request.hdr.ctx_id = 1;
  const uint32_t stream[4] = {1, 2, 3, 4};
  request.size = sizeof(stream);
  EXPECT_EQ(static_cast<ResponseType>(Run(request, nullptr, stream, sizeof(stream)).type),
            ResponseType::kOkNodata);
  ASSERT_EQ(renderer_.submitted.size(), 1u);
  EXPECT_EQ(renderer_.submitted[0].second.size(), sizeof(stream));
  request.size = 0xffffffff;  // No 4 GiB allocation.
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidParameter);
  request.size = 64;  // Claims more than it carries.
  EXPECT_EQ(static_cast<ResponseType>(Run(request, nullptr, stream, sizeof(stream)).type),
            ResponseType::kErrInvalidParameter);
  request.hdr.ctx_id = 2;
  request.size = sizeof(stream);
  EXPECT_EQ(static_cast<ResponseType>(Run(request, nullptr, stream, sizeof(stream)).type),
            ResponseType::kErrInvalidContextId);
  EXPECT_EQ(renderer_.submitted.size(), 1u);
}

TEST_F(DeviceModel3dTest, FencedCommandsWaitForTheirFenceInOrder) {
  const uint64_t big = 0x100000005ull;  // Over 32 bits: must come back whole.
  const uint16_t first = RunFenced(CommandType::kGetDisplayInfo, big);
  const uint16_t second = RunFenced(CommandType::kGetDisplayInfo, big + 1);
  EXPECT_FALSE(Returned(first));
  EXPECT_FALSE(Returned(second));
  ASSERT_EQ(renderer_.created_fences.size(), 2u);
  EXPECT_EQ(renderer_.created_fences[0].fence_id, big);
  EXPECT_FALSE(renderer_.created_fences[0].per_context);
  renderer_.fence_handler(Fence(0, 0, big, false));
  EXPECT_EQ(ring_.Order(), std::vector<uint16_t>({first}));
  renderer_.fence_handler(Fence(0, 0, big + 1, false));
  EXPECT_EQ(ring_.Order(), std::vector<uint16_t>({first, second}));
  EXPECT_EQ(model_->held_commands(), 0u);
}

TEST_F(DeviceModel3dTest, PerContextRingsAreSeparateTimelines) {
  ASSERT_EQ(CreateContext(3), ResponseType::kOkNodata);
  const size_t before = ring_.total();
  const uint16_t ring1_first = RunFenced(CommandType::kGetDisplayInfo, 10, 3, true, 1);
  const uint16_t ring2 = RunFenced(CommandType::kGetDisplayInfo, 5, 3, true, 2);
  const uint16_t ring1_second = RunFenced(CommandType::kGetDisplayInfo, 11, 3, true, 1);
  EXPECT_TRUE(renderer_.created_fences[0].per_context);
  EXPECT_EQ(renderer_.created_fences[0].ring_index, 1u);
  // Ring 2's fence completes only ring 2's command.
  renderer_.fence_handler(Fence(3, 2, 5, true));
  std::vector<uint16_t> order = ring_.Order();
  EXPECT_EQ(std::vector<uint16_t>(order.begin() + before, order.end()),
            std::vector<uint16_t>({ring2}));
  // Ring 1 at 11 completes both of ring 1's, in order.
  renderer_.fence_handler(Fence(3, 1, 11, true));
  order = ring_.Order();
  EXPECT_EQ(std::vector<uint16_t>(order.begin() + before, order.end()),
            std::vector<uint16_t>({ring2, ring1_first, ring1_second}));
}

TEST_F(DeviceModel3dTest, DestroyingAContextAnswersWhatWaitsOnItsRingsOnly) {
  ASSERT_EQ(CreateContext(3), ResponseType::kOkNodata);
  ASSERT_EQ(CreateContext(4), ResponseType::kOkNodata);
  const size_t before = ring_.total();
  const uint16_t ring1 = RunFenced(CommandType::kGetDisplayInfo, 10, 3, true, 1);
  const uint16_t other_context = RunFenced(CommandType::kGetDisplayInfo, 11, 4, true, 1);
  const uint16_t global = RunFenced(CommandType::kGetDisplayInfo, 12);
  const uint16_t ring5 = RunFenced(CommandType::kGetDisplayInfo, 13, 3, true, 5);
  EXPECT_EQ(ring_.total(), before);
  CtrlHdr destroy = Header(CommandType::kCtxDestroy);
  destroy.ctx_id = 3;
  const uint16_t destroyed = Submit(Chain(&destroy, sizeof(destroy)));
  // Context 3's two held commands, in order, then the destroy itself; the others still wait.
  std::vector<uint16_t> order = ring_.Order();
  EXPECT_EQ(std::vector<uint16_t>(order.begin() + before, order.end()),
            std::vector<uint16_t>({ring1, ring5, destroyed}));
  renderer_.fence_handler(Fence(4, 1, 11, true));
  renderer_.fence_handler(Fence(0, 0, 12, false));
  order = ring_.Order();
  EXPECT_EQ(std::vector<uint16_t>(order.begin() + before, order.end()),
            std::vector<uint16_t>({ring1, ring5, destroyed, other_context, global}));
  // A late signal for the destroyed context's fence finds nothing.
  renderer_.fence_handler(Fence(3, 1, 10, true));
  EXPECT_EQ(ring_.total(), before + 5);
}

TEST_F(DeviceModel3dTest, ResponseOfAFencedCommandKeepsItsFenceFields) {
  const uint16_t head = RunFenced(CommandType::kGetDisplayInfo, 77);
  renderer_.fence_handler(Fence(0, 0, 77, false));
  ASSERT_TRUE(Returned(head));
  CtrlHdr response;
  std::memcpy(&response, Host(kResponseArea, sizeof(response)), sizeof(response));
  EXPECT_EQ(response.type, static_cast<uint32_t>(ResponseType::kOkDisplayInfo));
  EXPECT_EQ(response.flags, kFlagFence);
  EXPECT_EQ(response.fence_id, 77u);
}

// The queue stops while commands wait for their fences: they go back at once with nothing
// written, and when the fences come later nothing is written into them either.
TEST_F(DeviceModel3dTest, FencedCommandsOfAStoppedQueueStayReturnedWhenTheirFenceComes) {
  const uint16_t head = RunFenced(CommandType::kGetDisplayInfo, 9);
  in_flight_.Stop();
  model_->DropHeld();
  ASSERT_EQ(ring_.Returns(head), 1u);
  EXPECT_EQ(ring_.UsedLength(head), 0u);
  EXPECT_EQ(*Host(kResponseArea, 1), testing::kCanary);
  renderer_.fence_handler(Fence(0, 0, 9, false));
  EXPECT_EQ(ring_.Returns(head), 1u);
  EXPECT_EQ(*Host(kResponseArea, 1), testing::kCanary) << "written after it went back";
  EXPECT_EQ(model_->held_commands(), 0u);
}

TEST_F(DeviceModel3dTest, UnfencedCommandsAreAnsweredAtOnce) {
  EXPECT_EQ(CreateContext(1), ResponseType::kOkNodata);  // Run() fails the test if held.
  EXPECT_TRUE(renderer_.created_fences.empty());
}

}  // namespace
}  // namespace vgpu::gpu
