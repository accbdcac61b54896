#include "display_setup.h"

#include <cstdio>
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
  return ShownFrame{std::move(*image), 0};
}

}  // namespace vgpu::bench
