// EDID for the virtual monitor behind each scanout (VIRTIO_GPU_CMD_GET_EDID).
//
//   EdidBlock edid = GenerateEdid(1920, 1080);
//   response.size = edid.size();
//   std::memcpy(response.edid, edid.data(), edid.size());
//
// Produces one VESA E-EDID 1.4 base block (128 bytes, no extensions) whose preferred detailed
// timing is the requested size. The guest's driver (Linux drm_edid.c) picks that mode. Modelled on
// QEMU's qemu_edid_generate (hw/display/edid-generate.c), written from the EDID 1.4 layout.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vgpu::gpu {

inline constexpr size_t kEdidBlockSize = 128;
using EdidBlock = std::array<uint8_t, kEdidBlockSize>;

// Used when the requested width or height is 0 (no size known yet), as QEMU does.
inline constexpr uint32_t kEdidDefaultWidth = 1024;
inline constexpr uint32_t kEdidDefaultHeight = 768;
// A detailed timing descriptor stores active pixels and lines in 12 bits. Larger sizes are
// clamped to this; showing them needs a DisplayID extension, which we do not generate.
inline constexpr uint32_t kEdidMaxDimension = 4095;
// QEMU's UI refuses scanouts below 16x16 (commit da35f7f1ee); smaller sizes are clamped up.
inline constexpr uint32_t kEdidMinDimension = 16;
inline constexpr uint32_t kEdidDefaultRefreshHz = 60;
inline constexpr uint32_t kEdidMinRefreshHz = 24;
inline constexpr uint32_t kEdidMaxRefreshHz = 240;
// The display product name; a name descriptor holds 13 characters, so guests see "vhost-device-".
inline constexpr char kEdidMonitorName[] = "vhost-device-gpu";

// Generates the EDID for a width x height monitor at refresh_hz. Never fails:
// - width or height 0: the 1024x768 default (both dimensions);
// - each dimension is clamped to [kEdidMinDimension, kEdidMaxDimension];
// - refresh_hz 0 means 60; otherwise it is clamped to [kEdidMinRefreshHz, kEdidMaxRefreshHz];
// - the pixel clock is capped at 655.35 MHz (16 bits of 10 kHz), so very large modes get a
//   lower refresh rate than asked for (4095x4095 comes out near 37 Hz).
EdidBlock GenerateEdid(uint32_t width, uint32_t height,
                       uint32_t refresh_hz = kEdidDefaultRefreshHz);

}  // namespace vgpu::gpu
