#include "gpu/display_protocol.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string_view>

namespace vgpu::gpu::display {
namespace {

// Sizes are static_asserts in the header; these pin the field offsets QEMU reads
// (docs/interop/vhost-user-gpu.rst, hw/display/vhost-user-gpu.c).
TEST(DisplayProtocol, FieldOffsets) {
  EXPECT_EQ(offsetof(CursorUpdate, hot_x), 12u);
  EXPECT_EQ(offsetof(CursorUpdate, data), 20u);
  EXPECT_EQ(offsetof(DmabufScanout, fd_stride), 28u);
  EXPECT_EQ(offsetof(DmabufScanout, fd_drm_fourcc), 36u);
  EXPECT_EQ(offsetof(DmabufScanout2, modifier), 40u);
  EXPECT_EQ(offsetof(Update, height), 16u);
}

TEST(DisplayProtocol, RequestIds) {
  EXPECT_EQ(static_cast<uint32_t>(Request::kGetProtocolFeatures), 1u);
  EXPECT_EQ(static_cast<uint32_t>(Request::kUpdate), 8u);
  EXPECT_EQ(static_cast<uint32_t>(Request::kDmabufUpdate), 10u);
  EXPECT_EQ(static_cast<uint32_t>(Request::kDmabufScanout2), 12u);
  EXPECT_EQ(kReplyFlag, 0x4u);
}

TEST(DisplayProtocol, RequestNames) {
  EXPECT_EQ(std::string_view(RequestName(7)), "SCANOUT");
  EXPECT_EQ(std::string_view(RequestName(11)), "GET_EDID");
  EXPECT_EQ(std::string_view(RequestName(13)), "UNKNOWN");
}

}  // namespace
}  // namespace vgpu::gpu::display
