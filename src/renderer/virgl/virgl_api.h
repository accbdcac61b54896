// The virglrenderer C API as this backend uses it, with what the installed headers leave out.
//
//   #include "renderer/virgl/virgl_api.h"   // Never <virglrenderer.h> directly.
//   virgl_box box{.x = 0, .y = 0, .z = 0, .w = width, .h = height, .d = 1};
//   PaddedResourceInfo info{};
//   virgl_renderer_resource_get_info(id, &info.info);
//
// Built against Debian's virglrenderer 0.10.4. Its pkg-config file does not define
// VIRGL_RENDERER_UNSTABLE_APIS, without which callbacks version 3 (write_context_fence),
// virgl_renderer_context_create_fence and the UNSTABLE init flags are invisible, although the
// library itself is built with them. So the macro is defined here, once, before the include.
#pragma once

#include <sys/uio.h>

#include <cstdint>

#ifndef VIRGL_RENDERER_UNSTABLE_APIS
#define VIRGL_RENDERER_UNSTABLE_APIS 1
#endif
// The header has no extern "C" block of its own.
extern "C" {
#include <virglrenderer.h>
}

// virglrenderer.h only declares struct virgl_box; the library reads it as its pipe_box of six
// 32-bit ints (QEMU passes its struct virtio_gpu_box the same way).
// Spec: struct virtio_gpu_box (§5.7.6.7, TRANSFER_TO_HOST_3D).
struct virgl_box {
  uint32_t x;
  uint32_t y;
  uint32_t z;
  uint32_t w;
  uint32_t h;
  uint32_t d;
};
static_assert(sizeof(virgl_box) == 24);

namespace vgpu::renderer::virgl {

// Capset ids (virtio-gpu §5.7.4 / virglrenderer's src/virglrenderer_hw.h, which is not installed).
inline constexpr uint32_t kCapsetVirgl = 1;
inline constexpr uint32_t kCapsetVirgl2 = 2;
inline constexpr uint32_t kCapsetVenus = 4;

// Gallium's PIPE_TEXTURE_2D (enum pipe_texture_target), what QEMU uses for RESOURCE_CREATE_2D.
inline constexpr uint32_t kPipeTexture2d = 2;
// VIRGL_BIND_RENDER_TARGET (virglrenderer.h's VIRGL_RES_BIND_RENDER_TARGET).
inline constexpr uint32_t kBindRenderTarget = 1u << 1;
// Spec: VIRTIO_GPU_RESOURCE_FLAG_Y_0_TOP (resource_create_3d.flags and resource_info.flags).
inline constexpr uint32_t kResourceFlagY0Top = 1u << 0;

// virglrenderer 1.0 appended `int fd` to struct virgl_renderer_resource_info and 1.x writes it.
// A binary built against 0.10.4's header that later runs on a 1.x library would get 4 bytes
// written past the struct, so the struct always travels with spare room behind it.
struct PaddedResourceInfo {
  virgl_renderer_resource_info info;
  uint8_t reserved_for_newer_libraries[64];
};

}  // namespace vgpu::renderer::virgl
