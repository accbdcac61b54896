// The commands of gfxstream's own SUBMIT_3D protocol that the backend reads before gfxstream runs
// them, because gfxstream acts on their fields without checking them (docs/SECURITY.md,
// "gfxstream"):
//
// - CONTEXT_CREATE names a blob that gfxstream maps as an address-space-graphics ring and hands
//   to a render thread; one smaller than the ring and its transfer buffer aborts the process
//   ("External address size too small").
// - RESOURCE_CREATE_3D records a colour buffer or buffer shape for a later RESOURCE_CREATE_BLOB of
//   the same blob id, which gfxstream then makes with no check of its size.
//
//   GfxstreamCommand command = DecodeGfxstreamCommand(stream);
//   if (auto* create = std::get_if<GfxstreamContextCreate>(&command)) ...
//
// Layouts from gfxstream's host/virtgpu_gfxstream_protocol.h (structs gfxstreamContextCreate and
// gfxstreamResourceCreate3d), little-endian. gfxstream copies a command's whole struct out of the
// stream whatever the stream's length; so does the decoder, reading zeros past a short stream,
// as the backend's private copy gives gfxstream zeros there too.
#pragma once

#include <cstdint>
#include <span>
#include <variant>

#include "renderer/renderer.h"

namespace vgpu::renderer::gfxstream {

inline constexpr uint32_t kGfxstreamOpContextCreate = 0x1001;
inline constexpr uint32_t kGfxstreamOpResourceCreate3d = 0xa003;

// kAsgConsumerRingStorageSize + kAsgWriteBufferSize: the ring storage (three 4 KiB rings) and the
// 1 MiB transfer buffer gfxstream lays into a CONTEXT_CREATE's blob.
inline constexpr uint64_t kGfxstreamRingBlobMinBytes = 12288 + (1u << 20);

struct GfxstreamContextCreate {
  ResourceId ring;
};

struct GfxstreamResourceCreate3d {
  ResourceParams shape;  // id unset: the resource id comes with RESOURCE_CREATE_BLOB.
  // gfxstream keys the shape by the low 32 bits of the blob id (VirtioGpuContext::AddPendingBlob).
  uint32_t blob_id = 0;
};

using GfxstreamCommand =
    std::variant<std::monostate, GfxstreamContextCreate, GfxstreamResourceCreate3d>;

// monostate for every other opcode and for a stream shorter than an opcode.
GfxstreamCommand DecodeGfxstreamCommand(std::span<const uint8_t> stream);

}  // namespace vgpu::renderer::gfxstream
