#include "base/log.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
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
// The daemon's own connection to /dev/log (LogToSyslog), or -1.
std::atomic<int> syslog_fd{-1};

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

bool LogToSyslog() {
  // A datagram socket of our own rather than glibc's syslog(): glibc reconnects with socket() and
  // connect() whenever a send fails, which the sandbox refuses, and takes a lock the sandbox's
  // supervisor thread must not wait on; this one is connected once, here, before the sandbox.
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, "/dev/log", sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return false;
  }
  syslog_fd.store(fd);
  return true;
}

bool LoggingToSyslog() { return syslog_fd.load() >= 0; }

namespace {

void SendToSyslog(int fd, int priority, const char* message) {
  // RFC 3164 as a local syslog daemon takes it: "<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE", the
  // facility daemon. The time is UTC (local time would need the time zone, which the sandbox
  // cannot read); journald and rsyslog stamp local messages on receipt anyway.
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  // Month and day computed here: gmtime_r takes glibc's time-zone lock, which a thread refused an
  // openat inside tzset() holds while the supervisor answers it.
  const long long seconds = now.tv_sec;
  const long long days = seconds / 86400;
  const int second_of_day = static_cast<int>(seconds % 86400);
  // Days since 1970-01-01 to a civil date (proleptic Gregorian), era by era of 400 years.
  const long long shifted = days + 719468;
  const long long era = shifted / 146097;
  const long long day_of_era = shifted - era * 146097;
  const long long year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const long long day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const long long month_index = (5 * day_of_year + 2) / 153;  // 0 = March.
  const int day = static_cast<int>(day_of_year - (153 * month_index + 2) / 5 + 1);
  const int month = static_cast<int>(month_index < 10 ? month_index + 2 : month_index - 10);
  char datagram[1200];
  const int length = snprintf(datagram, sizeof(datagram), "<%d>%s %2d %02d:%02d:%02d %s[%d]: %s",
                              LOG_DAEMON | priority, kMonths[month], day, second_of_day / 3600,
                              second_of_day / 60 % 60, second_of_day % 60, "vhost-device-gpu",
                              static_cast<int>(getpid()), message);
  if (length <= 0) return;
  // Never blocks: a syslog daemon that does not read loses lines, the device does not wait. A
  // syslog daemon restarted meanwhile (a new socket at /dev/log) loses the rest: reconnecting
  // needs socket(), which the sandbox refuses.
  ssize_t ignored =
      send(fd, datagram, std::min<size_t>(static_cast<size_t>(length), sizeof(datagram) - 1),
           MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)ignored;
}

void WriteToStderr(LogLevel level, const char* message) {
  // The time of day in UTC, without gmtime_r for the reason above; one write per line so that
  // lines from different threads never interleave.
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const long second_of_day = static_cast<long>(now.tv_sec % 86400);
  char line[1100];
  int length = snprintf(line, sizeof(line), "%02ld:%02ld:%02ld.%03ld %s vhost-device-gpu: %s",
                        second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60,
                        now.tv_nsec / 1000000, LevelName(level), message);
  if (length < 0) return;
  size_t used = std::min<size_t>(static_cast<size_t>(length), sizeof(line) - 2);
  line[used++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, line, used);
  (void)ignored;
}

}  // namespace

void LogLine(LogLevel level, const char* message) {
  const int fd = syslog_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    SendToSyslog(fd, SyslogPriority(level), message);
  } else {
    WriteToStderr(level, message);
  }
}

void LogMessageV(LogLevel level, const char* format, va_list arguments) {
  char message[1024];
  if (vsnprintf(message, sizeof(message), format, arguments) < 0) return;
  LogLine(level, message);
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
