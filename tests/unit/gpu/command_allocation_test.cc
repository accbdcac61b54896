// The device model's per-command path allocates nothing: decoding, dispatching and answering a
// TRANSFER_TO_HOST_2D and a RESOURCE_FLUSH, the commands a guest sends for every frame
// (docs/PERFORMANCE.md, "Per command").
#include <gtest/gtest.h>

#include <cstring>

#include "command_fixture.h"
#include "support/allocation_counter.h"

namespace vgpu::gpu {
namespace {

class CommandAllocationTest : public testing::CommandFixture {};

TEST_F(CommandAllocationTest, TransferAndFlushAllocateNothing) {
  model_ = std::make_unique<CommandDispatcher>(DispatcherConfig{}, nullptr);
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
  ASSERT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 64, 64}), ResponseType::kOkNodata);
  TransferToHost2d transfer{};
  transfer.hdr = Header(CommandType::kTransferToHost2d);
  transfer.r = Rect{5, 7, 1, 1};
  transfer.offset = (7 * 64 + 5) * 4;
  transfer.resource_id = 1;
  ResourceFlush flush{};
  flush.hdr = Header(CommandType::kResourceFlush);
  flush.r = Rect{0, 0, 64, 64};
  flush.resource_id = 1;
  auto one_frame = [&] {
    Submit(Chain(&transfer, sizeof(transfer), sizeof(CtrlHdr)));
    Submit(Chain(&flush, sizeof(flush), sizeof(CtrlHdr)));
  };
  for (int warm_up = 0; warm_up < 4; ++warm_up) one_frame();
  const size_t answered_before = ring_.total();
  test::AllocationCounter counter;
  for (int frame = 0; frame < 1000; ++frame) one_frame();
  const size_t allocations = counter.count();
  EXPECT_EQ(allocations, 0u) << "allocations in 1000 transfers and 1000 flushes";
  EXPECT_EQ(ring_.total() - answered_before, 2000u);
  CtrlHdr last{};
  std::memcpy(&last, Host(kResponseArea, sizeof(last)), sizeof(last));
  EXPECT_EQ(static_cast<ResponseType>(last.type), ResponseType::kOkNodata);
}

}  // namespace
}  // namespace vgpu::gpu
