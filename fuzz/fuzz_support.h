// What every fuzz target shares besides its input format: a setup failure that stops the run,
// an invariant check that makes libFuzzer record the input, and one event loop per process.
//
//   CheckInvariant("gpu_command_fuzzer", used <= writable, "used length within the buffer");
//   FuzzEventLoop().RunOnce(0);
#pragma once

#include <cstdio>
#include <cstdlib>

#include "base/event_loop.h"

namespace vgpu::fuzz {

// The harness itself could not be set up (no memfd, no mapping): not a finding about the code.
[[noreturn]] inline void FuzzSetupFailed(const char* what) {
  std::fprintf(stderr, "fuzzer setup failed: %s\n", what);
  std::abort();
}

// A violated invariant aborts, which libFuzzer reports as a crash and saves the input for.
inline void CheckInvariant(const char* fuzzer, bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "%s invariant violated: %s\n", fuzzer, what);
  std::abort();
}

// Lives for the whole process, like the daemon's device-thread loop; never destroyed, so no
// input's teardown can race it.
inline EventLoop& FuzzEventLoop() {
  static EventLoop* loop = [] {
    auto* created = new EventLoop;
    if (!created->Init()) FuzzSetupFailed("EventLoop::Init");
    return created;
  }();
  return *loop;
}

}  // namespace vgpu::fuzz
