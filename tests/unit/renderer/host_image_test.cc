#include "renderer/software2d/host_image.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>

#include "gpu/protocol.h"

namespace vgpu::renderer::software2d {
namespace {

constexpr uint32_t kXrgb = static_cast<uint32_t>(gpu::Format::kB8G8R8X8Unorm);

TEST(HostImage, CreatesAZeroedPackedImage) {
  Result<HostImage> image = HostImage::Create(3, 2, kXrgb);

  ASSERT_TRUE(image) << image.error().message;
  EXPECT_EQ(image->width(), 3u);
  EXPECT_EQ(image->height(), 2u);
  EXPECT_EQ(image->format(), kXrgb);
  EXPECT_EQ(image->stride(), 12u);
  EXPECT_EQ(image->size_bytes(), 24u);
  ASSERT_EQ(image->bytes().size(), 24u);
  EXPECT_TRUE(std::all_of(image->bytes().begin(), image->bytes().end(),
                          [](uint8_t byte) { return byte == 0; }));
}

TEST(HostImage, ViewDescribesTheImage) {
  Result<HostImage> image = HostImage::Create(5, 4, kXrgb);
  ASSERT_TRUE(image);

  const ImageView view = image->view();

  EXPECT_EQ(view.bytes.data(), image->bytes().data());
  EXPECT_EQ(view.bytes.size(), 80u);
  EXPECT_EQ(view.width, 5u);
  EXPECT_EQ(view.height, 4u);
  EXPECT_EQ(view.stride, 20u);
  EXPECT_EQ(view.format, kXrgb);
}

TEST(HostImage, RejectsZeroWidthOrHeight) {
  EXPECT_EQ(HostImage::Create(0, 16, kXrgb).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(HostImage::Create(16, 0, kXrgb).error().kind, ErrorKind::kInvalidArgument);
}

TEST(HostImage, RejectsUnknownFormats) {
  EXPECT_EQ(HostImage::Create(16, 16, 0).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(HostImage::Create(16, 16, 5).error().kind, ErrorKind::kInvalidArgument);
}

TEST(HostImage, RejectsAStrideThatOverflowsThirtyTwoBits) {
  // 0x40000000 * 4 wraps to 0 in uint32_t.
  EXPECT_EQ(HostImage::Create(0x40000000, 1, kXrgb).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(HostImage::Create(0xffffffff, 1, kXrgb).error().kind, ErrorKind::kInvalidArgument);
}

TEST(HostImage, RejectsByteCountsAboveTheLimit) {
  // 0x10000 * 0x10000 * 4 = 16 GiB; in 32-bit arithmetic it would wrap to 0.
  EXPECT_EQ(HostImage::Create(0x10000, 0x10000, kXrgb).error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(HostImage::Create(0xffffffff, 0xffffffff, kXrgb).error().kind,
            ErrorKind::kInvalidArgument);
  // Exactly 2 GiB: one byte above kMaxHostImageBytes.
  EXPECT_EQ(HostImage::Create(0x8000, 0x4000, kXrgb).error().kind, ErrorKind::kInvalidArgument);
}

TEST(HostImage, MovedFromImageIsEmpty) {
  Result<HostImage> image = HostImage::Create(4, 4, kXrgb);
  ASSERT_TRUE(image);

  HostImage moved = std::move(*image);

  EXPECT_EQ(moved.size_bytes(), 64u);
  EXPECT_EQ(image->size_bytes(), 0u);  // NOLINT(bugprone-use-after-move): the documented state.
  EXPECT_TRUE(image->bytes().empty());
}

}  // namespace
}  // namespace vgpu::renderer::software2d
