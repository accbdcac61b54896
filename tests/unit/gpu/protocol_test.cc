#include "gpu/protocol.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string_view>

namespace vgpu::gpu {
namespace {

// Sizes are static_asserts in the header; these pin the offsets that a mis-ordered or mis-typed
// field would move (values from virtio 1.2 §5.7.6 and the Linux uapi header).
TEST(Protocol, HeaderFieldOffsets) {
  EXPECT_EQ(offsetof(CtrlHdr, flags), 4u);
  EXPECT_EQ(offsetof(CtrlHdr, fence_id), 8u);
  EXPECT_EQ(offsetof(CtrlHdr, ctx_id), 16u);
  EXPECT_EQ(offsetof(CtrlHdr, ring_idx), 20u);
}

TEST(Protocol, TwoDimensionalCommandOffsets) {
  EXPECT_EQ(offsetof(ResourceCreate2d, format), 28u);
  EXPECT_EQ(offsetof(SetScanout, scanout_id), 40u);
  EXPECT_EQ(offsetof(TransferToHost2d, offset), 40u);
  EXPECT_EQ(offsetof(TransferToHost2d, resource_id), 48u);
  EXPECT_EQ(offsetof(ResourceAttachBacking, nr_entries), 28u);
  EXPECT_EQ(offsetof(MemEntry, length), 8u);
  EXPECT_EQ(offsetof(RespDisplayInfo, pmodes[1]), 48u);
  EXPECT_EQ(offsetof(RespEdid, edid), 32u);
  EXPECT_EQ(offsetof(RespCapsetInfo, capset_max_size), 32u);
}

TEST(Protocol, BlobAndThreeDimensionalCommandOffsets) {
  EXPECT_EQ(offsetof(ResourceCreateBlob, blob_id), 40u);
  EXPECT_EQ(offsetof(ResourceCreateBlob, size), 48u);
  EXPECT_EQ(offsetof(SetScanoutBlob, format), 56u);
  EXPECT_EQ(offsetof(SetScanoutBlob, strides), 64u);
  EXPECT_EQ(offsetof(SetScanoutBlob, offsets), 80u);
  EXPECT_EQ(offsetof(CtxCreate, debug_name), 32u);
  EXPECT_EQ(offsetof(TransferHost3d, offset), 48u);
  EXPECT_EQ(offsetof(TransferHost3d, layer_stride), 68u);
  EXPECT_EQ(offsetof(ResourceMapBlob, offset), 32u);
  EXPECT_EQ(offsetof(ResourceCreate3d, flags), 64u);
}

TEST(Protocol, CursorOffsets) {
  EXPECT_EQ(offsetof(UpdateCursor, pos), 24u);
  EXPECT_EQ(offsetof(UpdateCursor, resource_id), 40u);
  EXPECT_EQ(offsetof(UpdateCursor, hot_y), 48u);
}

TEST(Protocol, EnumValuesMatchTheSpec) {
  EXPECT_EQ(static_cast<uint32_t>(CommandType::kSetScanoutBlob), 0x010du);
  EXPECT_EQ(static_cast<uint32_t>(CommandType::kResourceUnmapBlob), 0x0209u);
  EXPECT_EQ(static_cast<uint32_t>(CommandType::kMoveCursor), 0x0301u);
  EXPECT_EQ(static_cast<uint32_t>(ResponseType::kOkMapInfo), 0x1106u);
  EXPECT_EQ(static_cast<uint32_t>(ResponseType::kErrInvalidParameter), 0x1205u);
  EXPECT_EQ(static_cast<uint32_t>(Format::kR8G8B8X8Unorm), 134u);
  EXPECT_EQ(static_cast<uint32_t>(CapsetId::kCrossDomain), 5u);
}

TEST(Protocol, CommandNameCoversCommandsAndResponses) {
  EXPECT_EQ(std::string_view(CommandName(0x0101)), "RESOURCE_CREATE_2D");
  EXPECT_EQ(std::string_view(CommandName(0x0207)), "SUBMIT_3D");
  EXPECT_EQ(std::string_view(CommandName(0x0300)), "UPDATE_CURSOR");
  EXPECT_EQ(std::string_view(CommandName(0x1104)), "OK_EDID");
  EXPECT_EQ(std::string_view(CommandName(0x1202)), "ERR_INVALID_SCANOUT_ID");
}

TEST(Protocol, CommandNameOfAnUnknownValueIsUnknown) {
  EXPECT_EQ(std::string_view(CommandName(0x010e)), "UNKNOWN");
  EXPECT_EQ(std::string_view(CommandName(0xffffffff)), "UNKNOWN");
}

}  // namespace
}  // namespace vgpu::gpu
