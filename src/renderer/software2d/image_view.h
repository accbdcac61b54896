// A read-only view of 32-bit pixels in host memory, and a rectangle in pixel coordinates.
//
//   ImageView view = image.view();  // Or built by hand for pixels the caller owns.
//   PixelRect damage{.x = 0, .y = 0, .width = 64, .height = 64};
//
// Plain value types: a view does not own its bytes and must not outlive them.
#pragma once

#include <cstdint>
#include <span>

namespace vgpu::renderer::software2d {

struct ImageView {
  std::span<const uint8_t> bytes;  // Row 0 starts at bytes[0]; row y at bytes[y * stride].
  uint32_t width = 0;              // Pixels.
  uint32_t height = 0;             // Rows.
  uint32_t stride = 0;             // Bytes from one row to the next.
  uint32_t format = 0;             // A gpu::Format value.
};

// Rectangle in pixels, (0,0) top left, as virtio-gpu's struct virtio_gpu_rect.
struct PixelRect {
  uint32_t x = 0;
  uint32_t y = 0;
  uint32_t width = 0;
  uint32_t height = 0;
};

}  // namespace vgpu::renderer::software2d
