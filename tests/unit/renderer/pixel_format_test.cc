#include "renderer/software2d/pixel_format.h"

#include <gtest/gtest.h>

#include "gpu/protocol.h"

namespace vgpu::renderer::software2d {
namespace {

using gpu::Format;

uint32_t Value(Format format) { return static_cast<uint32_t>(format); }

// The table QEMU uses on a little-endian host (virtio_gpu_get_pixman_format, PIXMAN_BE_*).
TEST(PixelFormat, MapsEveryVirtioFormatAsQemuDoes) {
  EXPECT_EQ(PixmanFormatFor(Value(Format::kB8G8R8A8Unorm)), PIXMAN_a8r8g8b8);
  EXPECT_EQ(PixmanFormatFor(Value(Format::kB8G8R8X8Unorm)), PIXMAN_x8r8g8b8);
  EXPECT_EQ(PixmanFormatFor(Value(Format::kA8R8G8B8Unorm)), PIXMAN_b8g8r8a8);
  EXPECT_EQ(PixmanFormatFor(Value(Format::kX8R8G8B8Unorm)), PIXMAN_b8g8r8x8);
  EXPECT_EQ(PixmanFormatFor(Value(Format::kR8G8B8A8Unorm)), PIXMAN_a8b8g8r8);
  EXPECT_EQ(PixmanFormatFor(Value(Format::kX8B8G8R8Unorm)), PIXMAN_r8g8b8x8);
  EXPECT_EQ(PixmanFormatFor(Value(Format::kA8B8G8R8Unorm)), PIXMAN_r8g8b8a8);
  EXPECT_EQ(PixmanFormatFor(Value(Format::kR8G8B8X8Unorm)), PIXMAN_x8b8g8r8);
}

TEST(PixelFormat, RejectsValuesOutsideTheEnum) {
  EXPECT_FALSE(PixmanFormatFor(0));
  EXPECT_FALSE(PixmanFormatFor(5));
  EXPECT_FALSE(PixmanFormatFor(66));
  EXPECT_FALSE(PixmanFormatFor(0xffffffff));
}

TEST(PixelFormat, EveryFormatIsThirtyTwoBitsPerPixel) {
  for (Format format : {Format::kB8G8R8A8Unorm, Format::kB8G8R8X8Unorm, Format::kA8R8G8B8Unorm,
                        Format::kX8R8G8B8Unorm, Format::kR8G8B8A8Unorm, Format::kX8B8G8R8Unorm,
                        Format::kA8B8G8R8Unorm, Format::kR8G8B8X8Unorm}) {
    EXPECT_EQ(PIXMAN_FORMAT_BPP(*PixmanFormatFor(Value(format))), kBytesPerPixel * 8);
  }
}

TEST(PixelFormat, OnlyBgrxAndBgraAreDisplayNative) {
  EXPECT_TRUE(IsDisplayNative(Value(Format::kB8G8R8X8Unorm)));
  EXPECT_TRUE(IsDisplayNative(Value(Format::kB8G8R8A8Unorm)));
  EXPECT_FALSE(IsDisplayNative(Value(Format::kX8R8G8B8Unorm)));
  EXPECT_FALSE(IsDisplayNative(Value(Format::kR8G8B8A8Unorm)));
  EXPECT_FALSE(IsDisplayNative(0));
}

}  // namespace
}  // namespace vgpu::renderer::software2d
