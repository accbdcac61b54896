// Workloads: what the benchmark runs against a backend, and the loop they share.
//
// A workload is a name, the display size QEMU reports for it, and a function that drives a
// connected backend and adds figures to a WorkloadResult. AllWorkloads() is the registry: a new
// workload is one more entry there. A workload the backend cannot run (3D on a backend without
// VIRTIO_GPU_F_VIRGL) sets result.skipped and returns success.
//
//   Result<void> RunMyWorkload(WorkloadRun& run) {
//     ... set up resources with run.gpu ...
//     Result<LoopMeasurement> loop = MeasureLoop(run, [&]() -> Result<double> {
//       ... one iteration; return its duration in seconds ...
//     });
//     AddDistribution(run.result, "my_latency", loop->samples);
//   }
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend.h"
#include "base/result.h"
#include "guest_gpu.h"
#include "guest_image.h"
#include "workload_result.h"

namespace vgpu::bench {

struct WorkloadOptions {
  double duration_seconds = 3.0;
  double warmup_seconds = 0.3;
  BackingLayout backing = BackingLayout::kPages;
  // VIRTIO_GPU_FLAG_FENCE on frame transfers and flushes. Linux does not fence them for a dumb
  // (non-blob) primary plane (virtio_gpu_plane_prepare_fb returns before allocating a fence);
  // it fences only the cursor image's transfer, which the cursor workload always does.
  bool fence_frames = false;
  uint64_t memory_size = 256ull << 20;
  // The recorded 3D command stream that submit3d-fence replays (--stream).
  std::string stream_path = VGPU_BENCH_DEFAULT_STREAM;
};

// Everything a running workload uses.
struct WorkloadRun {
  const WorkloadOptions& options;
  BackendConnection& connection;
  GuestGpu& gpu;
  WorkloadResult& result;
  // Called between the warm-up and the measured part (MeasureLoop, idle); --instances uses it
  // to start the measured parts of concurrent instances together. May be empty.
  std::function<void()> before_measuring;
};

struct Workload {
  std::string name;
  std::string description;
  uint32_t display_width = 1920;
  uint32_t display_height = 1080;
  std::function<Result<void>(WorkloadRun&)> run;
};

const std::vector<Workload>& AllWorkloads();
const Workload* FindWorkload(const std::string& name);

// Starts (or connects to) the backend, runs `workload`, disconnects, and records everything it
// can even when the workload fails. `before_measuring` becomes WorkloadRun::before_measuring.
WorkloadResult RunWorkload(const Workload& workload, const BackendSpec& backend,
                           const std::string& label, const WorkloadOptions& options,
                           const std::function<void()>& before_measuring = {});

// The repeated part of a workload: `iteration` runs for options.warmup_seconds unmeasured, then
// for options.duration_seconds measured. Each iteration returns its own duration in seconds (a
// sample). The backend's CPU time and the tool's own are sampled around the measured part.
struct LoopMeasurement {
  std::vector<double> samples;
  double wall_seconds = 0;
  std::optional<double> backend_cpu_seconds;    // Nullopt for a socket backend.
  std::optional<uint64_t> backend_resident_kb;  // At the end of the measured part; ditto.
  double own_cpu_seconds = 0;
  uint64_t iterations() const { return samples.size(); }
};
// `on_measuring` (if given) is called once between the warm-up and the measured part.
Result<LoopMeasurement> MeasureLoop(WorkloadRun& run,
                                    const std::function<Result<double>()>& iteration,
                                    const std::function<void()>& on_measuring = {});

// Adds NAME_min, NAME_median, NAME_p99 (microseconds) of `samples` (seconds).
void AddDistribution(WorkloadResult& result, const std::string& name,
                     const std::vector<double>& samples);
// Adds backend_cpu_per_ITEM (us), backend_cpu_percent and backend_resident_memory (kB, at the
// end of the measured part), or a note saying why they are absent.
void AddBackendCpu(WorkloadResult& result, const LoopMeasurement& loop, const std::string& item);

using Clock = std::chrono::steady_clock;
inline double SecondsBetween(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

// Registry entries, one function per file of workloads.
std::vector<Workload> FrameWorkloads();
std::vector<Workload> CommandWorkloads();
std::vector<Workload> IdleWorkloads();
std::vector<Workload> VirglWorkloads();
std::vector<Workload> GfxstreamWorkloads();

}  // namespace vgpu::bench
