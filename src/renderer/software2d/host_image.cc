#include "renderer/software2d/host_image.h"

#include <optional>
#include <utility>

#include "base/checked_math.h"
#include "renderer/software2d/pixel_format.h"

namespace vgpu::renderer::software2d {

Result<HostImage> HostImage::Create(uint32_t width, uint32_t height, uint32_t format) {
  if (width == 0 || height == 0) {
    return MakeError(ErrorKind::kInvalidArgument, "image width and height must be non-zero");
  }
  if (!PixmanFormatFor(format)) {
    return MakeError(ErrorKind::kInvalidArgument, "unknown pixel format");
  }
  const std::optional<uint32_t> stride = CheckedMul<uint32_t>(width, kBytesPerPixel);
  const std::optional<uint64_t> size =
      stride ? CheckedMul<uint64_t>(*stride, height) : std::nullopt;
  if (!size || *size > kMaxHostImageBytes) {
    return MakeError(ErrorKind::kInvalidArgument, "image too large");
  }
  // calloc: zeroed pixels, and large images come from fresh zero pages without touching them.
  std::unique_ptr<uint8_t[], FreeDeleter> pixels(static_cast<uint8_t*>(std::calloc(*size, 1)));
  if (!pixels) return MakeError(ErrorKind::kResourceExhausted, "cannot allocate image pixels");
  return HostImage(width, height, format, *stride, static_cast<size_t>(*size), std::move(pixels));
}

HostImage::HostImage(uint32_t width, uint32_t height, uint32_t format, uint32_t stride,
                     size_t size_bytes, std::unique_ptr<uint8_t[], FreeDeleter> pixels)
    : width_(width),
      height_(height),
      format_(format),
      stride_(stride),
      size_bytes_(size_bytes),
      pixels_(std::move(pixels)) {}

HostImage::HostImage(HostImage&& other) noexcept
    : width_(std::exchange(other.width_, 0)),
      height_(std::exchange(other.height_, 0)),
      format_(other.format_),
      stride_(std::exchange(other.stride_, 0)),
      size_bytes_(std::exchange(other.size_bytes_, 0)),
      pixels_(std::move(other.pixels_)) {}

HostImage& HostImage::operator=(HostImage&& other) noexcept {
  if (this != &other) {
    width_ = std::exchange(other.width_, 0);
    height_ = std::exchange(other.height_, 0);
    format_ = other.format_;
    stride_ = std::exchange(other.stride_, 0);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
    pixels_ = std::move(other.pixels_);
  }
  return *this;
}

ImageView HostImage::view() const {
  return ImageView{
      .bytes = bytes(), .width = width_, .height = height_, .stride = stride_, .format = format_};
}

}  // namespace vgpu::renderer::software2d
