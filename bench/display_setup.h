// The frame every display workload starts from: a resource shown on scanout 0 with a known
// pattern, checked in QEMU's display surface.
//
//   Result<ShownFrame> shown = ShowFrame(run, 1920, 1080);  // Resource kFrameResource.
//   shown->image.SetPixel(x, y, value);                      // Then transfer and flush.
#pragma once

#include <cstdint>

#include "base/result.h"
#include "guest_image.h"
#include "workload.h"

namespace vgpu::bench {

inline constexpr uint32_t kFrameResource = 1;
inline constexpr uint32_t kPatternSeed = 7;

// The resource shown on scanout 0, its guest backing, and the frame counter of the markers.
struct ShownFrame {
  GuestImage image;
  uint32_t frame = 0;
};

// Creates a width x height B8G8R8X8 resource (what Linux uses for DRM_FORMAT_XRGB8888), backs
// it (options.backing), draws the pattern, shows it on scanout 0 and waits until the display
// surface holds the pattern (16 sample pixels); an error says what the surface held instead.
Result<ShownFrame> ShowFrame(WorkloadRun& run, uint32_t width, uint32_t height);

// The same frame as a guest blob (what Linux makes a dumb buffer when the device offers
// RESOURCE_BLOB and no VIRGL): RESOURCE_CREATE_BLOB with the image's entries, SET_SCANOUT_BLOB,
// RESOURCE_FLUSH. Fails at once when the device does not offer RESOURCE_BLOB.
Result<ShownFrame> ShowBlobFrame(WorkloadRun& run, uint32_t width, uint32_t height);

}  // namespace vgpu::bench
