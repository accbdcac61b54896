#include "gpu/cursor_executor.h"

#include <cstdarg>
#include <cstdio>

namespace vgpu::gpu {

void CursorExecutor::Reject(const char* format, ...) {
  ++diagnostics_.statistics.errors;
  char message[256];
  va_list arguments;
  va_start(arguments, format);
  vsnprintf(message, sizeof(message), format, arguments);
  va_end(arguments);
  diagnostics_.GuestWarning("guest: %s", message);
}

CursorImage CursorExecutor::Image(uint32_t resource_id) {
  CursorImage transparent{};
  Resource* resource = resources_.Find(ResourceId{resource_id});
  if (resource == nullptr) {
    Reject("UPDATE_CURSOR resource %u -> ERR_INVALID_RESOURCE_ID", resource_id);
    return transparent;
  }
  if (resource->guest_memory_blob() && resource->backing) {
    // A blob cursor (Linux makes its cursor a guest blob when it has RESOURCE_BLOB): 64x64
    // a8r8g8b8 rows, packed, at the start of the blob.
    CursorImage image{};
    if (!resource->backing->view().CopyOut(
            0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(image.data()), sizeof(image)))) {
      Reject("UPDATE_CURSOR blob %u holds less than a 64x64 image -> ERR_INVALID_PARAMETER",
             resource_id);
      return transparent;
    }
    return image;
  }
  // §5.7.6.10: the cursor is a 64x64 resource. Anything else shows an empty cursor rather than
  // reading past a smaller image (CVE-2016-9846 class).
  if (resource->width != kCursorSize || resource->height != kCursorSize) {
    Reject("UPDATE_CURSOR resource %u is %ux%u -> ERR_INVALID_PARAMETER", resource_id,
           resource->width, resource->height);
    return transparent;
  }
  Result<CursorImage> image = resource->renderer->ReadCursor(resource->id);
  if (!image) {
    Reject("UPDATE_CURSOR: %s -> ERR_UNSPEC", image.error().message.c_str());
    return transparent;
  }
  return *image;
}

void CursorExecutor::Run(const CursorCommand& command) {
  ++diagnostics_.statistics.cursor_commands;
  const UpdateCursor& request = command.request;
  const CursorPos& position = request.pos;
  if (position.scanout_id >= kMaxScanouts) {
    Reject("cursor on scanout %u -> ERR_INVALID_SCANOUT_ID", position.scanout_id);
    return;
  }
  if (display_ == nullptr || !display_->attached()) return;
  // A failed send detaches the display: nothing more to do for this command either way.
  if (command.move) {
    (void)display_->SendCursorPos(position.scanout_id, position.x, position.y);
    return;
  }
  if (request.resource_id == 0) {
    (void)display_->SendCursorHide(position.scanout_id, position.x, position.y);
    return;
  }
  const CursorImage pixels = Image(request.resource_id);
  (void)display_->SendCursorUpdate(position.scanout_id, position.x, position.y, request.hot_x,
                                   request.hot_y, pixels.data());
}

}  // namespace vgpu::gpu
