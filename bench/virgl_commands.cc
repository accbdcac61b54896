#include "virgl_commands.h"

#include <bit>
#include <cstring>

namespace vgpu::bench {

void VirglEncoder::Header(VirglOpcode opcode, uint8_t object_type, uint16_t length) {
  // Spec: VIRGL_CMD0(cmd, obj, len).
  words_.push_back(static_cast<uint32_t>(opcode) | uint32_t{object_type} << 8 |
                   uint32_t{length} << 16);
}

void VirglEncoder::CreateSurface(uint32_t handle, uint32_t resource, uint32_t format) {
  Header(VirglOpcode::kCreateObject, kVirglObjectSurface, 5);
  words_.push_back(handle);    // VIRGL_OBJ_SURFACE_HANDLE
  words_.push_back(resource);  // VIRGL_OBJ_SURFACE_RES_HANDLE
  words_.push_back(format);    // VIRGL_OBJ_SURFACE_FORMAT
  words_.push_back(0);         // VIRGL_OBJ_SURFACE_TEXTURE_LEVEL
  words_.push_back(0);         // VIRGL_OBJ_SURFACE_TEXTURE_LAYERS: first | last << 16
}

void VirglEncoder::SetFramebufferState(uint32_t surface) {
  Header(VirglOpcode::kSetFramebufferState, 0, 3);  // VIRGL_SET_FRAMEBUFFER_STATE_SIZE(1)
  words_.push_back(1);                              // VIRGL_SET_FRAMEBUFFER_STATE_NR_CBUFS
  words_.push_back(0);        // VIRGL_SET_FRAMEBUFFER_STATE_NR_ZSURF_HANDLE: none
  words_.push_back(surface);  // VIRGL_SET_FRAMEBUFFER_STATE_CBUF_HANDLE(0)
}

void VirglEncoder::ClearColor(float red, float green, float blue, float alpha) {
  Header(VirglOpcode::kClear, 0, 8);
  words_.push_back(kPipeClearColor0);  // VIRGL_OBJ_CLEAR_BUFFERS
  for (float channel : {red, green, blue, alpha}) {
    words_.push_back(std::bit_cast<uint32_t>(channel));  // VIRGL_OBJ_CLEAR_COLOR_0..3
  }
  const uint64_t depth = std::bit_cast<uint64_t>(1.0);  // VIRGL_OBJ_CLEAR_DEPTH_0/1: a double
  words_.push_back(static_cast<uint32_t>(depth));
  words_.push_back(static_cast<uint32_t>(depth >> 32));
  words_.push_back(0);  // VIRGL_OBJ_CLEAR_STENCIL
}

std::optional<std::vector<VirglCommand>> SplitVirglStream(std::span<const uint32_t> words) {
  std::vector<VirglCommand> commands;
  size_t position = 0;
  while (position < words.size()) {
    const uint32_t header = words[position];
    const size_t length = header >> 16;
    if (length > words.size() - position - 1) return std::nullopt;
    commands.push_back(VirglCommand{header, static_cast<VirglOpcode>(header & 0xff),
                                    static_cast<uint8_t>((header >> 8) & 0xff),
                                    words.subspan(position + 1, length)});
    position += 1 + length;
  }
  return commands;
}

std::vector<uint8_t> Submit3d(uint32_t context_id, std::span<const uint32_t> words) {
  gpu::CmdSubmit submit{};
  submit.hdr.type = static_cast<uint32_t>(gpu::CommandType::kSubmit3d);
  submit.hdr.ctx_id = context_id;
  submit.size = static_cast<uint32_t>(words.size_bytes());
  std::vector<uint8_t> request(sizeof(submit) + words.size_bytes());
  std::memcpy(request.data(), &submit, sizeof(submit));
  std::memcpy(request.data() + sizeof(submit), words.data(), words.size_bytes());
  return request;
}

}  // namespace vgpu::bench
