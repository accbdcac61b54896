// cursor, latency, queue-depth: the per-command path of the device, with little data moved.
#include "display_setup.h"
#include "statistics.h"
#include "support/fake_display.h"
#include "workload.h"

namespace vgpu::bench {
namespace {

constexpr uint32_t kCursorResource = 2;
constexpr uint32_t kSmallResource = 3;
constexpr uint32_t kSmallSize = 64;
constexpr uint32_t kFirstScratchResource = 1000;
constexpr std::chrono::milliseconds kTimeout{5000};

// Submit `request`, notify, wait for its used buffer: kick-to-used-notification seconds.
template <class T>
Result<double> TimedCommand(WorkloadRun& run, const T& request) {
  // From before the command is made available: a busy device may take it before the kick.
  const Clock::time_point start = Clock::now();
  Result<uint16_t> head = run.gpu.Submit(GuestGpu::Queue::kControl, request);
  if (!head) return ErrorOf(head);
  run.gpu.Notify(GuestGpu::Queue::kControl);
  Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kControl, kTimeout);
  if (!done) return ErrorOf(done);
  return SecondsBetween(start, Clock::now());
}

// A kSmallSize square B8G8R8X8 resource with backing and a pattern, transferred once.
Result<GuestImage> CreateSmallResource(WorkloadRun& run, uint32_t id, gpu::Format format) {
  if (Result<void> created = run.gpu.Run(CreateResource2d(id, format, kSmallSize, kSmallSize));
      !created) {
    return ErrorOf(created);
  }
  Result<GuestImage> image = GuestImage::Allocate(*run.connection.session().ram, kSmallSize,
                                                  kSmallSize, run.options.backing);
  if (!image) return ErrorOf(image);
  if (Result<void> filled = image->FillPattern(id); !filled) return ErrorOf(filled);
  if (Result<void> attached = run.gpu.AttachBacking(id, image->entries()); !attached) {
    return ErrorOf(attached);
  }
  return image;
}

// The Linux cursor plane (virtio_gpu_cursor_plane_update): a 64x64 ARGB image, its transfer
// fenced and waited for, then UPDATE_CURSOR; later moves are MOVE_CURSOR with the same
// resource. Each round trip: MOVE_CURSOR kicked, its used buffer, and CURSOR_POS at QEMU's end
// with the new position.
Result<void> RunCursor(WorkloadRun& run) {
  Result<ShownFrame> shown = ShowFrame(run, 1920, 1080);
  if (!shown) return ErrorOf(shown);
  Result<GuestImage> image = CreateSmallResource(run, kCursorResource, gpu::Format::kB8G8R8A8Unorm);
  if (!image) return ErrorOf(image);
  if (Result<void> sent =
          run.gpu.Run(GuestGpu::Bytes(TransferToHost2d(
                          kCursorResource, {0, 0, kSmallSize, kSmallSize}, image->stride())),
                      /*fence=*/true);
      !sent) {
    return ErrorOf(sent);
  }
  if (Result<uint16_t> update =
          run.gpu.Submit(GuestGpu::Queue::kCursor, UpdateCursor(kCursorResource, 100, 100));
      !update) {
    return ErrorOf(update);
  }
  run.gpu.Notify(GuestGpu::Queue::kCursor);
  if (Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kCursor, kTimeout);
      !done) {
    return ErrorOf(done);
  }
  if (!run.connection.display().WaitFor(
          [](const test::FakeDisplayState& state) {
            return !state.cursors.empty() && state.cursors[0].defined;
          },
          kTimeout)) {
    return MakeError(ErrorKind::kTimedOut, "UPDATE_CURSOR never reached the display");
  }
  uint32_t step = 0;
  Result<LoopMeasurement> loop = MeasureLoop(run, [&]() -> Result<double> {
    ++step;
    const uint32_t x = (step * 37) % 1900;
    const uint32_t y = (step * 11) % 1060;
    const Clock::time_point start = Clock::now();
    Result<uint16_t> move =
        run.gpu.Submit(GuestGpu::Queue::kCursor, MoveCursor(kCursorResource, x, y));
    if (!move) return ErrorOf(move);
    run.gpu.Notify(GuestGpu::Queue::kCursor);
    Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kCursor, kTimeout);
    if (!done) return ErrorOf(done);
    if (!run.connection.display().WaitFor(
            [&](const test::FakeDisplayState& state) {
              return !state.cursors.empty() && state.cursors[0].visible &&
                     state.cursors[0].x == x && state.cursors[0].y == y;
            },
            kTimeout)) {
      return MakeError(ErrorKind::kTimedOut, "MOVE_CURSOR never reached the display");
    }
    return SecondsBetween(start, Clock::now());
  });
  if (!loop) return ErrorOf(loop);
  run.result.Add("moves_per_second", "1/s",
                 static_cast<double>(loop->iterations()) / loop->wall_seconds, Better::kHigher);
  AddDistribution(run.result, "round_trip", loop->samples);
  AddBackendCpu(run.result, *loop, "move");
  return {};
}

