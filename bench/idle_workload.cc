// idle: a connected guest with a frame on the display and nothing to do, as a desktop that is
// not changing. Measures what the backend costs while it waits: CPU, wake-ups, memory.
#include <thread>

#include "display_setup.h"
#include "process_stats.h"
#include "workload.h"

namespace vgpu::bench {
namespace {

Result<void> RunIdle(WorkloadRun& run) {
  Result<ShownFrame> shown = ShowFrame(run, 1920, 1080);
  if (!shown) return ErrorOf(shown);
  if (run.before_measuring) run.before_measuring();
  const std::optional<ProcessSample> before = run.connection.Sample();
  if (!before) {
    run.result.notes.push_back("nothing to measure: no backend process of ours (socket backend)");
    return {};
  }
  const Clock::time_point start = Clock::now();
  // Doing nothing for the duration is the workload itself.
  std::this_thread::sleep_for(std::chrono::duration<double>(run.options.duration_seconds));
  const std::optional<ProcessSample> after = run.connection.Sample();
  const double seconds = SecondsBetween(start, Clock::now());
  if (!after) return MakeError(ErrorKind::kClosed, "the backend exited while idle");
  run.result.Add("resident_memory", "kB", static_cast<double>(after->resident_kb), Better::kLower);
  run.result.Add("private_dirty_memory", "kB", static_cast<double>(after->private_dirty_kb),
                 Better::kLower);
  run.result.Add("proportional_memory", "kB", static_cast<double>(after->proportional_kb),
                 Better::kLower);
  run.result.Add("anonymous_memory", "kB", static_cast<double>(after->resident_anonymous_kb),
                 Better::kLower);
  run.result.Add("guest_ram_touched", "kB", static_cast<double>(after->resident_shared_memory_kb),
                 Better::kNeither);
  run.result.Add("threads", "", static_cast<double>(after->threads), Better::kNeither);
  run.result.Add("backend_cpu_percent", "%",
                 (after->cpu_seconds - before->cpu_seconds) / seconds * 100, Better::kLower);
  run.result.Add("wakeups_per_second", "1/s",
                 // Threads that ended meanwhile take their counts with them: never below zero.
                 static_cast<double>(after->context_switches > before->context_switches
                                         ? after->context_switches - before->context_switches
                                         : 0) /
                     seconds,
                 Better::kLower);
  run.result.notes.push_back(
      "resident memory includes the 1920x1080 resource (8.3 MB, anonymous), the guest RAM pages "
      "the backend touched (QEMU's memory, shared) and library pages shared host-wide; private "
      "dirty memory is what one more backend costs the host");
  return {};
}

}  // namespace

std::vector<Workload> IdleWorkloads() {
  return {Workload{"idle", "connected, one 1080p frame shown, nothing to do", 1920, 1080, RunIdle}};
}

}  // namespace vgpu::bench
