#include "renderer/software2d/pixel_conversion.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "gpu/protocol.h"
#include "renderer/software2d/pixel_format.h"

namespace vgpu::renderer::software2d {
namespace {

using gpu::Format;

struct Color {
  uint8_t red;
  uint8_t green;
  uint8_t blue;
  uint8_t alpha;  // Also the value of an X byte.
};

// A format and the order of its bytes in memory, read off the virtio name (B8G8R8A8: B first).
struct FormatCase {
  Format format;
  const char* byte_order;  // Four of 'R', 'G', 'B', 'A', 'X'.
};

constexpr FormatCase kFormats[] = {
    {Format::kB8G8R8A8Unorm, "BGRA"}, {Format::kB8G8R8X8Unorm, "BGRX"},
    {Format::kA8R8G8B8Unorm, "ARGB"}, {Format::kX8R8G8B8Unorm, "XRGB"},
    {Format::kR8G8B8A8Unorm, "RGBA"}, {Format::kX8B8G8R8Unorm, "XBGR"},
    {Format::kA8B8G8R8Unorm, "ABGR"}, {Format::kR8G8B8X8Unorm, "RGBX"},
};

std::array<uint8_t, 4> Encode(const char* byte_order, Color color) {
  std::array<uint8_t, 4> bytes{};
  for (size_t index = 0; index < 4; ++index) {
    switch (byte_order[index]) {
      case 'R':
        bytes[index] = color.red;
        break;
      case 'G':
        bytes[index] = color.green;
        break;
      case 'B':
        bytes[index] = color.blue;
        break;
      default:
        bytes[index] = color.alpha;
        break;
    }
  }
  return bytes;
}

// 4-byte aligned storage for pixels (std::vector<uint8_t> does not promise alignment).
class PixelBuffer {
 public:
  explicit PixelBuffer(size_t size_bytes, uint8_t fill)
      : words_((size_bytes + 3) / 4), size_bytes_(size_bytes) {
    std::memset(words_.data(), fill, words_.size() * 4);
  }
  uint8_t* data() { return reinterpret_cast<uint8_t*>(words_.data()); }
  std::span<uint8_t> bytes() { return {data(), size_bytes_}; }
  uint8_t at(size_t offset) const {
    return reinterpret_cast<const uint8_t*>(words_.data())[offset];
  }

