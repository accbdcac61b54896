// What the host must offer before gfxstream is started, checked and set up by the daemon
// because gfxstream itself does not cope without it (docs/SECURITY.md, "gfxstream"):
//
//   - gfxstream ignores its SURFACELESS flag and opens EGL's default display. On a host without
//     a window system that display has no configs, and stream_renderer_init then waits forever.
//     Asked for surfaceless (--use-surfaceless, the default), the daemon sets EGL_PLATFORM to
//     "surfaceless" for it, unless the user set EGL_PLATFORM.
//   - With the Vulkan decoder on and no Vulkan driver, gfxstream's start-up crashes (a null
//     dereference while it tears its half-made Vulkan state down). The daemon asks the Vulkan
//     loader for a physical device first and refuses to start without one.
//
//   - gfxstream does not check that a colour buffer fits the host's image limits: a Vulkan image
//     larger than the device allows crashes it. The daemon lowers
//     GfxstreamOptions::max_image_dimension to the Vulkan devices' limit.
//
//   if (Result<void> ready = PrepareGfxstreamHost(options); !ready) { print; exit(1); }
//
// Call before any thread starts: it may set an environment variable.
#pragma once

#include "base/result.h"
#include "renderer/gfxstream/gfxstream_backend.h"

namespace vgpu::renderer::gfxstream {

Result<void> PrepareGfxstreamHost(GfxstreamOptions& options);

struct VulkanDeviceLimits {
  uint32_t max_image_dimension = 0;  // The smallest maxImageDimension2D of the devices.
};

// Whether the Vulkan loader (libvulkan.so.1) finds at least one physical device, and its
// limits; the error says what is missing, in a line fit for the user.
Result<VulkanDeviceLimits> ProbeVulkanDevice();

}  // namespace vgpu::renderer::gfxstream
