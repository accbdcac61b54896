// PixelPackReader: a texture's rectangle read back through a pixel-pack buffer object, for the
// display: x8r8g8b8 rows, top row first, in a mapping of the buffer.
//
//   virgl_renderer_force_ctx_0();                     // Its GL calls go to virgl's ctx0.
//   Result<DisplayRows> rows = reader.Read(texture, Size{1920, 1080}, rect, y_0_top);
//   display.SendUpdate(..., rows->first_pixel, rows->stride);
//   reader.Release();                                 // Before any other virgl call.
//
// Why: virgl_renderer_transfer_read_iov reads with glReadPixels into the caller's memory, which a
// GPU driver fills by copying from a staging buffer of its own on the CPU (on the H200: 5.9 ms of
// the daemon's CPU per 1080p frame, 1.3 GB/s). Read into a pixel-pack buffer, the GPU copies into
// memory the CPU can map, and the display sends from the mapping: the driver's copy goes away.
//
// What is read from matters as much. NVIDIA's driver (580, GLES 3.2 context, as virgl makes it)
// packs virgl's own textures into a buffer on the CPU, pixel by pixel: 450 ms per 1080p frame.
// From an RGBA8 texture of our own it is a GPU copy (0.3 ms). So unless the driver is Mesa (known
// by GL_MESA_pack_invert, where reading virgl's texture directly is the cheaper way), the rows
// are first blitted on the GPU into the reader's own RGBA8 texture, and read from there.
//
// The rows come top first, as the display wants them. virgl keeps a Y_0_TOP resource's image in
// GL's bottom-up row order (its guest renders with GL's conventions), so its rows are turned over:
// by GL_MESA_pack_invert when reading directly, by the blit itself otherwise.
//
// The buffer is immutable storage with GL_CLIENT_STORAGE_BIT (in the CPU's cached memory) where
// the context has buffer storage (GL 4.4, ARB_/EXT_buffer_storage), mapped once, persistently and
// coherently; each read waits on a fence instead of a map. Without buffer storage, or with
// Storage::kMapPerRead, the buffer is mapped for each read.
//
// GL state: the calls run in virgl's ctx0, whose state virglrenderer keeps track of. Every
// binding and pack parameter touched is saved and put back; the reader's own objects (a
// framebuffer per role, the buffer, the copy texture) are never bound outside Read().
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
  // What glReadPixels reads from.
  enum class Route {
    kAuto,         // Mesa (GL_MESA_pack_invert): the texture itself; others: kThroughCopy.
    kThroughCopy,  // The reader's own RGBA8 texture, blitted into first (what NVIDIA's driver
                   // gets; tests run it on Mesa too).
  };
  // Where the buffer's bytes live.
  enum class Storage {
    kAuto,  // Persistent client storage where the context has buffer storage, else kMapPerRead.
    kMapPerRead,  // glBufferData, mapped for each read (for comparison, and older contexts).
  };
  explicit PixelPackReader(Route route = Route::kAuto, Storage storage = Storage::kAuto)
      : route_(route), storage_(storage) {}
  ~PixelPackReader();  // Deletes the GL objects: virgl's ctx0 must be current.
  PixelPackReader(const PixelPackReader&) = delete;
  PixelPackReader& operator=(const PixelPackReader&) = delete;

  // Reads `rect` (top-first coordinates, inside the texture) of the 2D texture `texture`,
  // `width` x `height`, as B8G8R8A8 bytes (x8r8g8b8 words). The rows stay valid until Release().
  // kTimedOut: the GPU did not finish the copy within 5 s (this read only); any other error:
  // this driver cannot read this way.
  Result<DisplayRows> Read(uint32_t texture, uint32_t width, uint32_t height, const Rect& rect,
                           bool y_0_top);
  void Release();

 private:
  // The copy texture, at least width x height.
  Result<void> EnsureCopyTexture(uint32_t width, uint32_t height);
  // The pack buffer, at least `bytes`, bound to GL_PIXEL_PACK_BUFFER.
  Result<void> EnsureBuffer(size_t bytes);
  // The rows of the read just issued into the buffer, once the GPU has written them.
  Result<const uint8_t*> WaitForRows(size_t bytes);
  void DeleteBuffer();

  // What ctx0 offers, asked once: libepoxy answers each question by probing (dlopen of libGLX and
  // libGL on every epoxy_is_desktop_gl), which the sandbox refuses and logs, at a cost per call.
  struct Capabilities {
    bool desktop_gl = false;
    bool read_bgra = false;
    bool pack_invert = false;
    bool buffer_storage = false;  // GL 4.4 or ARB_buffer_storage; GLES with EXT_buffer_storage.
  };
  const Capabilities& capabilities();

  const Route route_;
  const Storage storage_;
  std::optional<Capabilities> capabilities_;
  uint32_t source_framebuffer_ = 0;  // The texture read from.
  uint32_t copy_framebuffer_ = 0;    // The copy texture, written by the blit.
  uint32_t copy_texture_ = 0;
  uint32_t copy_width_ = 0;
  uint32_t copy_height_ = 0;
  uint32_t buffer_ = 0;
  size_t buffer_bytes_ = 0;
  // The persistent mapping of immutable storage, or null (then the buffer is mapped per read).
  const uint8_t* persistent_rows_ = nullptr;
  bool persistent_failed_ = false;  // The driver refused it once: map per read from then on.
  bool mapped_ = false;             // Mapped for one read, until Release().
};

}  // namespace vgpu::renderer::virgl
