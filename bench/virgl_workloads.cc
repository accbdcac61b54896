// submit3d-fence and render-readback-1080p/-4k: the 3D (virglrenderer) workloads. Both need a
// backend that offers VIRTIO_GPU_F_VIRGL; on one that does not (our daemon in another mode,
// QEMU's daemon without --virgl, which here cannot run 3D anyway without a render node) they are
// reported as skipped, not failed.
//
// submit3d-fence replays the 3D traffic of a real guest (--stream, by default
// bench/streams/gl_draw.virgl, captured from the 3D end-to-end test with
// VHOST_DEVICE_GPU_RECORD_3D): its context, resources and first submit once, then per iteration
// the frame's virgl commands in one fenced SUBMIT_3D, until the fenced response (the renderer
// signalled the fence: the GPU finished the frame).
//
// render-readback-1080p renders into a 1920x1080 scanout resource with virgl commands of its own
// (a clear in a new colour every frame) and flushes it: each frame is a fenced SUBMIT_3D and a
// fenced RESOURCE_FLUSH of the whole scanout, as a Linux guest's virgl plane update sends them,
// and counts once the new colour is in QEMU's display surface (the daemon read it back from the
// host texture and sent it as an UPDATE).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <string>

#include "recorded_stream.h"
#include "support/fake_display.h"
#include "virgl_commands.h"
#include "workload.h"

