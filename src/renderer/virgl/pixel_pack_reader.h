// PixelPackReader: a texture's rectangle read back through a pixel-pack buffer object, for the
// display: x8r8g8b8 rows, top row first, in a mapping of the buffer.
//
//   virgl_renderer_force_ctx_0();                     // Its GL calls go to virgl's ctx0.
//   Result<DisplayRows> rows = reader.Read(texture, Size{1920, 1080}, rect, y_0_top);
//   display.SendUpdate(..., rows->first_pixel, rows->stride);
//   reader.Release();                                 // Unmaps; before any other virgl call.
//
// Why: virgl_renderer_transfer_read_iov reads with glReadPixels into the caller's memory, which a
// GPU driver fills by copying from a staging buffer of its own on the CPU (on the H100 about 1
// GB/s, the daemon's CPU saturated). Read into a pixel-pack buffer, the GPU copies into driver
// memory the CPU can map, and the display sends from the mapping: the driver's copy goes away.
//
// The rows come top first, as the display wants them. virgl keeps a Y_0_TOP resource's image in
// GL's bottom-up row order (its guest renders with GL's conventions), so its rows are turned over:
// with GL_MESA_pack_invert where the driver has it (Mesa), else by a blit into a texture of our
// own with the rows inverted (NVIDIA has no pack_invert), then read from there.
//
// GL state: the calls run in virgl's ctx0, whose state virglrenderer keeps track of. Every
// binding and pack parameter touched is saved and put back; the reader's own objects (a
// framebuffer per role, the buffer, the flip texture) are never bound outside Read().
//
// Device thread only, with virgl's ctx0 current.
#pragma once

#include <cstdint>
#include <optional>

#include "base/result.h"
#include "renderer/renderer.h"

namespace vgpu::renderer::virgl {

class PixelPackReader {
 public:
  // How a Y_0_TOP image's rows are turned over.
  enum class Flip {
    kAuto,  // GL_MESA_pack_invert where the driver has it, else kBlit.
    kBlit,  // Always the blit (what NVIDIA's driver gets; tests run it on Mesa too).
  };
  explicit PixelPackReader(Flip flip = Flip::kAuto) : flip_(flip) {}
  ~PixelPackReader();  // Deletes the GL objects: virgl's ctx0 must be current.
  PixelPackReader(const PixelPackReader&) = delete;
  PixelPackReader& operator=(const PixelPackReader&) = delete;

  // Reads `rect` (top-first coordinates, inside the texture) of the 2D texture `texture`,
  // `width` x `height`, as B8G8R8A8 bytes (x8r8g8b8 words). The rows stay mapped until Release().
  Result<DisplayRows> Read(uint32_t texture, uint32_t width, uint32_t height, const Rect& rect,
                           bool y_0_top);
  void Release();

 private:
  // The flip texture, at least width x height.
  Result<void> EnsureFlipTexture(uint32_t width, uint32_t height);

  // What ctx0 offers, asked once: libepoxy answers each question by probing (dlopen of libGLX and
  // libGL on every epoxy_is_desktop_gl), which the sandbox refuses and logs, at a cost per call.
  struct Capabilities {
    bool desktop_gl = false;
    bool read_bgra = false;
    bool pack_invert = false;
  };
  const Capabilities& capabilities();

  const Flip flip_;
  std::optional<Capabilities> capabilities_;
  uint32_t source_framebuffer_ = 0;  // The texture read from.
  uint32_t flip_framebuffer_ = 0;    // The flip texture, written by the blit.
  uint32_t flip_texture_ = 0;
  uint32_t flip_width_ = 0;
  uint32_t flip_height_ = 0;
  uint32_t buffer_ = 0;
  size_t buffer_bytes_ = 0;
  bool mapped_ = false;
};

}  // namespace vgpu::renderer::virgl
