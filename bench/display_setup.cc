#include "display_setup.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "support/fake_display.h"

namespace vgpu::bench {
namespace {

constexpr std::chrono::milliseconds kDisplayTimeout{5000};

bool SurfaceMatchesPattern(const test::FakeDisplayState& state, uint32_t width, uint32_t height,
                           std::string* mismatch) {
  if (state.framebuffers.empty() || !state.framebuffers[0]) return false;
  const test::FakeFramebuffer& surface = *state.framebuffers[0];
  if (surface.width != width || surface.height != height || surface.updates == 0) return false;
  for (uint32_t row = 0; row < 4; ++row) {
    for (uint32_t column = 0; column < 4; ++column) {
      const uint32_t x = column * (width - 1) / 3;
      const uint32_t y = row * (height - 1) / 3;
      const uint32_t expected = GuestImage::PatternPixel(x, y, kPatternSeed) & 0xffffff;
      const uint32_t got = surface.At(x, y) & 0xffffff;
      if (got != expected) {
        char text[128];
        std::snprintf(text, sizeof(text), "pixel (%u,%u) is 0x%06x, the guest wrote 0x%06x", x, y,
                      got, expected);
        *mismatch = text;
        return false;
      }
    }
  }
  return true;
}

}  // namespace

// Waits until the display surface holds the pattern.
Result<void> WaitForPattern(WorkloadRun& run, uint32_t width, uint32_t height) {
  std::string mismatch;
  const bool shown = run.connection.display().WaitFor(
      [&](const test::FakeDisplayState& state) {
        return SurfaceMatchesPattern(state, width, height, &mismatch);
      },
      kDisplayTimeout);
  if (!shown) {
    return MakeError(ErrorKind::kTimedOut,
                     "the first frame never reached the display surface" +
                         (mismatch.empty() ? std::string(" (no SCANOUT/UPDATE of that size)")
                                           : ": " + mismatch));
  }
  run.result.notes.push_back("first frame verified in the display surface (16 sample pixels)");
  return {};
}

Result<ShownFrame> ShowFrame(WorkloadRun& run, uint32_t width, uint32_t height) {
  Result<void> created =
      run.gpu.Run(CreateResource2d(kFrameResource, gpu::Format::kB8G8R8X8Unorm, width, height));
  if (!created) return ErrorOf(created);
  Result<GuestImage> image =
      GuestImage::Allocate(*run.connection.session().ram, width, height, run.options.backing);
  if (!image) return ErrorOf(image);
  if (Result<void> filled = image->FillPattern(kPatternSeed); !filled) {
    return ErrorOf(filled);
  }
  if (Result<void> attached = run.gpu.AttachBacking(kFrameResource, image->entries()); !attached) {
    return ErrorOf(attached);
  }
  const gpu::Rect whole{0, 0, width, height};
  if (Result<void> sent = run.gpu.Run(TransferToHost2d(kFrameResource, whole, image->stride()));
      !sent) {
    return ErrorOf(sent);
  }
  if (Result<void> sent = run.gpu.Run(SetScanout(0, kFrameResource, whole)); !sent) {
    return ErrorOf(sent);
  }
  if (Result<void> sent = run.gpu.Run(ResourceFlush(kFrameResource, whole)); !sent) {
    return ErrorOf(sent);
  }
  if (Result<void> shown = WaitForPattern(run, width, height); !shown) return ErrorOf(shown);
  return ShownFrame{std::move(*image), 0};
}

Result<ShownFrame> ShowBlobFrame(WorkloadRun& run, uint32_t width, uint32_t height) {
  const test::Session& session = run.connection.session();
  constexpr uint64_t kBlob = 1ull << gpu::kFeatureResourceBlob;
  if ((session.offered_features & kBlob) == 0 || (session.acked_features & kBlob) == 0) {
    return MakeError(ErrorKind::kUnsupported, "the device offers no RESOURCE_BLOB");
  }
  Result<GuestImage> image =
      GuestImage::Allocate(*run.connection.session().ram, width, height, run.options.backing);
  if (!image) return ErrorOf(image);
  if (Result<void> filled = image->FillPattern(kPatternSeed); !filled) return ErrorOf(filled);
  gpu::ResourceCreateBlob create{};
  create.hdr.type = static_cast<uint32_t>(gpu::CommandType::kResourceCreateBlob);
  create.resource_id = kFrameResource;
  create.blob_mem = gpu::kBlobMemGuest;
  create.blob_flags = gpu::kBlobFlagUseShareable;
  create.nr_entries = static_cast<uint32_t>(image->entries().size());
  create.size = image->bytes();
  std::vector<uint8_t> request(sizeof(create) + image->entries().size() * sizeof(gpu::MemEntry));
  std::memcpy(request.data(), &create, sizeof(create));
  std::memcpy(request.data() + sizeof(create), image->entries().data(),
              image->entries().size() * sizeof(gpu::MemEntry));
  if (Result<Completion> done = run.gpu.RunLarge(request, /*fence=*/false); !done) {
    return ErrorOf(done);
  }
  gpu::SetScanoutBlob set{};
  set.hdr.type = static_cast<uint32_t>(gpu::CommandType::kSetScanoutBlob);
  set.r = gpu::Rect{0, 0, width, height};
  set.resource_id = kFrameResource;
  set.width = width;
  set.height = height;
  set.format = static_cast<uint32_t>(gpu::Format::kB8G8R8X8Unorm);
  set.strides[0] = image->stride();
  if (Result<void> sent = run.gpu.Run(set); !sent) return ErrorOf(sent);
  if (Result<void> sent =
          run.gpu.Run(ResourceFlush(kFrameResource, gpu::Rect{0, 0, width, height}));
      !sent) {
    return ErrorOf(sent);
  }
  if (Result<void> shown = WaitForPattern(run, width, height); !shown) return ErrorOf(shown);
  return ShownFrame{std::move(*image), 0};
}

}  // namespace vgpu::bench
