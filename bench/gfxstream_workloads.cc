// gfxstream-fence and gfxstream-upload-1080p: the gfxstream workloads. Both need a backend that
// offers a gfxstream capset (gfxstream-vulkan 3 or gfxstream-gles 8) and VIRTIO_GPU_F_CONTEXT_INIT;
// on any other backend they are reported as skipped, not failed. gfxstream's own guest protocol
// (its Vulkan and GLES encoders over the address-space ring) is not spoken here, so what is
// measured is the virtio-gpu side of gfxstream, which every guest frame goes through:
//
// gfxstream-fence: a context on the gfxstream-vulkan capset and, per iteration, one fenced
// SUBMIT_3D of gfxstream's PLACEHOLDER_COMMAND_VK on the context's ring 0 (what gfxstream's guest
// driver sends to make virtio-gpu complete), until the fenced response.
//
// gfxstream-upload-1080p: a 1920x1080 B8G8R8X8 colour buffer with a guest backing, shown on
// scanout 0; per frame the guest changes one pixel, sends TRANSFER_TO_HOST_3D of the whole
// resource and RESOURCE_FLUSH of it with one notification, and the frame counts once the pixel
// is in QEMU's display surface. gfxstream moves whole colour buffers through its copy of the
// backing in both directions, so each frame is an upload and a read-back of 8 MB.
#include <cstdio>
#include <cstring>
#include <string>

#include "support/fake_display.h"
#include "virgl_commands.h"
#include "workload.h"

