// What /proc says about a backend process: CPU time (all threads, utime + stime of
// /proc/PID/stat, which keeps the time of threads that have exited), resident set size, thread
// count and context switches (summed over /proc/PID/task/*/status).
//
//   std::optional<ProcessSample> before = SampleProcess(pid);
//   ... run the workload ...
//   std::optional<ProcessSample> after = SampleProcess(pid);
//   double cpu = after->cpu_seconds - before->cpu_seconds;
//
// Only a backend the tool started has a pid; one reached through an existing socket has none
// and these figures are reported as unavailable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace vgpu::bench {

struct ProcessSample {
  double cpu_seconds = 0;  // utime + stime, in clock ticks converted to seconds.
  uint64_t resident_kb = 0;
  uint64_t threads = 0;
  uint64_t context_switches = 0;  // Voluntary + involuntary, all threads alive now.
};

// Nullopt once the process has gone (or /proc cannot be read).
std::optional<ProcessSample> SampleProcess(pid_t pid);

// This process's own CPU time (user + system, all threads): the frontend and display side.
double OwnCpuSeconds();

}  // namespace vgpu::bench
