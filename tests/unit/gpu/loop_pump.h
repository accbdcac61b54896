// The display tests run the daemon's event loop on the test thread: PumpLoopUntil turns it until
// QEMU's side (a FakeDisplay on its own thread) or the daemon's state shows what the test awaits.
#pragma once

#include <chrono>
#include <functional>

#include "base/event_loop.h"

namespace vgpu::gpu::testing {

// Runs `loop` until `condition` holds; false once `timeout` has passed.
inline bool PumpLoopUntil(EventLoop& loop, const std::function<bool()>& condition,
                          std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    loop.RunOnce(10);
  }
  return true;
}

}  // namespace vgpu::gpu::testing
