#include "base/log.h"

#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

namespace vgpu {
namespace {

std::atomic<int> current_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kWarning:
      return "WARN ";
    case LogLevel::kInfo:
      return "INFO ";
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kTrace:
      return "TRACE";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { current_level.store(static_cast<int>(level)); }

LogLevel CurrentLogLevel() { return static_cast<LogLevel>(current_level.load()); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) <= current_level.load(std::memory_order_relaxed);
}

std::optional<LogLevel> ParseLogLevel(std::string_view text) {
  if (text == "error") return LogLevel::kError;
  if (text == "warn" || text == "warning") return LogLevel::kWarning;
  if (text == "info") return LogLevel::kInfo;
  if (text == "debug") return LogLevel::kDebug;
  if (text == "trace") return LogLevel::kTrace;
  return std::nullopt;
}

namespace {
std::atomic<bool> to_syslog{false};

int SyslogPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return LOG_ERR;
    case LogLevel::kWarning:
      return LOG_WARNING;
    case LogLevel::kInfo:
      return LOG_INFO;
    case LogLevel::kDebug:
    case LogLevel::kTrace:
      return LOG_DEBUG;
  }
  return LOG_INFO;
}
}  // namespace

void LogToSyslog() {
  openlog("vhost-device-gpu", LOG_PID | LOG_NDELAY, LOG_DAEMON);
  to_syslog.store(true);
}

bool LoggingToSyslog() { return to_syslog.load(); }

void LogMessageV(LogLevel level, const char* format, va_list arguments) {
  if (to_syslog.load(std::memory_order_relaxed)) {
    vsyslog(SyslogPriority(level), format, arguments);
    return;
  }
  // One write per line so that lines from the two threads never interleave.
  char line[1024];
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  int prefix =
      snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld %s vhost-device-gpu: ", utc.tm_hour,
               utc.tm_min, utc.tm_sec, now.tv_nsec / 1000000, LevelName(level));
  if (prefix < 0) return;
  size_t used = static_cast<size_t>(prefix);
  int body = vsnprintf(line + used, sizeof(line) - used - 1, format, arguments);
  if (body < 0) return;
  used += static_cast<size_t>(body);
  if (used > sizeof(line) - 2) used = sizeof(line) - 2;
  line[used++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, line, used);
  (void)ignored;
}

void LogMessage(LogLevel level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  va_list arguments;
  va_start(arguments, format);
  LogMessageV(level, format, arguments);
  va_end(arguments);
}

void RateLimitedLog::Log(LogLevel level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= period_) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++suppressed_since_last_;
    ++suppressed_total_;
    return;
  }
  ++in_window_;
  if (suppressed_since_last_ > 0) {
    LogMessage(level, "(%llu similar messages suppressed)",
               static_cast<unsigned long long>(suppressed_since_last_));
    suppressed_since_last_ = 0;
  }
  va_list arguments;
  va_start(arguments, format);
  LogMessageV(level, format, arguments);
  va_end(arguments);
}

}  // namespace vgpu
