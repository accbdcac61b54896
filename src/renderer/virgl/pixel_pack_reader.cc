#include "renderer/virgl/pixel_pack_reader.h"

#include <epoxy/gl.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "base/checked_math.h"

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
    capabilities_ = gl;
  }
  return *capabilities_;
}

PixelPackReader::~PixelPackReader() {
  Release();
  if (buffer_ != 0) glDeleteBuffers(1, &buffer_);
  if (flip_texture_ != 0) glDeleteTextures(1, &flip_texture_);
  const GLuint framebuffers[] = {source_framebuffer_, flip_framebuffer_};
  for (GLuint framebuffer : framebuffers) {
    if (framebuffer != 0) glDeleteFramebuffers(1, &framebuffer);
  }
}

Result<void> PixelPackReader::EnsureFlipTexture(uint32_t width, uint32_t height) {
  if (flip_texture_ != 0 && flip_width_ >= width && flip_height_ >= height) return {};
  if (flip_texture_ == 0) glGenTextures(1, &flip_texture_);
  flip_width_ = std::max(flip_width_, width);
  flip_height_ = std::max(flip_height_, height);
  glBindTexture(GL_TEXTURE_2D, flip_texture_);
  glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, static_cast<GLsizei>(flip_width_),
               static_cast<GLsizei>(flip_height_), 0, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
  if (flip_framebuffer_ == 0) glGenFramebuffers(1, &flip_framebuffer_);
  glBindFramebuffer(GL_DRAW_FRAMEBUFFER, flip_framebuffer_);
  glFramebufferTexture2D(GL_DRAW_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, flip_texture_,
                         0);
  if (glCheckFramebufferStatus(GL_DRAW_FRAMEBUFFER) != GL_FRAMEBUFFER_COMPLETE) {
    return GlFailure("the flip texture is not a complete framebuffer", TakeGlError());
  }
  return {};
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
  const bool pack_invert = flip_ == Flip::kAuto && gl.pack_invert;
  TakeGlError();  // Not ours: whatever virgl left.
  SavedPackState saved(gl.desktop_gl, pack_invert);
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
  bool invert = false;
  if (y_0_top && pack_invert) {
    invert = true;
  } else if (y_0_top) {
    // No pack_invert: the rows are turned over on the GPU, by a blit into the flip texture.
    if (Result<void> ready = EnsureFlipTexture(rect.width, rect.height); !ready)
      return ErrorOf(ready);
    glBindFramebuffer(GL_DRAW_FRAMEBUFFER, flip_framebuffer_);
    glBlitFramebuffer(read_x, read_y, read_x + static_cast<GLint>(rect.width),
                      read_y + static_cast<GLint>(rect.height), 0, static_cast<GLint>(rect.height),
                      static_cast<GLint>(rect.width), 0, GL_COLOR_BUFFER_BIT, GL_NEAREST);
    glBindFramebuffer(GL_READ_FRAMEBUFFER, flip_framebuffer_);
    read_x = 0;
    read_y = 0;
  }

  if (buffer_ == 0) glGenBuffers(1, &buffer_);
  glBindBuffer(GL_PIXEL_PACK_BUFFER, buffer_);
  if (buffer_bytes_ < *bytes) {
    glBufferData(GL_PIXEL_PACK_BUFFER, static_cast<GLsizeiptr>(*bytes), nullptr, GL_STREAM_READ);
    buffer_bytes_ = *bytes;
  }
  glPixelStorei(GL_PACK_ALIGNMENT, 4);
  glPixelStorei(GL_PACK_ROW_LENGTH, 0);
  glPixelStorei(GL_PACK_SKIP_ROWS, 0);
  glPixelStorei(GL_PACK_SKIP_PIXELS, 0);
  if (pack_invert) glPixelStorei(GL_PACK_INVERT_MESA, invert ? 1 : 0);
  glReadPixels(read_x, read_y, static_cast<GLsizei>(rect.width), static_cast<GLsizei>(rect.height),
               GL_BGRA_EXT, GL_UNSIGNED_BYTE, nullptr);
  void* rows =
      glMapBufferRange(GL_PIXEL_PACK_BUFFER, 0, static_cast<GLsizeiptr>(*bytes), GL_MAP_READ_BIT);
  if (const GLenum error = TakeGlError(); error != GL_NO_ERROR || rows == nullptr) {
    if (rows != nullptr) glUnmapBuffer(GL_PIXEL_PACK_BUFFER);
    return GlFailure("reading texture " + std::to_string(texture), error);
  }
  mapped_ = true;
  return DisplayRows{.first_pixel = static_cast<const uint8_t*>(rows),
                     .stride = size_t{rect.width} * 4};
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
