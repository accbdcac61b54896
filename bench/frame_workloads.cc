// frame-1080p, frame-4k, damage-1080p: what a Linux guest's display does per frame with a dumb
// framebuffer (virtio_gpu_primary_plane_update): TRANSFER_TO_HOST_2D of the damaged rectangle,
// then RESOURCE_FLUSH of it, one notification for both. A frame counts when both commands are
// used AND QEMU's end of the GPU socket has composited the new pixels into its surface: the
// guest writes a new marker pixel into the damaged rectangle before each frame, and the frame
// ends when that pixel value is in the display surface (end to end, as a user would see it).
#include <cmath>
#include <cstring>

#include "display_setup.h"
#include "statistics.h"
#include "support/fake_display.h"
#include "workload.h"

namespace vgpu::bench {
namespace {

constexpr std::chrono::milliseconds kCommandTimeout{5000};
constexpr std::chrono::milliseconds kDisplayTimeout{5000};
constexpr int kMemcpyRepetitions = 15;
// Damage workload: a rectangle of this share of the frame's area, same aspect ratio.
constexpr double kDamageShare = 0.10;

// One frame: marker, TRANSFER_TO_HOST_2D + RESOURCE_FLUSH of `rect`, notify, wait for both
// used buffers and for the marker in the display surface. Returns kick-to-displayed seconds.
Result<double> PresentFrame(WorkloadRun& run, ShownFrame& shown, const gpu::Rect& rect) {
  // Multiplying by an odd constant is a bijection mod 2^24: consecutive frames differ.
  const uint32_t marker = (++shown.frame * 0x9e3779b1u) & 0xffffff;
  if (Result<void> set = shown.image.SetPixel(rect.x, rect.y, marker); !set) {
    return ErrorOf(set);
  }
  // From before the commands are made available: a busy device may take them before the kick.
  const Clock::time_point start = Clock::now();
  Result<uint16_t> transfer = run.gpu.Submit(
      GuestGpu::Queue::kControl, TransferToHost2d(kFrameResource, rect, shown.image.stride()));
  if (!transfer) return ErrorOf(transfer);
  Result<uint16_t> flush =
      run.gpu.Submit(GuestGpu::Queue::kControl, ResourceFlush(kFrameResource, rect));
  if (!flush) return ErrorOf(flush);
  run.gpu.Notify(GuestGpu::Queue::kControl);
  for (int command = 0; command < 2; ++command) {
    Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kControl, kCommandTimeout);
    if (!done) return ErrorOf(done);
  }
  const bool displayed = run.connection.display().WaitFor(
      [&](const test::FakeDisplayState& state) {
        return !state.framebuffers.empty() && state.framebuffers[0] &&
               (state.framebuffers[0]->At(rect.x, rect.y) & 0xffffff) == marker;
      },
      kDisplayTimeout);
  if (!displayed) {
    return MakeError(ErrorKind::kTimedOut,
                     "frame " + std::to_string(shown.frame) +
                         ": the new pixels never reached the display surface");
  }
  return SecondsBetween(start, Clock::now());
}

// `memcpy_seconds` and `send_seconds`: one memcpy and one socket send of the frame's bytes (the
// daemon's least work per frame: the TRANSFER's gather from the guest, the UPDATE's send).
void AddCopyFigures(WorkloadRun& run, const LoopMeasurement& loop, uint64_t bytes_per_frame,
                    double memcpy_seconds, double send_seconds) {
  WorkloadResult& result = run.result;
  const double frames = static_cast<double>(loop.iterations());
  const double frames_per_second = frames / loop.wall_seconds;
  result.Add("frames_per_second", "1/s", frames_per_second, Better::kHigher);
  AddDistribution(result, "frame_time", loop.samples);
  result.Add("bytes_per_frame", "B", static_cast<double>(bytes_per_frame), Better::kNeither);
  result.Add("throughput", "MB/s", frames_per_second * static_cast<double>(bytes_per_frame) / 1e6,
             Better::kHigher);
  result.Add("memcpy_floor", "us", memcpy_seconds * 1e6, Better::kNeither);
  result.Add("frame_time_vs_memcpy", "x", Summarize(loop.samples).median / memcpy_seconds,
             Better::kLower);
  AddBackendCpu(result, loop, "frame");
  result.Add("socket_send_floor", "us", send_seconds * 1e6, Better::kNeither);
  if (loop.backend_cpu_seconds) {
    result.Add("backend_cpu_vs_memcpy", "x", *loop.backend_cpu_seconds / frames / memcpy_seconds,
               Better::kLower);
    result.Add("backend_cpu_vs_copy_and_send", "x",
               *loop.backend_cpu_seconds / frames / (memcpy_seconds + send_seconds),
               Better::kLower);
  }
}

// Whole frames of the frame `show` put on scanout 0: a 2D resource (ShowFrame) or a guest blob
// (ShowBlobFrame: Linux still sends TRANSFER_TO_HOST_2D per frame, a no-op for a blob, and the
// daemon sends the rows from the guest's pages). The floors are the same: one gather, one send.
Result<void> RunFullFrames(WorkloadRun& run, uint32_t width, uint32_t height,
                           Result<ShownFrame> (*show)(WorkloadRun&, uint32_t, uint32_t)) {
  run.gpu.set_fence_control_commands(run.options.fence_frames);
  Result<ShownFrame> shown = show(run, width, height);
  if (!shown) return ErrorOf(shown);
  const gpu::Rect whole{0, 0, width, height};
  const double memcpy_seconds = MeasureMemcpySeconds(shown->image.bytes(), kMemcpyRepetitions);
  const double send_seconds = MeasureSocketSendSeconds(shown->image.bytes(), kMemcpyRepetitions);
  Result<LoopMeasurement> loop =
      MeasureLoop(run, [&]() -> Result<double> { return PresentFrame(run, *shown, whole); });
  if (!loop) return ErrorOf(loop);
  AddCopyFigures(run, *loop, shown->image.bytes(), memcpy_seconds, send_seconds);
  if (show == &ShowBlobFrame) {
    run.result.notes.push_back("guest blob scanout (SET_SCANOUT_BLOB), shown from guest memory");
  }
  return {};
}

Result<void> RunDamage(WorkloadRun& run, uint32_t width, uint32_t height) {
  run.gpu.set_fence_control_commands(run.options.fence_frames);
  Result<ShownFrame> shown = ShowFrame(run, width, height);
  if (!shown) return ErrorOf(shown);
  const double scale = std::sqrt(kDamageShare);
  const auto damage_width = static_cast<uint32_t>(std::lround(width * scale));
  const auto damage_height = static_cast<uint32_t>(std::lround(height * scale));
  const uint64_t damage_bytes = uint64_t{damage_width} * damage_height * 4;
  const double memcpy_seconds = MeasureMemcpySeconds(damage_bytes, kMemcpyRepetitions);
  const double send_seconds = MeasureSocketSendSeconds(damage_bytes, kMemcpyRepetitions);
  uint32_t step = 0;
  Result<LoopMeasurement> loop = MeasureLoop(run, [&]() -> Result<double> {
    // The rectangle wanders over the frame (strides coprime with the free ranges).
    ++step;
    const gpu::Rect rect{(step * 211) % (width - damage_width + 1),
                         (step * 97) % (height - damage_height + 1), damage_width, damage_height};
    return PresentFrame(run, *shown, rect);
  });
  if (!loop) return ErrorOf(loop);
  AddCopyFigures(run, *loop, damage_bytes, memcpy_seconds, send_seconds);
  run.result.notes.push_back("damage rectangle " + std::to_string(damage_width) + "x" +
                             std::to_string(damage_height) + " of " + std::to_string(width) + "x" +
                             std::to_string(height) + ", moving every frame");
  return {};
}

}  // namespace

