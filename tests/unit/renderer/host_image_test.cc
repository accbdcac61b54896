#include "renderer/software2d/host_image.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
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

TEST(HostImage, LargeImagesAreAMappingOfTheirOwnAndSmallOnesAreNot) {
  // 128x128x4 = 64 KiB: the first lendable size.
  Result<HostImage> large = HostImage::Create(128, 128, kXrgb);
  Result<HostImage> small = HostImage::Create(128, 127, kXrgb);
  ASSERT_TRUE(large);
  ASSERT_TRUE(small);

  EXPECT_TRUE(large->lendable());
  EXPECT_FALSE(small->lendable());
  EXPECT_TRUE(std::all_of(large->bytes().begin(), large->bytes().end(),
                          [](uint8_t byte) { return byte == 0; }));
  // Its own pages: the mapping starts on a page boundary.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large->bytes().data()) % 4096, 0u);
}

TEST(HostImage, MovingToNewPagesKeepsThePixelsAndLeavesTheOldPagesAsTheyWere) {
  Result<HostImage> image = HostImage::Create(256, 256, kXrgb);
  ASSERT_TRUE(image);
  for (size_t i = 0; i < image->size_bytes(); ++i) image->bytes()[i] = static_cast<uint8_t>(i * 7);
  const std::vector<uint8_t> before(image->bytes().begin(), image->bytes().end());
  // Pages lent as an UPDATE lends them: referenced by a pipe.
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  UniqueFd pipe_read(pipe_fds[0]);
  UniqueFd pipe_write(pipe_fds[1]);
  iovec lent{image->bytes().data(), image->size_bytes()};
  const ssize_t lent_bytes = vmsplice(pipe_write.get(), &lent, 1, 0);
  ASSERT_GT(lent_bytes, 0);  // As much as the pipe holds.
  const uint8_t* old_pages = image->bytes().data();

  ASSERT_TRUE(image->MoveToNewPages());
  EXPECT_NE(image->bytes().data(), old_pages);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), image->bytes().begin()));
  std::fill(image->bytes().begin(), image->bytes().end(), 0xee);

  // The lent pages still hold what was lent, though the image was written and its old mapping
  // is gone.
  std::vector<uint8_t> read_back(static_cast<size_t>(lent_bytes));
  ASSERT_EQ(read(pipe_read.get(), read_back.data(), read_back.size()), lent_bytes);
  EXPECT_TRUE(std::equal(read_back.begin(), read_back.end(), before.begin()));
}

TEST(HostImage, MovingASmallImageChangesNothing) {
  Result<HostImage> image = HostImage::Create(16, 16, kXrgb);
  ASSERT_TRUE(image);
  image->bytes()[5] = 9;
  const uint8_t* pixels = image->bytes().data();

  ASSERT_TRUE(image->MoveToNewPages());

  EXPECT_EQ(image->bytes().data(), pixels);
  EXPECT_EQ(image->bytes()[5], 9);
}

}  // namespace
}  // namespace vgpu::renderer::software2d