namespace vgpu::bench {
namespace {

constexpr const char* kNo3d = "backend offers no 3D (VIRTIO_GPU_F_VIRGL)";
constexpr std::chrono::milliseconds kTimeout{5000};

bool OffersVirgl(WorkloadRun& run) {
  const uint64_t bit = 1ull << gpu::kFeatureVirgl;
  const test::Session& session = run.connection.session();
  return (session.offered_features & bit) != 0 && (session.acked_features & bit) != 0;
}

// Guest memory for a 3D resource, as the guest driver backs every virgl buffer object: bytes of
// a buffer, or 4 bytes per texel of every layer (enough for the 32-bit formats used here).
Result<GuestImage> BackResource(WorkloadRun& run, const gpu::ResourceCreate3d& create) {
  const uint32_t depth =
      std::max<uint32_t>(create.depth, 1) * std::max<uint32_t>(create.array_size, 1);
  uint32_t width = create.width;
  uint32_t rows = std::max<uint32_t>(create.height, 1) * depth;
  if (create.target == kPipeBuffer) {
    width = (create.width + 3) / 4;  // GuestImage counts 4-byte pixels.
    rows = 1;
  }
  Result<GuestImage> image =
      GuestImage::Allocate(*run.connection.session().ram, width, rows, run.options.backing);
  if (!image) return ErrorOf(image);
  if (Result<void> attached = run.gpu.AttachBacking(create.resource_id, image->entries());
      !attached) {
    return ErrorOf(attached);
  }
  return image;
}

// One request, fenced or not, answered.
Result<void> RunCommand(WorkloadRun& run, std::span<const uint8_t> request, bool fence,
                        const char* what) {
  Result<Completion> done = run.gpu.RunLarge(request, fence);
  if (!done) {
    return MakeError(done.error().kind, std::string(what) + ": " + done.error().message);
  }
  return {};
}

// The host's GL renderer, as the guest learns it: struct virgl_caps_v2 (the VIRGL2 capset,
// virglrenderer src/virgl_hw.h) carries the host's GL_RENDERER string, which a guest's Mesa
// shows as "virgl (...)". Taken as the first run of at least 8 printable characters that ends
// in a NUL; empty when the capset or the string is not there.
std::string HostRenderer(WorkloadRun& run) {
  constexpr uint32_t kCapsetVirgl2 = 2;  // Spec: VIRTIO_GPU_CAPSET_VIRGL2 (§5.7.6.8).
  const std::vector<uint8_t>& config = run.connection.session().config;
  uint32_t capsets = 0;  // Spec: virtio_gpu_config.num_capsets, its 4th field (§5.7.4).
  if (config.size() >= 16) std::memcpy(&capsets, config.data() + 12, sizeof(capsets));
  for (uint32_t index = 0; index < capsets; ++index) {
    gpu::GetCapsetInfo query{};
    query.hdr.type = static_cast<uint32_t>(gpu::CommandType::kGetCapsetInfo);
    query.capset_index = index;
    Result<Completion> answered = run.gpu.RunLarge(GuestGpu::Bytes(query), false);
    if (!answered) return "";
    Result<gpu::RespCapsetInfo> info =
        run.connection.session().ram->ReadObject<gpu::RespCapsetInfo>(answered->response_address);
    if (!info || info->capset_id != kCapsetVirgl2) continue;
    gpu::GetCapset get{};
    get.hdr.type = static_cast<uint32_t>(gpu::CommandType::kGetCapset);
    get.capset_id = info->capset_id;
    get.capset_version = info->capset_max_version;
    const uint32_t size = sizeof(gpu::CtrlHdr) + info->capset_max_size;
    Result<Completion> capset = run.gpu.RunLarge(GuestGpu::Bytes(get), false, size);
    if (!capset || capset->response_length < size) return "";
    Result<uint8_t*> bytes = run.connection.session().ram->HostPointer(
        capset->response_address + sizeof(gpu::CtrlHdr), info->capset_max_size);
    if (!bytes) return "";
    std::string text;
    for (uint32_t offset = 0; offset < info->capset_max_size; ++offset) {
      const char character = static_cast<char>((*bytes)[offset]);
      if (character == '\0' && text.size() >= 8) return text;
      text = std::isprint(static_cast<unsigned char>(character)) ? text + character : "";
    }
    return "";
  }
  return "";
}

void NoteHostRenderer(WorkloadRun& run) {
  const std::string renderer = HostRenderer(run);
  run.result.notes.push_back("host GL renderer (VIRGL2 capset): " +
                             (renderer.empty() ? std::string("not found") : renderer));
}

// Sanity check of a rendered frame: 16 pixels over the whole display surface hold `colour`.
Result<void> CheckWholeSurface(WorkloadRun& run, uint32_t colour, uint32_t width, uint32_t height) {
  std::string mismatch;
  const bool matched = run.connection.display().WaitFor(
      [&](const test::FakeDisplayState& state) {
        mismatch = "no surface";
        if (state.framebuffers.empty() || !state.framebuffers[0]) return false;
        const test::FakeFramebuffer& surface = *state.framebuffers[0];
        if (surface.width != width || surface.height != height) {
          mismatch =
              "surface " + std::to_string(surface.width) + "x" + std::to_string(surface.height);
          return false;
        }
        for (uint32_t row = 0; row < 4; ++row) {
          for (uint32_t column = 0; column < 4; ++column) {
            const uint32_t x = column * (width - 1) / 3;
            const uint32_t y = row * (height - 1) / 3;
            const uint32_t got = surface.At(x, y) & 0xffffff;
            if (got != colour) {
              char text[96];
              std::snprintf(text, sizeof(text), "(%u,%u) is %06x, not the clear colour %06x", x, y,
                            got, colour);
              mismatch = text;
              return false;
            }
          }
        }
        return true;
      },
      kTimeout);
  if (matched) return {};
  return MakeError(ErrorKind::kInvalidArgument, "rendered frame at the display: " + mismatch);
}

// The replayed setup ran the frame once: shown on scanout 0 (SET_SCANOUT, fenced
// RESOURCE_FLUSH), its render target must hold the recorded clear colour.
Result<void> CheckReplayedFrame(WorkloadRun& run, const ReplayPlan& plan) {
  auto target = std::find_if(plan.resources.begin(), plan.resources.end(),
                             [&](const gpu::ResourceCreate3d& create) {
                               return create.resource_id == plan.render_target;
                             });
  if (!plan.clear_colour || target == plan.resources.end()) {
    run.result.notes.push_back(
        "the stream's render target or clear colour is unknown: not checked");
    return {};
  }
  const gpu::Rect whole{0, 0, target->width, target->height};
  if (Result<void> done = RunCommand(
          run, GuestGpu::Bytes(SetScanout(0, target->resource_id, whole)), false, "SET_SCANOUT");
      !done) {
    return done;
  }
  if (Result<void> done = RunCommand(
          run, GuestGpu::Bytes(ResourceFlush(target->resource_id, whole)), true, "RESOURCE_FLUSH");
      !done) {
    return done;
  }
  if (Result<void> checked =
          CheckWholeSurface(run, *plan.clear_colour, target->width, target->height);
      !checked) {
    return MakeError(checked.error().kind, "replayed frame: " + checked.error().message);
  }
  char text[128];
  std::snprintf(text, sizeof(text),
                "replay checked: resource %u shows the recorded clear colour %06x at the display",
                target->resource_id, *plan.clear_colour);
  run.result.notes.push_back(text);
  return {};
}

Result<void> RunSubmit3dFence(WorkloadRun& run) {
  if (!OffersVirgl(run)) {
    run.result.skipped = kNo3d;
    return {};
  }
  NoteHostRenderer(run);
  Result<std::vector<RecordedCommand>> recording = LoadRecording(run.options.stream_path);
  if (!recording) return ErrorOf(recording);
  Result<ReplayPlan> plan = PlanReplay(*recording);
  if (!plan) return ErrorOf(plan);

  // 1. The guest's setup, fenced where the guest fenced; every 3D resource backed.
  std::vector<GuestImage> backings;
  for (const RecordedCommand& command : plan->setup) {
    const std::string what = std::string("replaying ") + gpu::CommandName(command.header().type);
    if (Result<void> done = RunCommand(run, command.bytes, command.fenced, what.c_str()); !done) {
      return done;
    }
    if (command.type() != gpu::CommandType::kResourceCreate3d) continue;
    gpu::ResourceCreate3d create;
    std::memcpy(&create, command.bytes.data(), sizeof(create));
    Result<GuestImage> backing = BackResource(run, create);
    if (!backing) return ErrorOf(backing);
    backings.push_back(std::move(*backing));
  }
  if (Result<void> checked = CheckReplayedFrame(run, *plan); !checked) return checked;

  // 2. The frame, one fenced SUBMIT_3D per iteration, until its fence is answered.
  const std::vector<uint8_t> frame = Submit3d(plan->context_id, plan->frame_words);
  Result<LoopMeasurement> loop = MeasureLoop(run, [&]() -> Result<double> {
    const Clock::time_point start = Clock::now();
    Result<uint16_t> head = run.gpu.SubmitLarge(frame, /*fence=*/true);
    if (!head) return ErrorOf(head);
    run.gpu.Notify(GuestGpu::Queue::kControl);
    Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kControl, kTimeout);
    if (!done) return ErrorOf(done);
    return SecondsBetween(start, Clock::now());
  });
  if (!loop) return ErrorOf(loop);

