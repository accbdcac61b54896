// Scanout state: which resource a display head shows, and the part of it (SET_SCANOUT's rect).
#pragma once

#include <cstdint>

#include "gpu/ids.h"
#include "gpu/protocol.h"

namespace vgpu::gpu {

struct Scanout {
  ResourceId resource;  // 0: disabled.
  Rect rect{};          // In resource coordinates; width x height is the head's mode.
  // What the VMM last reported for this head (GET_DISPLAY_INFO), used for local display info and
  // generated EDIDs.
  bool display_enabled = false;
  uint32_t display_width = 0;
  uint32_t display_height = 0;
  // The size last announced to the VMM with a SCANOUT message (0x0: none or disabled).
  uint32_t announced_width = 0;
  uint32_t announced_height = 0;
};

// QEMU's defaults for output 0 (xres/yres properties).
inline constexpr uint32_t kDefaultDisplayWidth = 1280;
inline constexpr uint32_t kDefaultDisplayHeight = 800;
// QEMU rejects smaller scanouts (commit da35f7f1ee): its UI asserts on zero sizes.
inline constexpr uint32_t kMinScanoutSize = 16;

}  // namespace vgpu::gpu
