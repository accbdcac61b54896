// VirglRenderer's read-back half: resource info, ReadRect for the display, cursor images.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "base/checked_math.h"
#include "base/log.h"
#include "renderer/software2d/pixel_conversion.h"
#include "renderer/software2d/pixel_format.h"
#include "renderer/virgl/virgl_api.h"
#include "renderer/virgl/virgl_errors.h"
#include "renderer/virgl/virgl_renderer.h"

namespace vgpu::renderer::virgl {

bool ResourceInfo::y_0_top() const { return (flags & kResourceFlagY0Top) != 0; }

Result<ResourceInfo> VirglRenderer::Info(ResourceId resource) const {
  PaddedResourceInfo padded{};
  const int result =
      virgl_renderer_resource_get_info(static_cast<int>(resource.value()), &padded.info);
  if (result != 0) {
    return VirglFailure("resource info of " + std::to_string(resource.value()), result);
  }
  return ResourceInfo{
      .id = resource,
      .virgl_format = padded.info.virgl_format,
      .width = padded.info.width,
      .height = padded.info.height,
      .depth = padded.info.depth,
      .flags = padded.info.flags,
      .texture_id = padded.info.tex_id,
      .stride = padded.info.stride,
      .drm_fourcc = padded.info.drm_fourcc,
  };
}

std::optional<DisplayRows> VirglRenderer::DirectRows(ResourceId resource, const Rect& rect) {
  if (!pack_reader_) return std::nullopt;
  Result<ResourceInfo> info = Info(resource);
  if (!info || !software2d::IsDisplayNative(info->virgl_format) || info->depth != 1 ||
      info->texture_id == 0) {
    return std::nullopt;
  }
  virgl_renderer_force_ctx_0();
  Result<DisplayRows> rows =
      pack_reader_->Read(info->texture_id, info->width, info->height, rect, info->y_0_top());
  if (!rows && rows.error().kind == ErrorKind::kTimedOut) {
    LogWarning("virglrenderer: %s; this flush is read back with virgl_renderer_transfer_read_iov",
               rows.error().message.c_str());
    return std::nullopt;
  }
  if (!rows) {
    // Not this driver's way: ReadRect from now on (virgl_renderer_transfer_read_iov).
    LogWarning("virglrenderer: %s; reading back with virgl_renderer_transfer_read_iov instead",
               rows.error().message.c_str());
    pack_reader_.reset();
    return std::nullopt;
  }
  return *rows;
}

void VirglRenderer::ReleaseRows() {
  if (!pack_reader_) return;
  virgl_renderer_force_ctx_0();
  pack_reader_->Release();
}

Result<void> VirglRenderer::ReadRect(ResourceId resource, const Rect& rect,
                                     std::span<uint8_t> destination, uint32_t destination_stride) {
  Result<ResourceInfo> info = Info(resource);
  if (!info) return ErrorOf(info);
  if (!software2d::PixmanFormatFor(info->virgl_format)) {
    return MakeError(ErrorKind::kUnsupported,
                     "resource " + std::to_string(resource.value()) + " has virgl format " +
                         std::to_string(info->virgl_format) +
                         ", not one of the eight 32-bit formats the display can take");
  }
  const std::optional<uint32_t> right = CheckedAdd<uint32_t>(rect.x, rect.width);
  const std::optional<uint32_t> bottom = CheckedAdd<uint32_t>(rect.y, rect.height);
  if (!right || !bottom || *right > info->width || *bottom > info->height) {
    return MakeError(ErrorKind::kOutOfRange, "read rectangle outside the resource");
  }
  if (rect.width == 0 || rect.height == 0) return {};
  const std::optional<uint32_t> row_bytes =
      CheckedMul<uint32_t>(rect.width, software2d::kBytesPerPixel);
  const std::optional<size_t> total = CheckedMul<size_t>(size_t{*row_bytes}, rect.height);
  if (!row_bytes || !total) {
    return MakeError(ErrorKind::kOutOfRange, "read rectangle too large");
  }

  // Formats the display takes as they are (B8G8R8X8, B8G8R8A8) are read straight into the
  // caller's rows, at its stride: one copy per frame fewer than reading packed and converting.
  // Others are read packed into a host buffer, then converted. The iovec given here overrides any
  // guest backing. For a Y_0_TOP resource vrend inverts while reading (GL_PACK_INVERT_MESA), so
  // the rows come in the guest's order either way: no flip here.
  const bool direct = software2d::IsDisplayNative(info->virgl_format);
  iovec target{};
  uint32_t target_stride = *row_bytes;
  if (direct) {
    // The last row needs only its own bytes, not a whole stride.
    const std::optional<size_t> needed =
        CheckedAdd<size_t>(size_t{destination_stride} * (rect.height - 1), size_t{*row_bytes});
    if (destination_stride < *row_bytes || !needed || *needed > destination.size()) {
      return MakeError(ErrorKind::kOutOfRange, "read-back destination too small");
    }
    target = iovec{.iov_base = destination.data(), .iov_len = *needed};
    target_stride = destination_stride;
  } else {
    read_buffer_.resize(*total);
    target = iovec{.iov_base = read_buffer_.data(), .iov_len = read_buffer_.size()};
  }
  virgl_box box{.x = rect.x, .y = rect.y, .z = 0, .w = rect.width, .h = rect.height, .d = 1};
  virgl_renderer_force_ctx_0();
  const int result = virgl_renderer_transfer_read_iov(resource.value(), 0, 0, target_stride, 0,
                                                      &box, 0, &target, 1);
  if (result != 0) {
    return VirglFailure("reading back resource " + std::to_string(resource.value()), result);
  }

  if (direct) return {};
  // Convert into the caller's layout.
  const software2d::ImageView packed{.bytes = read_buffer_,
                                     .width = rect.width,
                                     .height = rect.height,
                                     .stride = *row_bytes,
                                     .format = info->virgl_format};
  return software2d::ConvertToXrgb8888(
      packed, Rect{.x = 0, .y = 0, .width = rect.width, .height = rect.height}, destination,
      destination_stride);
}

Result<CursorImage> VirglRenderer::ReadCursor(ResourceId resource) {
  uint32_t width = 0;
  uint32_t height = 0;
  virgl_renderer_force_ctx_0();
  std::unique_ptr<void, decltype(&std::free)> pixels(
      virgl_renderer_get_cursor_data(resource.value(), &width, &height), &std::free);
  if (!pixels) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource " + std::to_string(resource.value()) + " has no cursor image");
  }
  if (width != virtio_gpu::kCursorSize || height != virtio_gpu::kCursorSize) {
    return MakeError(ErrorKind::kInvalidArgument, "cursor resource is " + std::to_string(width) +
                                                      "x" + std::to_string(height) + ", not 64x64");
  }
  CursorImage image{};
  // Bounds: virgl allocated width * height * 4 bytes, which was just checked to be 64 * 64 * 4.
  std::memcpy(image.data(), pixels.get(), sizeof(image));
  // vrend reads the texture in GL order and always turns the rows over, which yields the guest's
  // order only for Y_0_TOP resources (what RESOURCE_CREATE_2D makes). Undo it for the others.
  Result<ResourceInfo> info = Info(resource);
  if (!info) return ErrorOf(info);
  if (!info->y_0_top()) {
    for (uint32_t row = 0; row < virtio_gpu::kCursorSize / 2; ++row) {
      std::swap_ranges(image.begin() + row * virtio_gpu::kCursorSize,
                       image.begin() + (row + 1) * virtio_gpu::kCursorSize,
                       image.end() - (row + 1) * virtio_gpu::kCursorSize);
    }
  }
  return image;
}

}  // namespace vgpu::renderer::virgl
