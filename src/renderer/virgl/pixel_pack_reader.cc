#include "renderer/virgl/pixel_pack_reader.h"

#include <epoxy/gl.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "base/checked_math.h"
#include "base/log.h"

namespace vgpu::renderer::virgl {
namespace {

#ifndef GL_PACK_INVERT_MESA
#define GL_PACK_INVERT_MESA 0x8758
#endif

// The GL state Read() changes, put back as it was when it ends, however it ends.
class SavedPackState {
 public:
  SavedPackState(bool desktop_gl, bool pack_invert)
      : desktop_gl_(desktop_gl), pack_invert_(pack_invert) {
    glGetIntegerv(GL_READ_FRAMEBUFFER_BINDING, &read_framebuffer_);
    glGetIntegerv(GL_DRAW_FRAMEBUFFER_BINDING, &draw_framebuffer_);
    glGetIntegerv(GL_PIXEL_PACK_BUFFER_BINDING, &pack_buffer_);
    glGetIntegerv(GL_PACK_ALIGNMENT, &alignment_);
    glGetIntegerv(GL_PACK_ROW_LENGTH, &row_length_);
    glGetIntegerv(GL_PACK_SKIP_ROWS, &skip_rows_);
    glGetIntegerv(GL_PACK_SKIP_PIXELS, &skip_pixels_);
    glGetIntegerv(GL_TEXTURE_BINDING_2D, &texture_);
    scissor_ = glIsEnabled(GL_SCISSOR_TEST);
    if (desktop_gl_) srgb_ = glIsEnabled(GL_FRAMEBUFFER_SRGB);
    if (pack_invert_) glGetIntegerv(GL_PACK_INVERT_MESA, &invert_);
  }
  ~SavedPackState() {
    glBindFramebuffer(GL_READ_FRAMEBUFFER, static_cast<GLuint>(read_framebuffer_));
    glBindFramebuffer(GL_DRAW_FRAMEBUFFER, static_cast<GLuint>(draw_framebuffer_));
    glBindBuffer(GL_PIXEL_PACK_BUFFER, static_cast<GLuint>(pack_buffer_));
    glPixelStorei(GL_PACK_ALIGNMENT, alignment_);
    glPixelStorei(GL_PACK_ROW_LENGTH, row_length_);
    glPixelStorei(GL_PACK_SKIP_ROWS, skip_rows_);
    glPixelStorei(GL_PACK_SKIP_PIXELS, skip_pixels_);
    glBindTexture(GL_TEXTURE_2D, static_cast<GLuint>(texture_));
    if (scissor_) glEnable(GL_SCISSOR_TEST);
    if (desktop_gl_ && srgb_) glEnable(GL_FRAMEBUFFER_SRGB);
    if (pack_invert_) glPixelStorei(GL_PACK_INVERT_MESA, invert_);
  }
  SavedPackState(const SavedPackState&) = delete;
  SavedPackState& operator=(const SavedPackState&) = delete;