// One command at a time, kick to used-buffer notification: RESOURCE_CREATE_2D and
// RESOURCE_UNREF of a fresh 64x64 resource, and a one-pixel TRANSFER_TO_HOST_2D.
Result<void> RunLatency(WorkloadRun& run) {
  Result<GuestImage> image = CreateSmallResource(run, kSmallResource, gpu::Format::kB8G8R8X8Unorm);
  if (!image) return ErrorOf(image);
  std::vector<double> create_seconds;
  std::vector<double> unref_seconds;
  std::vector<double> transfer_seconds;
  uint32_t next_id = kFirstScratchResource;
  bool measuring = false;
  Result<LoopMeasurement> loop = MeasureLoop(
      run,
      [&]() -> Result<double> {
        const uint32_t id = next_id++;
        Result<double> create = TimedCommand(
            run, CreateResource2d(id, gpu::Format::kB8G8R8X8Unorm, kSmallSize, kSmallSize));
        if (!create) return create;
        Result<double> unref = TimedCommand(run, ResourceUnref(id));
        if (!unref) return unref;
        const gpu::Rect pixel{id % kSmallSize, (id / kSmallSize) % kSmallSize, 1, 1};
        Result<double> transfer =
            TimedCommand(run, TransferToHost2d(kSmallResource, pixel, image->stride()));
        if (!transfer) return transfer;
        // The warm-up's samples are not kept (MeasureLoop keeps only the returned total).
        if (measuring) {
          create_seconds.push_back(*create);
          unref_seconds.push_back(*unref);
          transfer_seconds.push_back(*transfer);
        }
        return *create + *unref + *transfer;
      },
      [&] { measuring = true; });
  if (!loop) return ErrorOf(loop);
  run.result.Add("commands_per_second", "1/s",
                 3.0 * static_cast<double>(loop->iterations()) / loop->wall_seconds,
                 Better::kHigher);
  AddDistribution(run.result, "create_2d", create_seconds);
  AddDistribution(run.result, "unref", unref_seconds);
  AddDistribution(run.result, "transfer_1px", transfer_seconds);
  AddBackendCpu(run.result, *loop, "command_triple");
  return {};
}

// The control queue kept full: 64 one-pixel TRANSFER_TO_HOST_2D in flight (one indirect
// descriptor each, so the 64-entry queue holds 64), each completion refilled at once.
Result<void> RunQueueDepth(WorkloadRun& run) {
  Result<GuestImage> image = CreateSmallResource(run, kSmallResource, gpu::Format::kB8G8R8X8Unorm);
  if (!image) return ErrorOf(image);
  const size_t depth = run.connection.session().control_queue->size();
  std::vector<Clock::time_point> submitted(depth);
  uint32_t sequence = 0;
  auto submit = [&]() -> Result<void> {
    ++sequence;
    const gpu::Rect pixel{sequence % kSmallSize, (sequence / kSmallSize) % kSmallSize, 1, 1};
    Result<uint16_t> head = run.gpu.Submit(
        GuestGpu::Queue::kControl, TransferToHost2d(kSmallResource, pixel, image->stride()));
    if (!head) return ErrorOf(head);
    submitted[*head] = Clock::now();
    return {};
  };
  while (run.gpu.in_flight(GuestGpu::Queue::kControl) < depth) {
    if (Result<void> added = submit(); !added) return added;
  }
  run.gpu.Notify(GuestGpu::Queue::kControl);
  Result<LoopMeasurement> loop = MeasureLoop(run, [&]() -> Result<double> {
    Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kControl, kTimeout);
    if (!done) return ErrorOf(done);
    const double latency = SecondsBetween(submitted[done->head], Clock::now());
    if (Result<void> added = submit(); !added) return ErrorOf(added);
    run.gpu.Notify(GuestGpu::Queue::kControl);
    return latency;
  });
  // Drain, so the rings stop with nothing outstanding.
  while (run.gpu.in_flight(GuestGpu::Queue::kControl) > 0) {
    if (Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kControl, kTimeout);
        !done) {
      return ErrorOf(done);
    }
  }
  if (!loop) return ErrorOf(loop);
  run.result.Add("commands_per_second", "1/s",
                 static_cast<double>(loop->iterations()) / loop->wall_seconds, Better::kHigher);
  run.result.Add("in_flight", "", static_cast<double>(depth), Better::kNeither);
  AddDistribution(run.result, "submit_to_used", loop->samples);
  AddBackendCpu(run.result, *loop, "command");
  return {};
}

}  // namespace

std::vector<Workload> CommandWorkloads() {
  return {
      Workload{"cursor", "MOVE_CURSOR round trips (cursor queue to CURSOR_POS at the display)",
               1920, 1080, RunCursor},
      Workload{"latency",
               "single RESOURCE_CREATE_2D, RESOURCE_UNREF, 1-pixel TRANSFER_TO_HOST_2D, kick to "
               "used notification",
               1920, 1080, RunLatency},
      Workload{"queue-depth", "64 one-pixel TRANSFER_TO_HOST_2D kept in flight", 1920, 1080,
               RunQueueDepth},
  };
}

}  // namespace vgpu::bench