std::vector<Workload> FrameWorkloads() {
  return {
      Workload{"frame-1080p", "full-frame TRANSFER_TO_HOST_2D + RESOURCE_FLUSH, 1920x1080", 1920,
               1080, [](WorkloadRun& run) { return RunFullFrames(run, 1920, 1080, &ShowFrame); }},
      Workload{"frame-4k", "full-frame TRANSFER_TO_HOST_2D + RESOURCE_FLUSH, 3840x2160", 3840, 2160,
               [](WorkloadRun& run) { return RunFullFrames(run, 3840, 2160, &ShowFrame); }},
      Workload{"blob-1080p", "guest blob + SET_SCANOUT_BLOB, per frame TRANSFER + FLUSH, 1920x1080",
               1920, 1080,
               [](WorkloadRun& run) { return RunFullFrames(run, 1920, 1080, &ShowBlobFrame); }},
      Workload{"blob-4k", "guest blob + SET_SCANOUT_BLOB, per frame TRANSFER + FLUSH, 3840x2160",
               3840, 2160,
               [](WorkloadRun& run) { return RunFullFrames(run, 3840, 2160, &ShowBlobFrame); }},
      Workload{"damage-1080p", "a moving 10% rectangle per frame, 1920x1080", 1920, 1080,
               [](WorkloadRun& run) { return RunDamage(run, 1920, 1080); }},
  };
}

}  // namespace vgpu::bench
