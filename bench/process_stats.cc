#include "process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace vgpu::bench {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The number after `name` ("VmRSS:", "Threads:") in a /proc status or smaps_rollup file.
std::optional<uint64_t> StatusField(const std::string& status, const char* name) {
  const size_t at = status.find(name);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(status.c_str() + at + std::strlen(name), nullptr, 10);
}

uint64_t ContextSwitches(pid_t pid) {
  uint64_t total = 0;
  const std::string directory = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(directory.c_str());
  if (tasks == nullptr) return 0;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::optional<std::string> status = ReadFile(directory + "/" + entry->d_name + "/status");
    if (!status) continue;
    total += StatusField(*status, "\nvoluntary_ctxt_switches:").value_or(0);
    total += StatusField(*status, "nonvoluntary_ctxt_switches:").value_or(0);
  }
  closedir(tasks);
  return total;
}

}  // namespace

std::optional<ProcessSample> SampleProcess(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  std::optional<std::string> stat = ReadFile(base + "/stat");
  std::optional<std::string> status = ReadFile(base + "/status");
  if (!stat || !status) return std::nullopt;
  // proc(5): the command name (field 2) is in parentheses and may hold spaces; fields 14 and 15
  // (utime, stime) are the 12th and 13th after the closing parenthesis.
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat->substr(close + 2));
  std::string field;
  uint64_t utime = 0;
  uint64_t stime = 0;
  for (int index = 3; index <= 15 && fields >> field; ++index) {
    if (index == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (index == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  ProcessSample sample;
  sample.cpu_seconds =
      static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  sample.resident_kb = StatusField(*status, "VmRSS:").value_or(0);
  sample.resident_anonymous_kb = StatusField(*status, "RssAnon:").value_or(0);
  sample.resident_shared_memory_kb = StatusField(*status, "RssShmem:").value_or(0);
  if (std::optional<std::string> rollup = ReadFile(base + "/smaps_rollup")) {
    sample.private_dirty_kb = StatusField(*rollup, "Private_Dirty:").value_or(0);
    sample.proportional_kb = StatusField(*rollup, "\nPss:").value_or(0);
  }
  sample.threads = StatusField(*status, "Threads:").value_or(0);
  sample.context_switches = ContextSwitches(pid);
  return sample;
}

double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& value) {
    return static_cast<double>(value.tv_sec) + static_cast<double>(value.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace vgpu::bench
