// GfxstreamBackend's read-back half: ReadRect for the display and cursor images, through
// stream_renderer_transfer_read_iov into a host buffer.
//
// gfxstream's transfer contract (VirtioGpuResource::TransferWithIov in its host
// code): the iovecs are addressed as the whole resource, rows width * bytes-per-pixel apart, and
// gfxstream copies only the bytes from the box's first pixel to its last, i.e. the box's rows;
// it ignores the stride and offset arguments. A buffer of just the rectangle would be too short
// ("write request overflowed iovs"), so the buffer reaches the end of the box and only the box's
// range is written and used. (gfxstream itself refreshes its copy of the whole colour buffer from
// the GPU on every read; that happens inside the library and cannot be narrowed from here.)
#include <cstring>
#include <string>

#include "base/checked_math.h"
#include "renderer/gfxstream/gfxstream_backend.h"
#include "renderer/software2d/pixel_conversion.h"
#include "renderer/software2d/pixel_format.h"

namespace vgpu::renderer::gfxstream {

Result<size_t> GfxstreamBackend::ReadBack(ResourceId resource, const ResourceState& state,
                                          const Rect& rect) {
  const std::string name = "resource " + std::to_string(resource.value());
  // gfxstream reads back through its copy of the backing, which exists only while one is
  // attached; Linux guests attach one to every 3D resource.
  if (state.backing.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     name + " has no backing (gfxstream reads back through it)");
  }
  // Offsets as gfxstream computes them, in 64 bits: the caller checked the rectangle against the
  // resource, so none of this can wrap.
  const uint64_t row_stride = uint64_t{state.params.width} * software2d::kBytesPerPixel;
  const uint64_t start =
      uint64_t{rect.y} * row_stride + uint64_t{rect.x} * software2d::kBytesPerPixel;
  const uint64_t length =
      uint64_t{rect.height - 1} * row_stride + uint64_t{rect.width} * software2d::kBytesPerPixel;
  const uint64_t end = start + length;
  if (row_stride > UINT32_MAX) return MakeError(ErrorKind::kOutOfRange, "read-back too large");
  read_buffer_.resize(static_cast<size_t>(end));
  iovec host{.iov_base = read_buffer_.data(), .iov_len = read_buffer_.size()};
  stream_renderer_box box{
      .x = rect.x, .y = rect.y, .z = 0, .w = rect.width, .h = rect.height, .d = 1};
  const int result =
      api_.transfer_read_iov(resource.value(), 0, 0, static_cast<uint32_t>(row_stride), 0, &box,
                             /*offset=*/0, &host, 1);
  if (result != 0) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        "reading back " + name + " failed (gfxstream returned " + std::to_string(result) + ")");
  }
  return static_cast<size_t>(start);
}

Result<void> GfxstreamBackend::ReadRect(ResourceId resource, const Rect& rect,
                                        std::span<uint8_t> destination, uint32_t stride) {
  const ResourceState& state = StateOf(resource);
  const ResourceParams& params = state.params;
  if (!software2d::PixmanFormatFor(params.format)) {
    return MakeError(ErrorKind::kUnsupported,
                     "resource " + std::to_string(resource.value()) + " has format " +
                         std::to_string(params.format) +
                         ", not one of the eight 32-bit formats the display can take");
  }
  if (!virtio_gpu::RectInside(rect, params.width, params.height)) {
    return MakeError(ErrorKind::kOutOfRange, "read rectangle outside the resource");
  }
  if (rect.width == 0 || rect.height == 0) return {};

  Result<size_t> start = ReadBack(resource, state, rect);
  if (!start) return ErrorOf(start);
  const uint32_t row_stride = params.width * software2d::kBytesPerPixel;
  const software2d::ImageView rows{.bytes = std::span<const uint8_t>(read_buffer_).subspan(*start),
                                   .width = rect.width,
                                   .height = rect.height,
                                   .stride = row_stride,
                                   .format = params.format};
  return software2d::ConvertToXrgb8888(rows, Rect{0, 0, rect.width, rect.height}, destination,
                                       stride);
}

Result<CursorImage> GfxstreamBackend::ReadCursor(ResourceId resource) {
  const ResourceState& state = StateOf(resource);
  const ResourceParams& params = state.params;
  if (params.width != virtio_gpu::kCursorSize || params.height != virtio_gpu::kCursorSize ||
      !software2d::PixmanFormatFor(params.format)) {
    return MakeError(ErrorKind::kInvalidArgument, "cursor resource " +
                                                      std::to_string(resource.value()) +
                                                      " is not a 64x64 resource of 32-bit pixels");
  }
  Result<size_t> start =
      ReadBack(resource, state, Rect{0, 0, virtio_gpu::kCursorSize, virtio_gpu::kCursorSize});
  if (!start) return ErrorOf(start);
  // The whole resource, rows packed: the pixels as the resource holds them (not converted).
  CursorImage pixels;
  std::memcpy(pixels.data(), read_buffer_.data() + *start, sizeof(pixels));
  return pixels;
}

}  // namespace vgpu::renderer::gfxstream