 private:
  const bool desktop_gl_;
  const bool pack_invert_;
  GLint read_framebuffer_ = 0;
  GLint draw_framebuffer_ = 0;
  GLint pack_buffer_ = 0;
  GLint alignment_ = 4;
  GLint row_length_ = 0;
  GLint skip_rows_ = 0;
  GLint skip_pixels_ = 0;
  GLint texture_ = 0;
  GLboolean scissor_ = GL_FALSE;
  GLboolean srgb_ = GL_FALSE;
  GLint invert_ = 0;
};

// Drains GL's error queue; the first error, if any.
GLenum TakeGlError() {
  GLenum first = GL_NO_ERROR;
  for (GLenum error = glGetError(); error != GL_NO_ERROR; error = glGetError()) {
    if (first == GL_NO_ERROR) first = error;
  }
  return first;
}

auto GlFailure(const std::string& what, GLenum error) {
  char hex[16];
  std::snprintf(hex, sizeof(hex), "%x", error);
  return MakeError(ErrorKind::kUnsupported,
                   "pixel-pack read-back: " + what + " (GL error 0x" + hex + ")");
}

}  // namespace

const PixelPackReader::Capabilities& PixelPackReader::capabilities() {
  if (!capabilities_) {
    Capabilities gl;
    gl.desktop_gl = epoxy_is_desktop_gl();
    gl.read_bgra = gl.desktop_gl || epoxy_has_gl_extension("GL_EXT_read_format_bgra");
    gl.pack_invert = epoxy_has_gl_extension("GL_MESA_pack_invert");
    gl.buffer_storage = gl.desktop_gl ? (epoxy_gl_version() >= 44 ||
                                         epoxy_has_gl_extension("GL_ARB_buffer_storage"))
                                      : epoxy_has_gl_extension("GL_EXT_buffer_storage");
    capabilities_ = gl;
  }
  return *capabilities_;
}

PixelPackReader::~PixelPackReader() {
  Release();
  DeleteBuffer();
  if (copy_texture_ != 0) glDeleteTextures(1, &copy_texture_);
  const GLuint framebuffers[] = {source_framebuffer_, copy_framebuffer_};
  for (GLuint framebuffer : framebuffers) {
    if (framebuffer != 0) glDeleteFramebuffers(1, &framebuffer);
  }
}

Result<void> PixelPackReader::EnsureCopyTexture(uint32_t width, uint32_t height) {
  if (copy_texture_ != 0 && copy_width_ >= width && copy_height_ >= height) return {};
  if (copy_texture_ == 0) glGenTextures(1, &copy_texture_);
  // Exactly this rectangle's size when it does not fit: growing each side to the largest seen
  // would let a guest alternating a 32768x1 and a 1x32768 scanout make a 4 GiB texture.
  copy_width_ = width;
  copy_height_ = height;
  glBindTexture(GL_TEXTURE_2D, copy_texture_);
  GLint unpack_buffer = 0;
  glGetIntegerv(GL_PIXEL_UNPACK_BUFFER_BINDING, &unpack_buffer);
  if (unpack_buffer != 0) glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);  // nullptr means "no data".
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, static_cast<GLsizei>(copy_width_),
               static_cast<GLsizei>(copy_height_), 0, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
  if (unpack_buffer != 0) glBindBuffer(GL_PIXEL_UNPACK_BUFFER, static_cast<GLuint>(unpack_buffer));
  if (copy_framebuffer_ == 0) glGenFramebuffers(1, &copy_framebuffer_);
  glBindFramebuffer(GL_DRAW_FRAMEBUFFER, copy_framebuffer_);
  glFramebufferTexture2D(GL_DRAW_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, copy_texture_,
                         0);
  if (glCheckFramebufferStatus(GL_DRAW_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE) {
    return GlFailure("the copy texture is not a complete framebuffer", TakeGlError());
  }
  return {};
}

void PixelPackReader::DeleteBuffer() {
  if (buffer_ == 0) return;
  if (persistent_rows_ != nullptr) {
    GLint bound = 0;
    glGetIntegerv(GL_PIXEL_PACK_BUFFER_BINDING, &bound);
    glBindBuffer(GL_PIXEL_PACK_BUFFER, buffer_);
    glUnmapBuffer(GL_PIXEL_PACK_BUFFER);
    glBindBuffer(GL_PIXEL_PACK_BUFFER, static_cast<GLuint>(bound) == buffer_ ? 0 : bound);
    persistent_rows_ = nullptr;
  }
  glDeleteBuffers(1, &buffer_);
  buffer_ = 0;
  buffer_bytes_ = 0;
}

Result<void> PixelPackReader::EnsureBuffer(size_t bytes) {
  if (buffer_ != 0 && buffer_bytes_ >= bytes) {
    glBindBuffer(GL_PIXEL_PACK_BUFFER, buffer_);
    return {};
  }
  const bool persistent =
      storage_ == Storage::kAuto && capabilities().buffer_storage && !persistent_failed_;
  // Immutable storage cannot grow: a larger read makes a new buffer.
  if (persistent) DeleteBuffer();
  if (buffer_ == 0) glGenBuffers(1, &buffer_);
  glBindBuffer(GL_PIXEL_PACK_BUFFER, buffer_);
  if (!persistent) {
    glBufferData(GL_PIXEL_PACK_BUFFER, static_cast<GLsizeiptr>(bytes), nullptr, GL_STREAM_READ);
    buffer_bytes_ = bytes;
    LogDebug("virglrenderer: display read-back buffer of %zu bytes, mapped for each read%s", bytes,
             storage_ == Storage::kAuto ? " (the context has no buffer storage)" : "");
    return {};
  }
  constexpr GLbitfield kMapping = GL_MAP_READ_BIT | GL_MAP_PERSISTENT_BIT | GL_MAP_COHERENT_BIT;
  if (capabilities().desktop_gl) {
    glBufferStorage(GL_PIXEL_PACK_BUFFER, static_cast<GLsizeiptr>(bytes), nullptr,
                    kMapping | GL_CLIENT_STORAGE_BIT);
  } else {
    glBufferStorageEXT(GL_PIXEL_PACK_BUFFER, static_cast<GLsizeiptr>(bytes), nullptr,
                       kMapping | GL_CLIENT_STORAGE_BIT_EXT);
  }
  void* rows = glMapBufferRange(GL_PIXEL_PACK_BUFFER, 0, static_cast<GLsizeiptr>(bytes), kMapping);
  if (const GLenum error = TakeGlError(); error != GL_NO_ERROR || rows == nullptr) {
    // The driver offers buffer storage but not this: map per read from now on.
    LogWarning(
        "virglrenderer: no persistent pack buffer of %zu bytes (GL error 0x%x); mapping "
        "the buffer for each read instead",
        bytes, error);
    DeleteBuffer();
    persistent_failed_ = true;
    return EnsureBuffer(bytes);
  }
  persistent_rows_ = static_cast<const uint8_t*>(rows);
  buffer_bytes_ = bytes;
  LogDebug("virglrenderer: display read-back buffer of %zu bytes in persistent client storage",
           bytes);
  return {};
}

Result<const uint8_t*> PixelPackReader::WaitForRows(size_t bytes) {
  if (persistent_rows_ == nullptr) {
    void* rows =
        glMapBufferRange(GL_PIXEL_PACK_BUFFER, 0, static_cast<GLsizeiptr>(bytes), GL_MAP_READ_BIT);
    if (const GLenum error = TakeGlError(); error != GL_NO_ERROR || rows == nullptr) {
      if (rows != nullptr) glUnmapBuffer(GL_PIXEL_PACK_BUFFER);
      return GlFailure("mapping the pack buffer", error);
    }
    mapped_ = true;
    return static_cast<const uint8_t*>(rows);
  }
  // A coherent mapping shows the GPU's writes once the fence after them has signalled.
  GLsync fence = glFenceSync(GL_SYNC_GPU_COMMANDS_COMPLETE, 0);
  if (fence == nullptr) return GlFailure("glFenceSync after the read", TakeGlError());
  // A GPU that takes this long on one copy has hung; the flush is then answered without rows.
  constexpr GLuint64 kPatienceNs = 5'000'000'000;
  const GLenum waited = glClientWaitSync(fence, GL_SYNC_FLUSH_COMMANDS_BIT, kPatienceNs);
  glDeleteSync(fence);
  if (waited != GL_ALREADY_SIGNALED && waited != GL_CONDITION_SATISFIED) {
    if (waited == GL_TIMEOUT_EXPIRED) {
      return MakeError(ErrorKind::kTimedOut,
                       "pixel-pack read-back: the read did not finish "
                       "within 5 s");
    }
    return GlFailure("waiting for the read", TakeGlError());
  }
  return persistent_rows_;
}

Result<DisplayRows> PixelPackReader::Read(uint32_t texture, uint32_t width, uint32_t height,
                                          const Rect& rect, bool y_0_top) {
  Release();
  const std::optional<uint32_t> right = CheckedAdd<uint32_t>(rect.x, rect.width);
  const std::optional<uint32_t> bottom = CheckedAdd<uint32_t>(rect.y, rect.height);
  const std::optional<size_t> bytes =
      CheckedMul<size_t>(size_t{rect.width} * 4, size_t{rect.height});
  if (!right || !bottom || !bytes || *right > width || *bottom > height || *bytes == 0) {
    return MakeError(ErrorKind::kOutOfRange, "pixel-pack read-back outside the texture");
  }
  const Capabilities& gl = capabilities();
  if (!gl.read_bgra) {
    return MakeError(ErrorKind::kUnsupported,
                     "pixel-pack read-back: GLES without GL_EXT_read_format_bgra");
  }
  // Mesa: read virgl's texture directly, turned over by pack_invert. Others: through the copy.
  const bool direct = route_ == Route::kAuto && gl.pack_invert;
  TakeGlError();  // Not ours: whatever virgl left.
  SavedPackState saved(gl.desktop_gl, direct);
  glDisable(GL_SCISSOR_TEST);
  if (gl.desktop_gl) glDisable(GL_FRAMEBUFFER_SRGB);

  if (source_framebuffer_ == 0) glGenFramebuffers(1, &source_framebuffer_);
  glBindFramebuffer(GL_READ_FRAMEBUFFER, source_framebuffer_);
  glFramebufferTexture2D(GL_READ_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, texture, 0);
  if (glCheckFramebufferStatus(GL_READ_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE) {
    return GlFailure("texture " + std::to_string(texture) + " is not a complete framebuffer",
                     TakeGlError());
  }
  // GL's rows run bottom up: a Y_0_TOP image's top row is GL's last.
  GLint read_x = static_cast<GLint>(rect.x);
  GLint read_y = static_cast<GLint>(y_0_top ? height - *bottom : rect.y);
  if (!direct) {
    // The rectangle goes to the copy texture's corner on the GPU, its rows turned over on the
    // way for a Y_0_TOP image (destination rows given top to bottom).
    if (Result<void> ready = EnsureCopyTexture(rect.width, rect.height); !ready)
      return ErrorOf(ready);
    const GLint copy_height = static_cast<GLint>(rect.height);
    glBindFramebuffer(GL_DRAW_FRAMEBUFFER, copy_framebuffer_);
    glBlitFramebuffer(read_x, read_y, read_x + static_cast<GLint>(rect.width), read_y + copy_height,
                      0, y_0_top ? copy_height : 0, static_cast<GLint>(rect.width),
                      y_0_top ? 0 : copy_height, GL_COLOR_BUFFER_BIT, GL_NEAREST);
    glBindFramebuffer(GL_READ_FRAMEBUFFER, copy_framebuffer_);
    read_x = 0;
    read_y = 0;
  }

  if (Result<void> ready = EnsureBuffer(*bytes); !ready) return ErrorOf(ready);
  glPixelStorei(GL_PACK_ALIGNMENT, 4);
  glPixelStorei(GL_PACK_ROW_LENGTH, 0);
  glPixelStorei(GL_PACK_SKIP_ROWS, 0);
  glPixelStorei(GL_PACK_SKIP_PIXELS, 0);
  if (direct) glPixelStorei(GL_PACK_INVERT_MESA, y_0_top ? 1 : 0);
  glReadPixels(read_x, read_y, static_cast<GLsizei>(rect.width), static_cast<GLsizei>(rect.height),
               GL_BGRA_EXT, GL_UNSIGNED_BYTE, nullptr);
  if (const GLenum error = TakeGlError(); error != GL_NO_ERROR) {
    return GlFailure("reading texture " + std::to_string(texture), error);
  }
  Result<const uint8_t*> rows = WaitForRows(*bytes);
  if (!rows) return ErrorOf(rows);
  return DisplayRows{.first_pixel = *rows, .stride = size_t{rect.width} * 4};
}

void PixelPackReader::Release() {
  if (!mapped_) return;
  GLint bound = 0;
  glGetIntegerv(GL_PIXEL_PACK_BUFFER_BINDING, &bound);
  glBindBuffer(GL_PIXEL_PACK_BUFFER, buffer_);
  glUnmapBuffer(GL_PIXEL_PACK_BUFFER);
  glBindBuffer(GL_PIXEL_PACK_BUFFER, static_cast<GLuint>(bound));
  mapped_ = false;
}

}  // namespace vgpu::renderer::virgl
