// A read-only view of 32-bit pixels in host memory.
//
//   ImageView view = image.view();  // Or built by hand for pixels the caller owns.
//
// A plain value type: a view does not own its bytes and must not outlive them.
#pragma once

#include <cstdint>
#include <span>

namespace vgpu::renderer::software2d {

struct ImageView {
  std::span<const uint8_t> bytes;  // Row 0 starts at bytes[0]; row y at bytes[y * stride].
  uint32_t width = 0;              // Pixels.
  uint32_t height = 0;             // Rows.
  uint32_t stride = 0;             // Bytes from one row to the next.
  uint32_t format = 0;             // A virtio_gpu::Format value.
};

}  // namespace vgpu::renderer::software2d
