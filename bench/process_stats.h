// What /proc says about a backend process: CPU time (all threads, utime + stime of
// /proc/PID/stat, which keeps the time of threads that have exited), resident set size and its
// parts, thread count and context switches (summed over /proc/PID/task/*/status).
//
// Resident set size counts every page mapped, including library text that all processes on the
// host share and the guest RAM pages that QEMU owns. What one more daemon costs a host is its
// private dirty memory; Pss splits shared pages between the processes that map them (proc(5),
// /proc/PID/smaps_rollup).
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
  uint64_t resident_anonymous_kb = 0;      // RssAnon: heap, stacks, resource images.
  uint64_t resident_shared_memory_kb = 0;  // RssShmem: the guest RAM memfd pages touched.
  // Private_Dirty (smaps_rollup): pages no other process can share (written heap, stacks,
  // images, relocated library data). Private_Clean is left out: those are file pages that a
  // second daemon would share, private only while no other process maps them.
  uint64_t private_dirty_kb = 0;
  uint64_t proportional_kb = 0;  // Pss (smaps_rollup).
  uint64_t threads = 0;
  uint64_t context_switches = 0;  // Voluntary + involuntary, all threads alive now.
};

// Nullopt once the process has gone (or /proc cannot be read).
std::optional<ProcessSample> SampleProcess(pid_t pid);

// This process's own CPU time (user + system, all threads): the frontend and display side.
double OwnCpuSeconds();

}  // namespace vgpu::bench
