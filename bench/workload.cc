#include "workload.h"

#include "process_stats.h"
#include "statistics.h"

namespace vgpu::bench {
namespace {

constexpr size_t kMaxAnomaliesReported = 20;

}  // namespace

const std::vector<Workload>& AllWorkloads() {
  static const std::vector<Workload> workloads = [] {
    std::vector<Workload> all;
    for (std::vector<Workload> (*group)() :
         {FrameWorkloads, CommandWorkloads, IdleWorkloads, VirglWorkloads, GfxstreamWorkloads}) {
      for (Workload& workload : group()) all.push_back(std::move(workload));
    }
    return all;
  }();
  return workloads;
}

const Workload* FindWorkload(const std::string& name) {
  for (const Workload& workload : AllWorkloads()) {
    if (workload.name == name) return &workload;
  }
  return nullptr;
}

WorkloadResult RunWorkload(const Workload& workload, const BackendSpec& backend,
                           const std::string& label, const WorkloadOptions& options,
                           const std::function<void()>& before_measuring) {
  WorkloadResult result;
  result.workload = workload.name;
  result.backend_label = label;
  result.backend = backend.text;
  ConnectionOptions connection_options;
  connection_options.memory_size = options.memory_size;
  connection_options.display_width = workload.display_width;
  connection_options.display_height = workload.display_height;
  Result<std::unique_ptr<BackendConnection>> connection =
      BackendConnection::Open(backend, connection_options);
  if (!connection) {
    result.error = "connecting: " + connection.error().message;
    return result;
  }
  Result<std::unique_ptr<GuestGpu>> gpu = GuestGpu::Create((*connection)->session());
  if (!gpu) {
    result.error = "guest buffers: " + gpu.error().message;
    return result;
  }
  WorkloadRun run{options, **connection, **gpu, result, before_measuring};
  Result<void> ran = workload.run(run);
  if (!ran) {
    result.error = ran.error().message;
    if (!(*connection)->BackendRunning()) {
      result.error += " [the backend exited; its output: " + (*connection)->BackendOutput() + "]";
    }
  }
  result.ok = static_cast<bool>(ran);
  std::vector<std::string> anomalies = (*connection)->display().Anomalies();
  if (anomalies.size() > kMaxAnomaliesReported) {
    const size_t more = anomalies.size() - kMaxAnomaliesReported;
    anomalies.resize(kMaxAnomaliesReported);
    anomalies.push_back("... and " + std::to_string(more) + " more");
  }
  for (std::string& anomaly : anomalies) result.anomalies.push_back("display: " + anomaly);
  result.backend_exit = (*connection)->Close();
  if (backend.kind == BackendSpec::Kind::kSocket) {
    result.notes.push_back(
        "backend reached through an existing socket: its CPU time and memory are not available");
  }
  return result;
}

Result<LoopMeasurement> MeasureLoop(WorkloadRun& run,
                                    const std::function<Result<double>()>& iteration,
                                    const std::function<void()>& on_measuring) {
  const auto warmup_end = Clock::now() + std::chrono::duration<double>(run.options.warmup_seconds);
  while (Clock::now() < warmup_end) {
    if (Result<double> sample = iteration(); !sample) {
      return tl::unexpected(Error{sample.error().kind, "warm-up: " + sample.error().message, 0});
    }
  }
  if (run.before_measuring) run.before_measuring();
  if (on_measuring) on_measuring();
  LoopMeasurement loop;
  const std::optional<ProcessSample> before = run.connection.Sample();
  const double own_before = OwnCpuSeconds();
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(run.options.duration_seconds);
  Clock::time_point now = start;
  // At least one measured iteration, however short the duration.
  do {
    Result<double> sample = iteration();
    if (!sample) {
      return tl::unexpected(Error{
          sample.error().kind,
          "iteration " + std::to_string(loop.samples.size()) + ": " + sample.error().message, 0});
    }
    loop.samples.push_back(*sample);
    now = Clock::now();
  } while (now < end);
  loop.wall_seconds = SecondsBetween(start, now);
  loop.own_cpu_seconds = OwnCpuSeconds() - own_before;
  const std::optional<ProcessSample> after = run.connection.Sample();
  if (before && after) {
    loop.backend_cpu_seconds = after->cpu_seconds - before->cpu_seconds;
    loop.backend_resident_kb = after->resident_kb;
  }
  return loop;
}

void AddDistribution(WorkloadResult& result, const std::string& name,
                     const std::vector<double>& samples) {
  const Summary summary = Summarize(samples);
  result.Add(name + "_min", "us", summary.min * 1e6, Better::kLower);
  result.Add(name + "_median", "us", summary.median * 1e6, Better::kLower);
  result.Add(name + "_p99", "us", summary.p99 * 1e6, Better::kLower);
}

void AddBackendCpu(WorkloadResult& result, const LoopMeasurement& loop, const std::string& item) {
  if (!loop.backend_cpu_seconds) {
    result.notes.push_back("backend CPU time not measured (no process of ours to read /proc of)");
    return;
  }
  const double iterations = static_cast<double>(loop.iterations());
  result.Add("backend_cpu_per_" + item, "us", *loop.backend_cpu_seconds / iterations * 1e6,
             Better::kLower);
  result.Add("backend_cpu_percent", "%", *loop.backend_cpu_seconds / loop.wall_seconds * 100,
             Better::kLower);
  if (loop.backend_resident_kb) {
    result.Add("backend_resident_memory", "kB", static_cast<double>(*loop.backend_resident_kb),
               Better::kLower);
  }
  result.Add("tool_cpu_per_" + item, "us", loop.own_cpu_seconds / iterations * 1e6,
             Better::kNeither);
}

}  // namespace vgpu::bench
