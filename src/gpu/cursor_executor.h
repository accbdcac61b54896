// CursorExecutor: the cursor queue (§5.7.6.10). UPDATE_CURSOR sends the resource's 64x64 image
// and the position to the VMM (CURSOR_UPDATE), resource 0 hides it, MOVE_CURSOR only moves it.
// Nothing is written back to the guest.
//
//   cursor.Run(command);   // Errors are counted and logged (rate-limited), never answered.
#pragma once

#include "gpu/command.h"
#include "gpu/diagnostics.h"
#include "gpu/display_channel.h"
#include "gpu/resource_table.h"

namespace vgpu::gpu {

class CursorExecutor {
 public:
  CursorExecutor(ResourceTable& resources, DisplayChannel* display, Diagnostics& diagnostics)
      : resources_(resources), display_(display), diagnostics_(diagnostics) {}

  void Run(const CursorCommand& command);

 private:
  // The resource's image (a8r8g8b8), or a transparent one when it cannot be had.
  CursorImage Image(uint32_t resource_id);
  void Reject(const char* format, ...) __attribute__((format(printf, 2, 3)));

  ResourceTable& resources_;
  DisplayChannel* const display_;
  Diagnostics& diagnostics_;
};

}  // namespace vgpu::gpu
