// Logging to stderr (or syslog, see LogToSyslog) with levels error..trace.
//
//   SetLogLevel(LogLevel::kDebug);
//   LogInfo("listening on %s", path.c_str());
//   LogWarning("guest sent %u entries", count);
//
// Guest-triggered messages go through RateLimitedLog so that a hostile guest cannot flood the
// host's log (docs/ARCHITECTURE.md, "Errors", tier 1).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vgpu {

enum class LogLevel { kError = 0, kWarning, kInfo, kDebug, kTrace };

void SetLogLevel(LogLevel level);
LogLevel CurrentLogLevel();
bool LogEnabled(LogLevel level);

// Parses "error", "warn"/"warning", "info", "debug" or "trace".
std::optional<LogLevel> ParseLogLevel(std::string_view text);

// From now on lines go to syslog (facility daemon, ident "vhost-device-gpu", with the pid) instead
// of stderr; the connection to /dev/log is made here, so call it before the sandbox. For a daemon
// whose stderr goes nowhere: libvirt starts backends with their output on /dev/null. False (and
// stderr stays) where no syslog daemon listens.
bool LogToSyslog();
bool LoggingToSyslog();
// One finished line, to syslog or stderr as LogMessage would send it. Takes no lock and allocates
// nothing (no gmtime_r, no FILE): the sandbox's supervisor thread logs through it.
void LogLine(LogLevel level, const char* message);

void LogMessage(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));
void LogMessageV(LogLevel level, const char* format, va_list arguments);

#define VGPU_LOG_FUNCTION(Name, Level)                                             \
  inline void Name(const char* format, ...) __attribute__((format(printf, 1, 2))); \
  inline void Name(const char* format, ...) {                                      \
    if (!LogEnabled(Level)) return;                                                \
    va_list arguments;                                                             \
    va_start(arguments, format);                                                   \
    LogMessageV(Level, format, arguments);                                         \
    va_end(arguments);                                                             \
  }
VGPU_LOG_FUNCTION(LogError, LogLevel::kError)
VGPU_LOG_FUNCTION(LogWarning, LogLevel::kWarning)
VGPU_LOG_FUNCTION(LogInfo, LogLevel::kInfo)
VGPU_LOG_FUNCTION(LogDebug, LogLevel::kDebug)
VGPU_LOG_FUNCTION(LogTrace, LogLevel::kTrace)
#undef VGPU_LOG_FUNCTION

// Lets through at most `burst` messages per `period`, then counts what it suppressed and reports
// the count with the next message that passes. Not thread-safe: one instance per thread.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(uint32_t burst = 20,
                          std::chrono::milliseconds period = std::chrono::seconds(1))
      : burst_(burst), period_(period) {}

  void Log(LogLevel level, const char* format, ...) __attribute__((format(printf, 3, 4)));

  uint64_t suppressed_total() const { return suppressed_total_; }

 private:
  uint32_t burst_;
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point window_start_{};
  uint32_t in_window_ = 0;
  uint64_t suppressed_since_last_ = 0;
  uint64_t suppressed_total_ = 0;
};

}  // namespace vgpu
