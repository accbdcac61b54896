// What the device model counts and how it reports what a guest did wrong.
//
//   diagnostics.statistics.display_updates++;
//   diagnostics.GuestWarning("read-back of resource %u failed: %s", id, message);
//
// Every log line a guest can cause goes through guest_log: at most 20 a second, the rest counted
// and reported with the next line that passes (docs/ARCHITECTURE.md, "Errors").
#pragma once

#include <cstdarg>
#include <cstdint>

#include "base/log.h"

namespace vgpu::gpu {

struct CommandStatistics {
  uint64_t commands = 0;
  uint64_t errors = 0;
  uint64_t cursor_commands = 0;
  uint64_t display_updates = 0;
  uint64_t fences_completed = 0;
  // Resources whose pixels moved to new pages because the VMM might still be reading the lent
  // ones when a transfer came (ScanoutExecutor::BeforePixelsChange).
  uint64_t pixels_moved_from_loans = 0;
};

struct Diagnostics {
  CommandStatistics statistics;
  RateLimitedLog guest_log;

  void GuestWarning(const char* format, ...) __attribute__((format(printf, 2, 3))) {
    if (!LogEnabled(LogLevel::kWarning)) return;
    char message[512];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    guest_log.Log(LogLevel::kWarning, "%s", message);
  }
};

}  // namespace vgpu::gpu
