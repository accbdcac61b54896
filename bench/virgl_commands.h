// The virgl command stream inside SUBMIT_3D: a tiny encoder for what the benchmark renders itself
// (a render target's surface, the framebuffer state, a clear), and a splitter for recorded
// streams. The encoding is virglrenderer's (src/virgl_protocol.h, src/virgl_hw.h, and Mesa's
// src/gallium/drivers/virgl/virgl_encode.c, which writes it): 32-bit little-endian words, each
// command one header word  cmd | object_type << 8 | length << 16  followed by `length` words.
//
//   VirglEncoder encoder;
//   encoder.CreateSurface(/*handle=*/1, /*resource=*/1, kVirglFormatB8G8R8X8Unorm);
//   encoder.SetFramebufferState(/*surface=*/1);
//   encoder.ClearColor(0.25f, 0.5f, 1.0f, 1.0f);
//   std::vector<uint8_t> request = Submit3d(context_id, encoder.words());
//
//   for (const VirglCommand& command : SplitVirglStream(words)) { ... command.opcode ... }
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "gpu/protocol.h"

namespace vgpu::bench {

// Spec: enum virgl_context_cmd (virglrenderer src/virgl_protocol.h); the ones used here.
enum class VirglOpcode : uint8_t {
  kNop = 0,
  kCreateObject = 1,
  kBindObject = 2,
  kDestroyObject = 3,
  kSetViewportState = 4,
  kSetFramebufferState = 5,
  kSetVertexBuffers = 6,
  kClear = 7,
  kDrawVbo = 8,
  kResourceInlineWrite = 9,
  kSetSubContext = 28,
  kCreateSubContext = 29,
  kDestroySubContext = 30,
  kTransfer3d = 43,
  kEndTransfers = 44,
  kCopyTransfer3d = 45,
  kPipeResourceCreate = 48,
  kLinkShader = 52,
};

// Spec: enum virgl_object_type (src/virgl_protocol.h).
inline constexpr uint8_t kVirglObjectSurface = 8;
// Spec: enum virgl_formats (src/virgl_hw.h): B8G8R8X8_UNORM, Linux's DRM_FORMAT_XRGB8888.
inline constexpr uint32_t kVirglFormatB8G8R8X8Unorm = 2;
// Spec: enum pipe_texture_target (gallium p_defines.h, as virgl sends it): PIPE_BUFFER,
// PIPE_TEXTURE_2D.
inline constexpr uint32_t kPipeBuffer = 0;
inline constexpr uint32_t kPipeTexture2d = 2;
// Spec: VIRGL_BIND_* (src/virgl_hw.h). A GBM scanout buffer of Mesa's virgl driver has these.
inline constexpr uint32_t kVirglBindRenderTarget = 1u << 1;
inline constexpr uint32_t kVirglBindSamplerView = 1u << 3;
inline constexpr uint32_t kVirglBindDisplayTarget = 1u << 7;
inline constexpr uint32_t kVirglBindScanout = 1u << 18;
// Spec: PIPE_CLEAR_COLOR0 (gallium p_defines.h), VIRGL_OBJ_CLEAR_BUFFERS' bit for cbuf 0.
inline constexpr uint32_t kPipeClearColor0 = 1u << 2;

class VirglEncoder {
 public:
  // VIRGL_CCMD_CREATE_OBJECT of a VIRGL_OBJECT_SURFACE (VIRGL_OBJ_SURFACE_SIZE 5): level 0,
  // layer 0 of `resource`.
  void CreateSurface(uint32_t handle, uint32_t resource, uint32_t format);
  // VIRGL_CCMD_SET_FRAMEBUFFER_STATE with one colour buffer and no depth/stencil surface.
  void SetFramebufferState(uint32_t surface);
  // VIRGL_CCMD_CLEAR (VIRGL_OBJ_CLEAR_SIZE 8) of colour buffer 0.
  void ClearColor(float red, float green, float blue, float alpha);

  const std::vector<uint32_t>& words() const { return words_; }
  void clear() { words_.clear(); }

 private:
  void Header(VirglOpcode opcode, uint8_t object_type, uint16_t length);

  std::vector<uint32_t> words_;
};

// One command of a stream: its header word and fields, and its words (header excluded).
struct VirglCommand {
  uint32_t header;
  VirglOpcode opcode;
  uint8_t object_type;
  std::span<const uint32_t> body;
};

// Splits a stream into commands; nullopt if a length runs past the end.
std::optional<std::vector<VirglCommand>> SplitVirglStream(std::span<const uint32_t> words);

// A SUBMIT_3D request (Spec: struct virtio_gpu_cmd_submit, then the stream) for `context_id`.
std::vector<uint8_t> Submit3d(uint32_t context_id, std::span<const uint32_t> words);

}  // namespace vgpu::bench
