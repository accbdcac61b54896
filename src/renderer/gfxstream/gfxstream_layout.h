// What gfxstream touches of a resource's backing, so that the backend can refuse a backing that
// gfxstream would read or write past.
//
//   std::optional<uint64_t> needed = GfxstreamCopyBytes(params);
//   if (!needed || backing_bytes < *needed) refuse();
//
// gfxstream keeps a host copy of every attached backing, exactly as large as the backing
// (VirtioGpuResource::AttachIov), and moves whole resources through it: every transfer, in
// either direction and whatever its box, first reads the whole colour buffer or buffer into the
// copy (glReadPixels / a Vulkan copy of width x height) or writes all of it from the copy. No
// length is checked on that path, so a backing shorter than the resource is a heap overflow in
// the daemon (docs/SECURITY.md, "gfxstream"). The sizes here are the largest that gfxstream's
// GL or Vulkan path moves for each format, rounded up where the two differ.
#pragma once

#include <cstdint>
#include <optional>

#include "renderer/renderer.h"

namespace vgpu::renderer::gfxstream {

// How gfxstream stores a resource (its GetResourceType).
enum class GfxstreamResourceKind {
  kPipe,         // PIPE_BUFFER with VIRGL_BIND_CUSTOM: a host pipe's byte stream.
  kBuffer,       // R8_UNORM bound only as a linear buffer: width * height bytes.
  kColorBuffer,  // Everything else: a GL texture or Vulkan image of width x height.
};
GfxstreamResourceKind GfxstreamKindOf(const ResourceParams& params);

// Bytes gfxstream reads into, or writes from, its copy of the backing on every transfer; the
// backing must hold at least this many. nullopt when the size overflows 64 bits.
std::optional<uint64_t> GfxstreamCopyBytes(const ResourceParams& params);

}  // namespace vgpu::renderer::gfxstream