namespace vgpu::bench {
namespace {

constexpr std::chrono::milliseconds kTimeout{5000};
constexpr uint32_t kCapsetGfxstreamVulkan = 3;
constexpr uint32_t kCapsetGfxstreamGles = 8;
constexpr uint32_t kContext = 1;
constexpr uint32_t kTarget = 1;
// gfxstream's PLACEHOLDER_COMMAND_VK: opcode, pad, padding.
constexpr uint32_t kPlaceholder[] = {0xf002, 0, 0};

// The gfxstream capsets the backend offers (GET_CAPSET_INFO over virtio_gpu_config.num_capsets),
// empty when there are none or CONTEXT_INIT was not negotiated.
std::vector<uint32_t> GfxstreamCapsets(WorkloadRun& run) {
  const test::Session& session = run.connection.session();
  const uint64_t context_init = 1ull << gpu::kFeatureContextInit;
  if ((session.acked_features & context_init) == 0) return {};
  uint32_t capsets = 0;  // Spec: virtio_gpu_config.num_capsets, its 4th field (§5.7.4).
  if (session.config.size() >= 16) std::memcpy(&capsets, session.config.data() + 12, 4);
  std::vector<uint32_t> found;
  for (uint32_t index = 0; index < capsets; ++index) {
    gpu::GetCapsetInfo query{};
    query.hdr.type = static_cast<uint32_t>(gpu::CommandType::kGetCapsetInfo);
    query.capset_index = index;
    Result<Completion> answered = run.gpu.RunLarge(GuestGpu::Bytes(query), false);
    if (!answered) return {};
    Result<gpu::RespCapsetInfo> info =
        run.connection.session().ram->ReadObject<gpu::RespCapsetInfo>(answered->response_address);
    if (info &&
        (info->capset_id == kCapsetGfxstreamVulkan || info->capset_id == kCapsetGfxstreamGles)) {
      found.push_back(info->capset_id);
    }
  }
  return found;
}

bool Offers(const std::vector<uint32_t>& capsets, uint32_t id) {
  return std::find(capsets.begin(), capsets.end(), id) != capsets.end();
}

Result<void> CreateContext(WorkloadRun& run, uint32_t capset) {
  gpu::CtxCreate create{};
  create.hdr.type = static_cast<uint32_t>(gpu::CommandType::kCtxCreate);
  create.hdr.ctx_id = kContext;
  constexpr char kName[] = "vhost-gpu-bench";
  create.nlen = sizeof(kName) - 1;
  std::memcpy(create.debug_name, kName, create.nlen);
  create.context_init = capset;  // Spec: the capset id in the low 8 bits (§5.7.6.9).
  return run.gpu.Run(GuestGpu::Bytes(create), false);
}

Result<void> RunGfxstreamFence(WorkloadRun& run) {
  const std::vector<uint32_t> capsets = GfxstreamCapsets(run);
  if (!Offers(capsets, kCapsetGfxstreamVulkan)) {
    run.result.skipped = "backend offers no gfxstream-vulkan capset with CONTEXT_INIT";
    return {};
  }
  if (Result<void> created = CreateContext(run, kCapsetGfxstreamVulkan); !created) {
    return MakeError(created.error().kind, "CTX_CREATE: " + created.error().message);
  }
  std::vector<uint8_t> submit = Submit3d(kContext, kPlaceholder);
  // The context's ring 0, as gfxstream's guest driver fences its submits.
  gpu::CtrlHdr header;
  std::memcpy(&header, submit.data(), sizeof(header));
  header.flags |= gpu::kFlagInfoRingIdx;
  header.ring_idx = 0;
  std::memcpy(submit.data(), &header, sizeof(header));
  Result<LoopMeasurement> loop = MeasureLoop(run, [&]() -> Result<double> {
    const Clock::time_point start = Clock::now();
    Result<uint16_t> head = run.gpu.SubmitLarge(submit, /*fence=*/true);
    if (!head) return ErrorOf(head);
    run.gpu.Notify(GuestGpu::Queue::kControl);
    Result<Completion> done = run.gpu.WaitForCompletion(GuestGpu::Queue::kControl, kTimeout);
    if (!done) return ErrorOf(done);
    return SecondsBetween(start, Clock::now());
  });
  if (!loop) return ErrorOf(loop);
  run.result.Add("fences_per_second", "1/s",
                 static_cast<double>(loop->iterations()) / loop->wall_seconds, Better::kHigher);
  AddDistribution(run.result, "fence_latency", loop->samples);
  AddBackendCpu(run.result, *loop, "fence");
  run.result.notes.push_back(
      "per iteration: a fenced SUBMIT_3D of PLACEHOLDER_COMMAND_VK (12 bytes) on ring 0 of a "
      "gfxstream-vulkan context");
  return {};
}

gpu::TransferHost3d TransferToHost3d(uint32_t resource_id, uint32_t width, uint32_t height) {
  gpu::TransferHost3d transfer{};
  transfer.hdr.type = static_cast<uint32_t>(gpu::CommandType::kTransferToHost3d);
  transfer.box = gpu::Box{0, 0, 0, width, height, 1};
  transfer.resource_id = resource_id;
  transfer.stride = width * 4;
  return transfer;
}

Result<void> RunGfxstreamUpload(WorkloadRun& run, uint32_t width, uint32_t height) {
  const std::vector<uint32_t> capsets = GfxstreamCapsets(run);
  if (capsets.empty()) {
    run.result.skipped = "backend offers no gfxstream capset with CONTEXT_INIT";
    return {};
  }
  const uint32_t capset =
      Offers(capsets, kCapsetGfxstreamGles) ? kCapsetGfxstreamGles : kCapsetGfxstreamVulkan;
  if (Result<void> created = CreateContext(run, capset); !created) {
    return MakeError(created.error().kind, "CTX_CREATE: " + created.error().message);
  }
  gpu::ResourceCreate3d create{};
  create.hdr.type = static_cast<uint32_t>(gpu::CommandType::kResourceCreate3d);
  create.resource_id = kTarget;
  create.target = kPipeTexture2d;
  create.format = kVirglFormatB8G8R8X8Unorm;
  create.bind = kVirglBindRenderTarget | kVirglBindSamplerView | kVirglBindScanout;
  create.width = width;
  create.height = height;
  create.depth = 1;
  create.array_size = 1;
  if (Result<void> done = run.gpu.Run(GuestGpu::Bytes(create), false); !done) {
    return MakeError(done.error().kind, "RESOURCE_CREATE_3D: " + done.error().message);
  }
  Result<GuestImage> image =
      GuestImage::Allocate(*run.connection.session().ram, width, height, run.options.backing);
  if (!image) return ErrorOf(image);
  if (Result<void> pattern = image->FillPattern(5); !pattern) return pattern;
  if (Result<void> attached = run.gpu.AttachBacking(kTarget, image->entries()); !attached) {
    return attached;
  }
  gpu::CtxResource attach{};
  attach.hdr.type = static_cast<uint32_t>(gpu::CommandType::kCtxAttachResource);
  attach.hdr.ctx_id = kContext;
  attach.resource_id = kTarget;
  if (Result<void> done = run.gpu.Run(GuestGpu::Bytes(attach), false); !done) return done;
  const gpu::Rect whole{0, 0, width, height};
  if (Result<void> done = run.gpu.Run(GuestGpu::Bytes(SetScanout(0, kTarget, whole)), false);
      !done) {
    return done;
  }
  const gpu::TransferHost3d transfer = TransferToHost3d(kTarget, width, height);
  const gpu::ResourceFlush flush = ResourceFlush(kTarget, whole);
  uint32_t frame = 0;
  auto one_frame = [&]() -> Result<double> {
    ++frame;
    const uint32_t x = (frame * 211) % width, y = (frame * 97) % height;
    const uint32_t colour = (frame * 0x9e3779b1u) & 0xffffff;
    const Clock::time_point start = Clock::now();
    if (Result<void> set = image->SetPixel(x, y, colour); !set) return ErrorOf(set);
    Result<uint16_t> sent = run.gpu.Submit(GuestGpu::Queue::kControl, GuestGpu::Bytes(transfer),
                                           run.options.fence_frames);
    if (!sent) return ErrorOf(sent);
    Result<uint16_t> flushed =
        run.gpu.Submit(GuestGpu::Queue::kControl, GuestGpu::Bytes(flush), run.options.fence_frames);
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
                                                 ": the uploaded pixel never reached the display");
    }
    return SecondsBetween(start, Clock::now());
  };
  // The first frame is checked at 16 points of the whole surface against the guest's pattern.
  if (Result<double> first = one_frame(); !first) return ErrorOf(first);
  std::string mismatch;
  const bool matched = run.connection.display().WaitFor(
      [&](const test::FakeDisplayState& state) {
        if (state.framebuffers.empty() || !state.framebuffers[0]) return false;
        for (uint32_t point = 0; point < 16; ++point) {
          const uint32_t x = (point % 4) * (width - 1) / 3, y = (point / 4) * (height - 1) / 3;
          if (x == 211 % width && y == 97 % height) continue;  // The first frame's marker.
          const uint32_t expected = GuestImage::PatternPixel(x, y, 5) & 0xffffff;
          const uint32_t got = state.framebuffers[0]->At(x, y) & 0xffffff;
          if (got != expected) {
            char text[96];
            std::snprintf(text, sizeof(text), "(%u,%u) is %06x, the guest wrote %06x", x, y, got,
                          expected);
            mismatch = text;
            return false;
          }
        }
        return true;
      },
      kTimeout);
  if (!matched) {
    return MakeError(ErrorKind::kInvalidArgument, "uploaded frame at the display: " + mismatch);
  }
  Result<LoopMeasurement> loop = MeasureLoop(run, one_frame);
  if (!loop) return ErrorOf(loop);
  WorkloadResult& result = run.result;
  const double frames_per_second = static_cast<double>(loop->iterations()) / loop->wall_seconds;
  const uint64_t frame_bytes = uint64_t{width} * height * 4;
  result.Add("frames_per_second", "1/s", frames_per_second, Better::kHigher);
  AddDistribution(result, "frame_time", loop->samples);
  result.Add("bytes_per_frame", "B", static_cast<double>(frame_bytes), Better::kNeither);
  result.Add("upload_throughput", "MB/s",
             frames_per_second * static_cast<double>(frame_bytes) / 1e6, Better::kHigher);
  AddBackendCpu(result, *loop, "frame");
  result.notes.push_back("per frame: one pixel changed, TRANSFER_TO_HOST_3D of the whole " +
                         std::to_string(width) + "x" + std::to_string(height) +
                         " colour buffer and RESOURCE_FLUSH of it, read back to the display; "
                         "first frame checked at 16 pixels against the guest's pattern");
  return {};
}

}  // namespace

std::vector<Workload> GfxstreamWorkloads() {
  return {
      Workload{"gfxstream-fence",
               "gfxstream: one fenced SUBMIT_3D of its placeholder command per iteration, until "
               "its fence",
               1920, 1080, RunGfxstreamFence},
      Workload{"gfxstream-upload-1080p",
               "gfxstream: TRANSFER_TO_HOST_3D of a 1920x1080 colour buffer + RESOURCE_FLUSH, "
               "read back to the display",
               1920, 1080, [](WorkloadRun& run) { return RunGfxstreamUpload(run, 1920, 1080); }},
  };
}

}  // namespace vgpu::bench
