// GfxstreamBackend's read-back half: ReadRect for the display and cursor images, through
// stream_renderer_transfer_read_iov into a host buffer.
//
// gfxstream's transfer contract (VirtioGpuResource::TransferWithIov, renderer-apis-and-crosvm.md
// §2.4): the iovecs are addressed as the whole resource, rows width * bytes-per-pixel apart, and
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
namespace {

constexpr uint32_t kCursorSize = 64;

}  // namespace

Result<size_t> GfxstreamBackend::ReadBack(uint32_t resource_id, const ResourceState& state,
                                          uint32_t x, uint32_t y, uint32_t width, uint32_t height) {
  // gfxstream reads back through its copy of the backing, which exists only while one is
  // attached (VirtioGpuResource::AttachIov); Linux guests attach one to every 3D resource.
  if (state.backing.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource " + std::to_string(resource_id) +
                         " has no backing (gfxstream reads back through it)");
  }
  // Offsets as gfxstream computes them (GetTransferOffset / GetTransferSize), in 64 bits: the
  // caller checked the rectangle against the resource, so none of this can wrap.
  const uint64_t row_stride = uint64_t{state.params.width} * software2d::kBytesPerPixel;
  const uint64_t start = uint64_t{y} * row_stride + uint64_t{x} * software2d::kBytesPerPixel;
  const uint64_t length =
      uint64_t{height - 1} * row_stride + uint64_t{width} * software2d::kBytesPerPixel;
  const uint64_t end = start + length;
  if (row_stride > UINT32_MAX) {
    return MakeError(ErrorKind::kOutOfRange, "read-back too large");
  }
  read_buffer_.resize(static_cast<size_t>(end));
  iovec host{.iov_base = read_buffer_.data(), .iov_len = read_buffer_.size()};
  stream_renderer_box box{.x = x, .y = y, .z = 0, .w = width, .h = height, .d = 1};
  const int result =
      api_.transfer_read_iov(resource_id, 0, 0, static_cast<uint32_t>(row_stride), 0, &box,
                             /*offset=*/0, &host, 1);
  if (result != 0) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "reading back resource " + std::to_string(resource_id) +
                         " failed (gfxstream returned " + std::to_string(result) + ")");
  }
  return static_cast<size_t>(start);
}

Result<void> GfxstreamBackend::ReadRect(uint32_t resource_id, uint32_t x, uint32_t y,
                                        uint32_t width, uint32_t height,
                                        std::span<uint8_t> destination, uint32_t stride) {
  Result<ResourceState*> state = FindResource(resource_id);
  if (!state) return tl::unexpected(state.error());
  const ResourceParams& params = (*state)->params;
  if (!software2d::PixmanFormatFor(params.format)) {
    return MakeError(ErrorKind::kUnsupported,
                     "resource " + std::to_string(resource_id) + " has format " +
                         std::to_string(params.format) +
                         ", not one of the eight 32-bit formats the display can take");
  }
  const std::optional<uint32_t> right = CheckedAdd<uint32_t>(x, width);
  const std::optional<uint32_t> bottom = CheckedAdd<uint32_t>(y, height);
  if (!right || !bottom || *right > params.width || *bottom > params.height) {
    return MakeError(ErrorKind::kOutOfRange, "read rectangle outside the resource");
  }
  if (width == 0 || height == 0) return {};

  Result<size_t> start = ReadBack(resource_id, **state, x, y, width, height);
  if (!start) return tl::unexpected(start.error());
  const uint32_t row_stride = params.width * software2d::kBytesPerPixel;
  const software2d::ImageView rows{.bytes = std::span<const uint8_t>(read_buffer_).subspan(*start),
                                   .width = width,
                                   .height = height,
                                   .stride = row_stride,
                                   .format = params.format};
  return software2d::ConvertToXrgb8888(
      rows, software2d::PixelRect{.x = 0, .y = 0, .width = width, .height = height}, destination,
      stride);
}

Result<std::array<uint32_t, kCursorPixels>> GfxstreamBackend::CursorImage(uint32_t resource_id) {
  Result<ResourceState*> state = FindResource(resource_id);
  if (!state) return tl::unexpected(state.error());
  const ResourceParams& params = (*state)->params;
  if (params.width != kCursorSize || params.height != kCursorSize ||
      !software2d::PixmanFormatFor(params.format)) {
    return MakeError(ErrorKind::kInvalidArgument, "cursor resource " + std::to_string(resource_id) +
                                                      " is not a 64x64 resource of 32-bit pixels");
  }
  Result<size_t> start = ReadBack(resource_id, **state, 0, 0, kCursorSize, kCursorSize);
  if (!start) return tl::unexpected(start.error());
  // The whole resource, rows packed: the pixels as the resource holds them (not converted).
  std::array<uint32_t, kCursorPixels> pixels;
  std::memcpy(pixels.data(), read_buffer_.data() + *start, sizeof(pixels));
  return pixels;
}

}  // namespace vgpu::renderer::gfxstream
