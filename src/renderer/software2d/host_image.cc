#include "renderer/software2d/host_image.h"

#include <sys/mman.h>

#include <cstring>
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
  if (*size >= kLendableImageBytes) {
    // Fresh zero pages, not touched until written.
    Result<MappedRegion> mapped = MappedRegion::MapAnonymous(*size);
    if (!mapped) return MakeError(ErrorKind::kResourceExhausted, "cannot map image pixels");
    // Best effort, for the 2 MiB-aligned parts of a frame-sized image (THP is "madvise" on
    // Debian): the TRANSFER copy into it and the lending of its pages take fewer TLB misses and
    // page references (docs/PERFORMANCE.md). Never more memory than the mapping's own.
    madvise(mapped->data(), *size, MADV_HUGEPAGE);
    return HostImage(width, height, format, *stride, static_cast<size_t>(*size), nullptr,
                     std::move(*mapped));
  }
  std::unique_ptr<uint8_t[], FreeDeleter> heap(static_cast<uint8_t*>(std::calloc(*size, 1)));
  if (!heap) return MakeError(ErrorKind::kResourceExhausted, "cannot allocate image pixels");
  return HostImage(width, height, format, *stride, static_cast<size_t>(*size), std::move(heap),
                   MappedRegion());
}

Result<void> HostImage::MoveToNewPages() {
  if (!lendable()) return {};
  Result<MappedRegion> mapped = MappedRegion::MapAnonymous(size_bytes_);
  if (!mapped) return MakeError(ErrorKind::kResourceExhausted, "cannot map image pixels");
  std::memcpy(mapped->data(), mapped_.data(), size_bytes_);
  mapped_ = std::move(*mapped);  // The old pages are unmapped; lent ones stay with the kernel.
  return {};
}

HostImage::HostImage(uint32_t width, uint32_t height, uint32_t format, uint32_t stride,
                     size_t size_bytes, std::unique_ptr<uint8_t[], FreeDeleter> heap,
                     MappedRegion mapped)
    : width_(width),
      height_(height),
      format_(format),
      stride_(stride),
      size_bytes_(size_bytes),
      heap_(std::move(heap)),
      mapped_(std::move(mapped)) {}

HostImage::HostImage(HostImage&& other) noexcept
    : width_(std::exchange(other.width_, 0)),
      height_(std::exchange(other.height_, 0)),
      format_(other.format_),
      stride_(std::exchange(other.stride_, 0)),
      size_bytes_(std::exchange(other.size_bytes_, 0)),
      heap_(std::move(other.heap_)),
      mapped_(std::move(other.mapped_)) {}

HostImage& HostImage::operator=(HostImage&& other) noexcept {
  if (this != &other) {
    width_ = std::exchange(other.width_, 0);
    height_ = std::exchange(other.height_, 0);
    format_ = other.format_;
    stride_ = std::exchange(other.stride_, 0);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
    heap_ = std::move(other.heap_);
    mapped_ = std::move(other.mapped_);
  }
  return *this;
}

ImageView HostImage::view() const {
  return ImageView{
      .bytes = bytes(), .width = width_, .height = height_, .stride = stride_, .format = format_};
}

}  // namespace vgpu::renderer::software2d
