// Scanout state: which resource a display head shows, and the part of it (SET_SCANOUT's rect).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "gpu/protocol.h"
#include "renderer/renderer.h"

namespace vgpu::gpu {

// How a 3D scanout reaches the VMM's display, as last logged.
enum class ScanoutPath { kUnknown, kReadBack, kDmabuf };

// A 3D scanout that the VMM shows from a dmabuf of its resource: DMABUF_SCANOUT(2) sent once,
// then a DMABUF_UPDATE per flush. QEMU stops reading the display socket until it has answered a
// DMABUF_UPDATE, so one is in flight per scanout at a time; the damage of flushes that come
// meanwhile is merged and goes in the next one, and each flush is answered by the reply to the
// DMABUF_UPDATE that carried its damage.
struct ScanoutDmabuf {
  ResourceId resource;               // What `exported` shows (0: no dmabuf scanout).
  renderer::ScanoutExport exported;  // Our fd (the VMM holds its own), valid while shown.
  uint64_t display_generation = 0;   // The display socket it was announced on.

  bool update_in_flight = false;
  std::vector<uint64_t> in_flight_flushes;  // Flushes the update in flight answers.
  std::optional<Rect> pending_damage;       // Scanout-relative, for the next update.
  std::vector<uint64_t> pending_flushes;    // Flushes the next update answers.

  bool active() const { return exported.dmabuf.valid(); }
};

// How a blob's bytes make the picture (SET_SCANOUT_BLOB, §5.7.6.8): one plane of `format` pixels,
// width x height, row y at offset + y * stride; checked to lie inside the blob.
struct BlobFramebuffer {
  uint32_t format = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t stride = 0;
  uint64_t offset = 0;
};

struct Scanout {
  ResourceId resource;  // 0: disabled.
  // Set by SET_SCANOUT_BLOB: the resource is a blob laid out like this (`rect` is inside it).
  std::optional<BlobFramebuffer> framebuffer;
  Rect rect{};  // In resource coordinates; width x height is the head's mode.
  // What the VMM last reported for this head (GET_DISPLAY_INFO), used for local display info and
  // generated EDIDs.
  bool display_enabled = false;
  uint32_t display_width = 0;
  uint32_t display_height = 0;
  // The size last announced to the VMM with a SCANOUT message (0x0: none or disabled).
  uint32_t announced_width = 0;
  uint32_t announced_height = 0;
  ScanoutDmabuf dmabuf;
  ScanoutPath logged_path = ScanoutPath::kUnknown;
};

using ScanoutArray = std::array<Scanout, kMaxScanouts>;

// QEMU's defaults for output 0 (xres/yres properties).
inline constexpr uint32_t kDefaultDisplayWidth = 1280;
inline constexpr uint32_t kDefaultDisplayHeight = 800;
// QEMU rejects smaller scanouts (commit da35f7f1ee): its UI asserts on zero sizes.
inline constexpr uint32_t kMinScanoutSize = 16;

// Scanouts as a device starts: only head 0, at QEMU's default size, until the VMM says more.
inline ScanoutArray InitialScanouts() {
  ScanoutArray scanouts{};
  scanouts[0].display_enabled = true;
  scanouts[0].display_width = kDefaultDisplayWidth;
  scanouts[0].display_height = kDefaultDisplayHeight;
  return scanouts;
}

// Logs which way 3D results reach the display for a scanout, once per scanout and path: the
// first thing to know about a setup, but not on every page flip.
void LogScanoutPath(Scanout& scanout, ScanoutPath path, const char* format, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace vgpu::gpu