 private:
  std::vector<uint32_t> words_;
  size_t size_bytes_;
};

// An image whose pixel (x, y) has red = 16 * y + x, green = 0x80, blue = 0xff - red.
struct TestImage {
  TestImage(const FormatCase& format_case, uint32_t width, uint32_t height, uint32_t stride)
      : buffer(size_t{stride} * height, 0xee),
        view{.bytes = buffer.bytes(),
             .width = width,
             .height = height,
             .stride = stride,
             .format = static_cast<uint32_t>(format_case.format)} {
    for (uint32_t y = 0; y < height; ++y) {
      for (uint32_t x = 0; x < width; ++x) {
        const std::array<uint8_t, 4> pixel = Encode(format_case.byte_order, ColorAt(x, y));
        std::memcpy(buffer.data() + size_t{y} * stride + size_t{x} * 4, pixel.data(), 4);
      }
    }
  }
  static Color ColorAt(uint32_t x, uint32_t y) {
    const auto red = static_cast<uint8_t>(16 * y + x);
    return Color{red, 0x80, static_cast<uint8_t>(0xff - red), 0x20};
  }
  PixelBuffer buffer;
  ImageView view;
};

void ExpectXrgbPixel(PixelBuffer& destination, size_t offset, Color color,
                     const std::string& context) {
  // x8r8g8b8 in memory on a little-endian host: B, G, R, X (X is not defined).
  EXPECT_EQ(destination.at(offset + 0), color.blue) << context;
  EXPECT_EQ(destination.at(offset + 1), color.green) << context;
  EXPECT_EQ(destination.at(offset + 2), color.red) << context;
}

class PixelConversionFormat : public testing::TestWithParam<FormatCase> {};

TEST_P(PixelConversionFormat, RedPixelBecomesXrgbRed) {
  const FormatCase format_case = GetParam();
  PixelBuffer source(4, 0);
  const std::array<uint8_t, 4> red = Encode(format_case.byte_order, Color{0xff, 0, 0, 0xff});
  std::memcpy(source.data(), red.data(), 4);
  const ImageView view{.bytes = source.bytes(),
                       .width = 1,
                       .height = 1,
                       .stride = 4,
                       .format = static_cast<uint32_t>(format_case.format)};
  PixelBuffer destination(4, 0x55);

  Result<void> converted =
      ConvertToXrgb8888(view, virtio_gpu::Rect{0, 0, 1, 1}, destination.bytes(), 4);

  ASSERT_TRUE(converted) << converted.error().message;
  uint32_t pixel = 0;
  std::memcpy(&pixel, destination.data(), 4);
  EXPECT_EQ(pixel & 0x00ffffff, 0x00ff0000u) << format_case.byte_order;
}

TEST_P(PixelConversionFormat, EveryChannelLandsInItsXrgbByte) {
  // Distinct channel values (and alpha 0x20, below the colour values) catch swapped channels
  // and any premultiplication.
  const FormatCase format_case = GetParam();
  TestImage image(format_case, 3, 2, 12);
  PixelBuffer destination(24, 0x55);

  Result<void> converted =
      ConvertToXrgb8888(image.view, virtio_gpu::Rect{0, 0, 3, 2}, destination.bytes(), 12);

  ASSERT_TRUE(converted) << converted.error().message;
  for (uint32_t y = 0; y < 2; ++y) {
    for (uint32_t x = 0; x < 3; ++x) {
      ExpectXrgbPixel(destination, y * 12 + x * 4, TestImage::ColorAt(x, y),
                      std::string(format_case.byte_order) + " at " + std::to_string(x) + "," +
                          std::to_string(y));
    }
  }
}

TEST_P(PixelConversionFormat, SubRectangleWithPaddedStrides) {
  // Source rows carry 8 bytes of padding, destination rows 12; neither padding may be read into
  // or written over.
  const FormatCase format_case = GetParam();
  TestImage image(format_case, 5, 4, 5 * 4 + 8);
  constexpr uint32_t kDestinationStride = 2 * 4 + 12;
  PixelBuffer destination(3 * kDestinationStride, 0x55);

  Result<void> converted =
      ConvertToXrgb8888(image.view, virtio_gpu::Rect{.x = 2, .y = 1, .width = 2, .height = 3},
                        destination.bytes(), kDestinationStride);

  ASSERT_TRUE(converted) << converted.error().message;
  for (uint32_t row = 0; row < 3; ++row) {
    for (uint32_t column = 0; column < 2; ++column) {
      ExpectXrgbPixel(destination, row * kDestinationStride + column * 4,
                      TestImage::ColorAt(2 + column, 1 + row),
                      std::string(format_case.byte_order) + " row " + std::to_string(row));
    }
    for (uint32_t padding = 8; padding < kDestinationStride; ++padding) {
      EXPECT_EQ(destination.at(row * kDestinationStride + padding), 0x55) << row << "," << padding;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVirtioFormats, PixelConversionFormat, testing::ValuesIn(kFormats),
                         [](const testing::TestParamInfo<FormatCase>& info) {
                           return std::string(info.param.byte_order);
                         });

constexpr FormatCase kNative = kFormats[1];     // B8G8R8X8: the copy path.
constexpr FormatCase kConverted = kFormats[4];  // R8G8B8A8: the pixman path.

TEST(PixelConversion, EmptyRectangleWritesNothing) {
  TestImage image(kConverted, 4, 4, 16);
  PixelBuffer destination(4, 0x55);

  ASSERT_TRUE(ConvertToXrgb8888(image.view, virtio_gpu::Rect{1, 1, 0, 3}, destination.bytes(), 4));
  ASSERT_TRUE(ConvertToXrgb8888(image.view, virtio_gpu::Rect{1, 1, 3, 0}, destination.bytes(), 4));

  EXPECT_EQ(destination.at(0), 0x55);
}

TEST(PixelConversion, RejectsUnknownFormat) {
  TestImage image(kNative, 4, 4, 16);
  image.view.format = 5;
  PixelBuffer destination(64, 0);

  Result<void> converted =
      ConvertToXrgb8888(image.view, virtio_gpu::Rect{0, 0, 4, 4}, destination.bytes(), 16);

  ASSERT_FALSE(converted);
  EXPECT_EQ(converted.error().kind, ErrorKind::kInvalidArgument);
}

TEST(PixelConversion, RejectsRectanglesOutsideTheSource) {
  TestImage image(kConverted, 4, 4, 16);
  PixelBuffer destination(1024, 0x55);
  const virtio_gpu::Rect outside[] = {
      {.x = 1, .y = 0, .width = 4, .height = 1},           // x + width past the right edge.
      {.x = 0, .y = 3, .width = 1, .height = 2},           // y + height past the bottom.
      {.x = 0xffffffff, .y = 0, .width = 2, .height = 1},  // x + width wraps in 32 bits.
      {.x = 0, .y = 0xfffffffe, .width = 1, .height = 3},  // y + height wraps in 32 bits.
      {.x = 4, .y = 0, .width = 1, .height = 1},           // Starts just outside.
  };
  for (const virtio_gpu::Rect& rect : outside) {
    Result<void> converted = ConvertToXrgb8888(image.view, rect, destination.bytes(), 64);

    ASSERT_FALSE(converted) << rect.x << "," << rect.y;
    EXPECT_EQ(converted.error().kind, ErrorKind::kInvalidArgument);
  }
  EXPECT_EQ(destination.at(0), 0x55);
}

TEST(PixelConversion, RejectsAShortDestination) {
  TestImage image(kNative, 4, 4, 16);
  // 4 rows of 16 bytes need 64 bytes with stride 16; give 63.
  PixelBuffer destination(63, 0x55);

  Result<void> converted =
      ConvertToXrgb8888(image.view, virtio_gpu::Rect{0, 0, 4, 4}, destination.bytes(), 16);

  ASSERT_FALSE(converted);
  EXPECT_EQ(destination.at(0), 0x55);
}

TEST(PixelConversion, RejectsADestinationStrideBelowTheRow) {
  TestImage image(kNative, 4, 4, 16);
  PixelBuffer destination(64, 0x55);

  EXPECT_FALSE(
      ConvertToXrgb8888(image.view, virtio_gpu::Rect{0, 0, 4, 4}, destination.bytes(), 12));
  EXPECT_FALSE(
      ConvertToXrgb8888(image.view, virtio_gpu::Rect{0, 0, 3, 4}, destination.bytes(), 14));
}

TEST(PixelConversion, RejectsAnInconsistentSourceView) {
  TestImage image(kConverted, 4, 4, 16);
  PixelBuffer destination(64, 0);

  ImageView short_bytes = image.view;
  short_bytes.bytes = short_bytes.bytes.first(63);
  EXPECT_FALSE(
      ConvertToXrgb8888(short_bytes, virtio_gpu::Rect{0, 0, 1, 1}, destination.bytes(), 4));

  ImageView narrow_stride = image.view;
  narrow_stride.stride = 12;
  EXPECT_FALSE(
      ConvertToXrgb8888(narrow_stride, virtio_gpu::Rect{0, 0, 1, 1}, destination.bytes(), 4));

  ImageView odd_stride = image.view;
  odd_stride.stride = 17;
  odd_stride.height = 3;
  EXPECT_FALSE(ConvertToXrgb8888(odd_stride, virtio_gpu::Rect{0, 0, 1, 1}, destination.bytes(), 4));
}

TEST(PixelConversion, RejectsAnUnalignedDestination) {
  TestImage image(kConverted, 4, 4, 16);
  PixelBuffer destination(68, 0);

  EXPECT_FALSE(ConvertToXrgb8888(image.view, virtio_gpu::Rect{0, 0, 4, 4},
                                 destination.bytes().subspan(1), 16));
}

}  // namespace
}  // namespace vgpu::renderer::software2d