  WorkloadResult& result = run.result;
  result.Add("fences_per_second", "1/s",
             static_cast<double>(loop->iterations()) / loop->wall_seconds, Better::kHigher);
  AddDistribution(result, "fence_latency", loop->samples);
  result.Add("submit_bytes", "B", static_cast<double>(plan->frame_words.size() * 4),
             Better::kNeither);
  result.Add("virgl_commands_per_submit", "", plan->frame_commands, Better::kNeither);
  AddBackendCpu(result, *loop, "fence");
  std::string resources;
  for (const gpu::ResourceCreate3d& create : plan->resources) {
    if (!resources.empty()) resources += ", ";
    resources += std::to_string(create.resource_id) + " (" +
                 (create.target == kPipeBuffer
                      ? std::to_string(create.width) + "-byte buffer"
                      : std::to_string(create.width) + "x" + std::to_string(create.height) +
                            " format " + std::to_string(create.format)) +
                 ")";
  }
  result.notes.push_back(
      "stream " + run.options.stream_path + ": context " + std::to_string(plan->context_id) +
      ", resources " + resources + "; " + std::to_string(plan->setup.size()) +
      " setup commands; per frame " + std::to_string(plan->frame_commands) + " virgl commands (" +
      std::to_string(plan->frame_clears) + " clear, " + std::to_string(plan->frame_draws) +
      " draws; " + std::to_string(plan->one_time_commands) +
      " object creations left to the setup)");
  result.notes.push_back(
      "the draws' vertices come from guest memory that the recording does not hold (zeros "
      "here), so they rasterize nothing; the clear covers the whole render target");
  return {};
}

// The render target of render-readback-1080p.
constexpr uint32_t kContext = 1;
constexpr uint32_t kTarget = 1;
constexpr uint32_t kSurface = 1;

gpu::CtxCreate ContextCreate(uint32_t context_id) {
  gpu::CtxCreate create{};
  create.hdr.type = static_cast<uint32_t>(gpu::CommandType::kCtxCreate);
  create.hdr.ctx_id = context_id;
  constexpr char kName[] = "vhost-gpu-bench";
  create.nlen = sizeof(kName) - 1;
  std::memcpy(create.debug_name, kName, create.nlen);
  return create;
}

gpu::ResourceCreate3d RenderTarget(uint32_t width, uint32_t height) {
  gpu::ResourceCreate3d create{};
  create.hdr.type = static_cast<uint32_t>(gpu::CommandType::kResourceCreate3d);
  create.resource_id = kTarget;
  create.target = kPipeTexture2d;
  create.format = kVirglFormatB8G8R8X8Unorm;
  create.bind =
      kVirglBindRenderTarget | kVirglBindSamplerView | kVirglBindDisplayTarget | kVirglBindScanout;
  create.width = width;
  create.height = height;
  create.depth = 1;
  create.array_size = 1;
  return create;
}

gpu::CtxResource ContextAttach(uint32_t context_id, uint32_t resource_id) {
  gpu::CtxResource attach{};
  attach.hdr.type = static_cast<uint32_t>(gpu::CommandType::kCtxAttachResource);
  attach.hdr.ctx_id = context_id;
  attach.resource_id = resource_id;
  return attach;
}

// The frame's colour, x8r8g8b8: consecutive frames differ (an odd multiplier is a bijection).
uint32_t FrameColour(uint32_t frame) { return (frame * 0x9e3779b1u) & 0xffffff; }

// One frame: a fenced SUBMIT_3D clearing to the frame's colour and a fenced RESOURCE_FLUSH of the
// whole target, one notification; done when both are answered and the colour is at (x, y) of
// the display surface.
Result<double> RenderFrame(WorkloadRun& run, VirglEncoder& encoder, uint32_t frame, uint32_t x,
                           uint32_t y, const gpu::Rect& whole) {
  const uint32_t colour = FrameColour(frame);
  encoder.clear();
  // Every channel a multiple of 1/255: it converts to exactly that 8-bit value.
  encoder.ClearColor(static_cast<float>((colour >> 16) & 0xff) / 255.0f,
                     static_cast<float>((colour >> 8) & 0xff) / 255.0f,
                     static_cast<float>(colour & 0xff) / 255.0f, 1.0f);
  const std::vector<uint8_t> submit = Submit3d(kContext, encoder.words());
  const Clock::time_point start = Clock::now();
  Result<uint16_t> rendered = run.gpu.SubmitLarge(submit, /*fence=*/true);
  if (!rendered) return ErrorOf(rendered);
  Result<uint16_t> flushed = run.gpu.Submit(
      GuestGpu::Queue::kControl, GuestGpu::Bytes(ResourceFlush(kTarget, whole)), /*fence=*/true);
  if (!flushed) return ErrorOf(flushed);
  run.gpu.Notify(GuestGpu::Queue::kControl);
  for (int command = 0; command < 2; ++command) {
    Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kControl, kTimeout);
    if (!done) return ErrorOf(done);
  }
  const bool displayed = run.connection.display().WaitFor(
      [&](const test::FakeDisplayState& state) {
        return !state.framebuffers.empty() && state.framebuffers[0] &&
               (state.framebuffers[0]->At(x, y) & 0xffffff) == colour;
      },
      kTimeout);
  if (!displayed) {
    return MakeError(ErrorKind::kTimedOut, "frame " + std::to_string(frame) +
                                               ": the rendered colour never reached the display");
  }
  return SecondsBetween(start, Clock::now());
}

