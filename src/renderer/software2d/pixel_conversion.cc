#include "renderer/software2d/pixel_conversion.h"

#include <pixman.h>

#include <climits>
#include <cstring>
#include <memory>

#include "base/checked_math.h"
#include "renderer/software2d/pixel_format.h"

namespace vgpu::renderer::software2d {
namespace {

struct PixmanImageDeleter {
  void operator()(pixman_image_t* image) const { pixman_image_unref(image); }
};
using PixmanImage = std::unique_ptr<pixman_image_t, PixmanImageDeleter>;

bool IsWordAligned(const void* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % alignof(uint32_t) == 0;
}

// pixman takes int sizes and strides.
bool FitsInt(uint64_t value) { return value <= static_cast<uint64_t>(INT_MAX); }

// Bytes spanned by `rows` rows of `row_bytes` each, `stride` apart (0 for no rows).
uint64_t SpanBytes(uint64_t rows, uint64_t stride, uint64_t row_bytes) {
  // Both factors are below 2^32, so the product cannot wrap a uint64_t.
  return rows == 0 ? 0 : (rows - 1) * stride + row_bytes;
}

Result<void> ValidateSource(const ImageView& source) {
  const uint64_t row_bytes = uint64_t{source.width} * kBytesPerPixel;
  if (source.stride % kBytesPerPixel != 0 || source.stride < row_bytes || !FitsInt(source.stride)) {
    return MakeError(ErrorKind::kInvalidArgument, "source stride does not fit its width");
  }
  if (SpanBytes(source.height, source.stride, row_bytes) > source.bytes.size()) {
    return MakeError(ErrorKind::kInvalidArgument, "source bytes shorter than its size");
  }
  if (!IsWordAligned(source.bytes.data())) {
    return MakeError(ErrorKind::kInvalidArgument, "source pixels not 4-byte aligned");
  }
  return {};
}

Result<void> ValidateDestination(const virtio_gpu::Rect& rect, std::span<uint8_t> destination,
                                 uint32_t destination_stride) {
  const uint64_t row_bytes = uint64_t{rect.width} * kBytesPerPixel;
  if (destination_stride % kBytesPerPixel != 0 || destination_stride < row_bytes ||
      !FitsInt(destination_stride)) {
    return MakeError(ErrorKind::kInvalidArgument, "destination stride below the row size");
  }
  if (SpanBytes(rect.height, destination_stride, row_bytes) > destination.size()) {
    return MakeError(ErrorKind::kInvalidArgument, "destination too short for the rectangle");
  }
  if (!IsWordAligned(destination.data())) {
    return MakeError(ErrorKind::kInvalidArgument, "destination not 4-byte aligned");
  }
  return {};
}

void CopyRows(const uint8_t* source, uint32_t source_stride, const virtio_gpu::Rect& rect,
              uint8_t* destination, uint32_t destination_stride) {
  const size_t row_bytes = size_t{rect.width} * kBytesPerPixel;
  for (uint32_t row = 0; row < rect.height; ++row) {
    std::memcpy(destination + size_t{row} * destination_stride,
                source + size_t{row} * source_stride, row_bytes);
  }
}

Result<void> CompositeRows(const uint8_t* source, uint32_t source_stride,
                           pixman_format_code_t source_format, const virtio_gpu::Rect& rect,
                           uint8_t* destination, uint32_t destination_stride) {
  const int width = static_cast<int>(rect.width);
  const int height = static_cast<int>(rect.height);
  // pixman wants non-const bits; a PIXMAN_OP_SRC source is only read.
  PixmanImage source_image(pixman_image_create_bits(
      source_format, width, height, reinterpret_cast<uint32_t*>(const_cast<uint8_t*>(source)),
      static_cast<int>(source_stride)));
  PixmanImage destination_image(pixman_image_create_bits(PIXMAN_x8r8g8b8, width, height,
                                                         reinterpret_cast<uint32_t*>(destination),
                                                         static_cast<int>(destination_stride)));
  if (!source_image || !destination_image) {
    return MakeError(ErrorKind::kResourceExhausted, "pixman_image_create_bits failed");
  }
  pixman_image_composite32(PIXMAN_OP_SRC, source_image.get(), nullptr, destination_image.get(), 0,
                           0, 0, 0, 0, 0, width, height);
  return {};
}

}  // namespace

Result<void> ConvertToXrgb8888(const ImageView& source, const virtio_gpu::Rect& rect,
                               std::span<uint8_t> destination, uint32_t destination_stride) {
  const std::optional<pixman_format_code_t> source_format = PixmanFormatFor(source.format);
  if (!source_format) return MakeError(ErrorKind::kInvalidArgument, "unknown pixel format");
  if (Result<void> valid = ValidateSource(source); !valid) return valid;
  if (rect.width == 0 || rect.height == 0) return {};
  if (!RangeFits<uint64_t>(rect.x, rect.width, source.width) ||
      !RangeFits<uint64_t>(rect.y, rect.height, source.height)) {
    return MakeError(ErrorKind::kInvalidArgument, "rectangle outside the source image");
  }
  if (!FitsInt(rect.height)) {  // rect.width <= stride / 4 fits already.
    return MakeError(ErrorKind::kInvalidArgument, "rectangle too tall for pixman");
  }
  if (Result<void> valid = ValidateDestination(rect, destination, destination_stride); !valid) {
    return valid;
  }

  // Bounds: rect lies inside the source (checked above) and ValidateSource proved the view's
  // bytes cover every row, so this offset and the rows after it are inside source.bytes.
  const uint8_t* first_pixel =
      source.bytes.data() + uint64_t{rect.y} * source.stride + uint64_t{rect.x} * kBytesPerPixel;
  if (IsDisplayNative(source.format)) {
    CopyRows(first_pixel, source.stride, rect, destination.data(), destination_stride);
    return {};
  }
  return CompositeRows(first_pixel, source.stride, *source_format, rect, destination.data(),
                       destination_stride);
}

}  // namespace vgpu::renderer::software2d
