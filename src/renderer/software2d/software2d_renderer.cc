#include "renderer/software2d/software2d_renderer.h"

#include <pixman.h>

#include <memory>

#include "base/checked_math.h"
#include "renderer/software2d/pixel_conversion.h"
#include "renderer/software2d/pixel_format.h"

namespace vgpu::renderer::software2d {
namespace {

struct PixmanImageDeleter {
  void operator()(pixman_image_t* image) const { pixman_image_unref(image); }
};
using PixmanImage = std::unique_ptr<pixman_image_t, PixmanImageDeleter>;

}  // namespace

Result<void> Software2dRenderer::CreateResource(const ResourceParams& params) {
  if (params.target != kTargetTexture2d || std::max<uint32_t>(params.depth, 1) != 1 ||
      std::max<uint32_t>(params.array_size, 1) != 1 || params.last_level != 0 ||
      params.nr_samples > 1) {
    return MakeError(ErrorKind::kInvalidArgument, "not a 2D texture");
  }
  Result<HostImage> image = HostImage::Create(params.width, params.height, params.format);
  if (!image) return ErrorOf(image);
  resources_.insert_or_assign(params.id, Resource{std::move(*image), {}});
  return {};
}

void Software2dRenderer::DestroyResource(ResourceId resource) { resources_.erase(resource); }

Result<void> Software2dRenderer::CreateBlob(const BlobParams& params, const GuestBacking* backing) {
  if (params.blob_mem != virtio_gpu::blob::kBlobMemGuest || backing == nullptr) {
    return MakeError(ErrorKind::kUnsupported, "the software renderer has guest blobs only");
  }
  return {};
}

Result<void> Software2dRenderer::AttachBacking(ResourceId resource, const GuestBacking& backing) {
  At(resource).backing = backing;
  return {};
}

void Software2dRenderer::DetachBacking(ResourceId resource) { At(resource).backing = {}; }

Result<void> Software2dRenderer::TransferToHost(const TransferParams& params) {
  Resource& resource = At(params.resource);
  HostImage& image = resource.image;
  const Rect rect{params.box.x, params.box.y, params.box.w, params.box.h};
  if (!virtio_gpu::RectInside(rect, image.width(), image.height())) {
    return MakeError(ErrorKind::kInvalidArgument, "transfer rectangle outside the resource");
  }
  if (rect.width == 0 || rect.height == 0) return {};
  const uint64_t stride = image.stride();
  const uint64_t row_bytes = uint64_t{rect.width} * kBytesPerPixel;
  // The backing's row r starts at offset + r * stride (QEMU's layout); the last row must end
  // inside the backing. Checked once, before any byte moves.
  std::optional<uint64_t> last_row = CheckedMul<uint64_t>(stride, rect.height - 1);
  std::optional<uint64_t> last_row_start =
      last_row ? CheckedAdd<uint64_t>(params.offset, *last_row) : std::nullopt;
  std::optional<uint64_t> end =
      last_row_start ? CheckedAdd<uint64_t>(*last_row_start, row_bytes) : std::nullopt;
  if (!end || *end > resource.backing.size()) {
    return MakeError(ErrorKind::kOutOfRange, "transfer reads past the backing");
  }
  uint8_t* destination = image.bytes().data();
  const uint64_t first = uint64_t{rect.y} * stride + uint64_t{rect.x} * kBytesPerPixel;
  // In range (checked above): the copies cannot fail.
  if (rect.x == 0 && rect.width == image.width()) {
    // Whole rows: one contiguous copy.
    (void)resource.backing.CopyOut(params.offset,
                                   std::span<uint8_t>(destination + first, stride * rect.height));
    return {};
  }
  for (uint32_t row = 0; row < rect.height; ++row) {
    (void)resource.backing.CopyOut(
        params.offset + row * stride,
        std::span<uint8_t>(destination + first + row * stride, row_bytes));
  }
  return {};
}

Result<void> Software2dRenderer::TransferFromHost(const TransferParams&) {
  return MakeError(ErrorKind::kUnsupported, "a 2D resource has no transfer from the host");
}

Result<void> Software2dRenderer::ReadRect(ResourceId resource, const Rect& rect,
                                          std::span<uint8_t> destination, uint32_t stride) {
  return ConvertToXrgb8888(At(resource).image.view(), rect, destination, stride);
}

std::optional<DisplayRows> Software2dRenderer::DirectRows(ResourceId resource, const Rect& rect) {
  const HostImage& image = At(resource).image;
  if (!IsDisplayNative(image.format()) ||
      !virtio_gpu::RectInside(rect, image.width(), image.height())) {
    return std::nullopt;
  }
  const uint64_t offset = uint64_t{rect.y} * image.stride() + uint64_t{rect.x} * kBytesPerPixel;
  return DisplayRows{.first_pixel = image.bytes().data() + offset,
                     .stride = image.stride(),
                     .lendable = image.lendable()};
}

Result<void> Software2dRenderer::MovePixelsToNewPages(ResourceId resource) {
  return At(resource).image.MoveToNewPages();
}

Result<CursorImage> Software2dRenderer::ReadCursor(ResourceId resource) {
  HostImage& image = At(resource).image;
  if (image.width() != virtio_gpu::kCursorSize || image.height() != virtio_gpu::kCursorSize) {
    return MakeError(ErrorKind::kInvalidArgument, "a cursor is 64x64");
  }
  // CURSOR_UPDATE carries a8r8g8b8: converted with pixman, keeping alpha.
  CursorImage pixels{};
  const std::optional<pixman_format_code_t> format = PixmanFormatFor(image.format());
  PixmanImage source(pixman_image_create_bits(
      *format, virtio_gpu::kCursorSize, virtio_gpu::kCursorSize,
      reinterpret_cast<uint32_t*>(image.bytes().data()), static_cast<int>(image.stride())));
  PixmanImage destination(pixman_image_create_bits(PIXMAN_a8r8g8b8, virtio_gpu::kCursorSize,
                                                   virtio_gpu::kCursorSize, pixels.data(),
                                                   virtio_gpu::kCursorSize * 4));
  if (!source || !destination) {
    return MakeError(ErrorKind::kResourceExhausted, "pixman_image_create_bits failed");
  }
  pixman_image_composite32(PIXMAN_OP_SRC, source.get(), nullptr, destination.get(), 0, 0, 0, 0, 0,
                           0, virtio_gpu::kCursorSize, virtio_gpu::kCursorSize);
  return pixels;
}

const HostImage* Software2dRenderer::Image(ResourceId resource) const {
  auto found = resources_.find(resource);
  return found == resources_.end() ? nullptr : &found->second.image;
}

}  // namespace vgpu::renderer::software2d