Result<void> RunRenderReadback(WorkloadRun& run, uint32_t width, uint32_t height) {
  if (!OffersVirgl(run)) {
    run.result.skipped = kNo3d;
    return {};
  }
  NoteHostRenderer(run);
  // 1. Context, render target (backed like a guest's GBM buffer), attached; its surface bound as
  //    the framebuffer; shown on scanout 0.
  const gpu::CtxCreate context = ContextCreate(kContext);
  if (Result<void> done = RunCommand(run, GuestGpu::Bytes(context), false, "CTX_CREATE"); !done) {
    return done;
  }
  const gpu::ResourceCreate3d target = RenderTarget(width, height);
  if (Result<void> done = RunCommand(run, GuestGpu::Bytes(target), true, "RESOURCE_CREATE_3D");
      !done) {
    return done;
  }
  Result<GuestImage> backing = BackResource(run, target);
  if (!backing) return ErrorOf(backing);
  const gpu::CtxResource attach = ContextAttach(kContext, kTarget);
  if (Result<void> done = RunCommand(run, GuestGpu::Bytes(attach), false, "CTX_ATTACH_RESOURCE");
      !done) {
    return done;
  }
  VirglEncoder encoder;
  encoder.CreateSurface(kSurface, kTarget, kVirglFormatB8G8R8X8Unorm);
  encoder.SetFramebufferState(kSurface);
  if (Result<void> done =
          RunCommand(run, Submit3d(kContext, encoder.words()), true, "SUBMIT_3D (framebuffer)");
      !done) {
    return done;
  }
  const gpu::Rect whole{0, 0, width, height};
  if (Result<void> done =
          RunCommand(run, GuestGpu::Bytes(SetScanout(0, kTarget, whole)), false, "SET_SCANOUT");
      !done) {
    return done;
  }

  // 2. The first frame, checked over the whole surface.
  uint32_t frame = 1;
  if (Result<double> first = RenderFrame(run, encoder, frame, 0, 0, whole); !first) {
    return ErrorOf(first);
  }
  if (Result<void> checked = CheckWholeSurface(run, FrameColour(frame), width, height); !checked) {
    return checked;
  }

  // 3. Measured frames; the probed pixel wanders over the target.
  Result<LoopMeasurement> loop = MeasureLoop(run, [&]() -> Result<double> {
    ++frame;
    return RenderFrame(run, encoder, frame, (frame * 211) % width, (frame * 97) % height, whole);
  });
  if (!loop) return ErrorOf(loop);

  WorkloadResult& result = run.result;
  const double frames_per_second = static_cast<double>(loop->iterations()) / loop->wall_seconds;
  const uint64_t frame_bytes = uint64_t{width} * height * 4;
  result.Add("frames_per_second", "1/s", frames_per_second, Better::kHigher);
  AddDistribution(result, "frame_time", loop->samples);
  result.Add("bytes_per_frame", "B", static_cast<double>(frame_bytes), Better::kNeither);
  result.Add("read_back_throughput", "MB/s",
             frames_per_second * static_cast<double>(frame_bytes) / 1e6, Better::kHigher);
  AddBackendCpu(result, *loop, "frame");
  result.notes.push_back("per frame: fenced SUBMIT_3D (one virgl clear of the " +
                         std::to_string(width) + "x" + std::to_string(height) +
                         " B8G8R8X8 target) + fenced RESOURCE_FLUSH of the whole scanout; first "
                         "frame checked at 16 pixels of the display surface");
  return {};
}

}  // namespace

std::vector<Workload> VirglWorkloads() {
  return {
      Workload{"submit3d-fence",
               "replayed guest virgl stream (--stream): one fenced SUBMIT_3D per frame, until "
               "its fence",
               1920, 1080, RunSubmit3dFence},
      Workload{"render-readback-1080p",
               "virgl clear of a 1920x1080 scanout + RESOURCE_FLUSH, read back to the display",
               1920, 1080, [](WorkloadRun& run) { return RunRenderReadback(run, 1920, 1080); }},
      Workload{"render-readback-4k",
               "virgl clear of a 3840x2160 scanout + RESOURCE_FLUSH, read back to the display",
               3840, 2160, [](WorkloadRun& run) { return RunRenderReadback(run, 3840, 2160); }},
  };
}

}  // namespace vgpu::bench
