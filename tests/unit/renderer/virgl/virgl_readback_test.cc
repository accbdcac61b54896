// VirglRenderer read-back on real virglrenderer (Mesa llvmpipe here): what the guest uploads is
// what ReadRect hands the display, in the guest's row order, converted to x8r8g8b8.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "renderer/virgl/pixel_pack_reader.h"
#include "renderer/virgl/virgl_api.h"
#include "renderer/virgl/virgl_renderer.h"
#include "virgl_test_environment.h"

namespace vgpu::renderer::virgl {
namespace {

// virgl formats (virgl_hw.h), equal to virtio-gpu's for these.
constexpr uint32_t kFormatB8G8R8X8 = 2;
constexpr uint32_t kFormatR8G8B8A8 = 67;
constexpr uint32_t kFormatB5G6R5 = 7;
constexpr uint32_t kRgbMask = 0x00ffffff;  // The display ignores byte 3 of x8r8g8b8.

// A distinct, asymmetric value per pixel: 0x00RRGGBB with R from x, G from y.
uint32_t PatternRgb(uint32_t x, uint32_t y) {
  return ((x * 5 + 1) & 0xff) << 16 | ((y * 7 + 2) & 0xff) << 8 | ((x ^ y) & 0xff);
}

// Rows of B8G8R8X8 pixels (memory bytes B, G, R, X: a little-endian 0xXXRRGGBB), the pattern's
// RGB XOR `complement`.
std::vector<uint8_t> BgrxPattern(uint32_t width, uint32_t height, uint32_t complement = 0) {
  std::vector<uint8_t> bytes(size_t{width} * height * 4);
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      const uint32_t pixel = 0xff000000u | (PatternRgb(x, y) ^ complement);
      std::memcpy(&bytes[(size_t{y} * width + x) * 4], &pixel, 4);
    }
  }
  return bytes;
}

// Whether `rows` hold the pattern (XOR `complement`) for `rect` of the image, rows top first.
::testing::AssertionResult RowsShowPattern(const DisplayRows& rows, const Rect& rect,
                                           uint32_t complement = 0) {
  for (uint32_t y = 0; y < rect.height; ++y) {
    for (uint32_t x = 0; x < rect.width; ++x) {
      uint32_t pixel = 0;
      std::memcpy(&pixel, rows.first_pixel + y * rows.stride + x * 4, 4);
      const uint32_t expected = PatternRgb(rect.x + x, rect.y + y) ^ complement;
      if ((pixel & kRgbMask) != expected) {
        return ::testing::AssertionFailure()
               << "rect " << rect.x << "," << rect.y << " " << rect.width << "x" << rect.height
               << ": at " << x << "," << y << " 0x" << std::hex << (pixel & kRgbMask)
               << " instead of 0x" << expected;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

uint32_t PixelAt(const std::vector<uint8_t>& bytes, uint32_t stride, uint32_t x, uint32_t y) {
  uint32_t pixel = 0;
  std::memcpy(&pixel, &bytes[size_t{y} * stride + size_t{x} * 4], 4);
  return pixel;
}

class VirglReadbackTest : public VirglTest {
 protected:
  // A 2D resource with `pixels` (width * 4 bytes per row) uploaded through a host backing.
  ResourceId Upload(uint32_t format, uint32_t width, uint32_t height, std::vector<uint8_t>& pixels,
                    uint32_t flags = kResourceFlagY0Top) {
    const ResourceId resource = NextResourceId();
    EXPECT_TRUE(Renderer().CreateResource(ResourceParams{.id = resource,
                                                         .target = kPipeTexture2d,
                                                         .format = format,
                                                         .bind = kBindRenderTarget,
                                                         .width = width,
                                                         .height = height,
                                                         .depth = 1,
                                                         .array_size = 1,
                                                         .flags = flags}));
    EXPECT_TRUE(Renderer().AttachBacking(resource, GuestBacking({std::span(pixels)})));
    Result<void> uploaded = Renderer().TransferToHost(TransferParams{
        .resource = resource, .stride = width * 4, .box = Box{0, 0, 0, width, height, 1}});
    EXPECT_TRUE(uploaded) << uploaded.error().message;
    return resource;
  }
};

TEST_F(VirglReadbackTest, ReadRectReturnsWhatTheGuestUploaded) {
  constexpr uint32_t kWidth = 64;
  constexpr uint32_t kHeight = 32;
  std::vector<uint8_t> guest = BgrxPattern(kWidth, kHeight);
  const ResourceId resource = Upload(kFormatB8G8R8X8, kWidth, kHeight, guest);
  std::vector<uint8_t> frame(kWidth * kHeight * 4, 0);

  Result<void> read = Renderer().ReadRect(
      resource, {.x = 0, .y = 0, .width = kWidth, .height = kHeight}, frame, kWidth * 4);

  ASSERT_TRUE(read) << read.error().message;
  for (uint32_t y = 0; y < kHeight; ++y) {
    for (uint32_t x = 0; x < kWidth; ++x) {
      ASSERT_EQ(PixelAt(frame, kWidth * 4, x, y) & kRgbMask, PatternRgb(x, y))
          << "at " << x << "," << y;
    }
  }
  Renderer().DestroyResource(resource);
}

TEST_F(VirglReadbackTest, ReadRectOfAResourceWithoutY0TopKeepsTheGuestRowOrder) {
  constexpr uint32_t kWidth = 16;
  constexpr uint32_t kHeight = 12;
  std::vector<uint8_t> guest = BgrxPattern(kWidth, kHeight);
  const ResourceId resource = Upload(kFormatB8G8R8X8, kWidth, kHeight, guest, 0);
  std::vector<uint8_t> frame(kWidth * kHeight * 4, 0);

  ASSERT_TRUE(Renderer().ReadRect(resource, {.x = 0, .y = 0, .width = kWidth, .height = kHeight},
                                  frame, kWidth * 4));

  EXPECT_EQ(PixelAt(frame, kWidth * 4, 0, 0) & kRgbMask, PatternRgb(0, 0));
  EXPECT_EQ(PixelAt(frame, kWidth * 4, 3, kHeight - 1) & kRgbMask, PatternRgb(3, kHeight - 1));
  Renderer().DestroyResource(resource);
}

TEST_F(VirglReadbackTest, ReadRectOfASubRectangleHonoursTheDestinationStride) {
  constexpr uint32_t kWidth = 40;
  constexpr uint32_t kHeight = 30;
  constexpr uint32_t kStride = 100 * 4;
  std::vector<uint8_t> guest = BgrxPattern(kWidth, kHeight);
  const ResourceId resource = Upload(kFormatB8G8R8X8, kWidth, kHeight, guest);
  std::vector<uint8_t> frame(kStride * 10, 0xee);

  ASSERT_TRUE(
      Renderer().ReadRect(resource, {.x = 5, .y = 7, .width = 20, .height = 10}, frame, kStride));

  EXPECT_EQ(PixelAt(frame, kStride, 0, 0) & kRgbMask, PatternRgb(5, 7));
  EXPECT_EQ(PixelAt(frame, kStride, 19, 9) & kRgbMask, PatternRgb(24, 16));
  EXPECT_EQ(PixelAt(frame, kStride, 20, 0), 0xeeeeeeeeu);  // Past the row: untouched.
  Renderer().DestroyResource(resource);
}

// A GPU-side copy from a Y_0_TOP resource into one without the flag. virgl keeps Y_0_TOP
// textures bottom-up in GL and flips while transferring, and whether a copy carries that over
// depends on the GL driver's copy path (llvmpipe turns the rows over; other drivers may not).
// Whatever the driver did, the display must show the target as the guest would read it back:
// ReadRect and virgl's own TRANSFER_FROM_HOST agree row for row.
TEST_F(VirglReadbackTest, GpuCopyIsShownAsTheGuestWouldReadItBack) {
  constexpr uint32_t kWidth = 4;
  constexpr uint32_t kHeight = 4;
  std::vector<uint8_t> guest_source = BgrxPattern(kWidth, kHeight);
  std::vector<uint8_t> guest_target(kWidth * kHeight * 4, 0);
  const ResourceId source =
      Upload(kFormatB8G8R8X8, kWidth, kHeight, guest_source, kResourceFlagY0Top);
  const ResourceId target = Upload(kFormatB8G8R8X8, kWidth, kHeight, guest_target, 0);
  const ContextId context = NextContextId();
  ASSERT_TRUE(Renderer().CreateContext(ContextParams{context, kCapsetVirgl2, {}}));
  ASSERT_TRUE(Renderer().AttachResource(context, source));
  ASSERT_TRUE(Renderer().AttachResource(context, target));
  // VIRGL_CCMD_RESOURCE_COPY_REGION (17), 13 dwords: dst res, level, x, y, z; src res, level,
  // box x, y, z, w, h, d.
  const std::vector<uint32_t> copy = {17u | (13u << 16),
                                      target.value(),
                                      0,
                                      0,
                                      0,
                                      0,
                                      source.value(),
                                      0,
                                      0,
                                      0,
                                      0,
                                      kWidth,
                                      kHeight,
                                      1};
  ASSERT_TRUE(
      Renderer().Submit(context, {reinterpret_cast<const uint8_t*>(copy.data()), copy.size() * 4}));
  // As a guest does before it shows the result (a fenced flush): the copy ran in the context's GL
  // context, and only its fence says it is done for the others. llvmpipe runs it at once, a GPU
  // driver later.
  bool copy_done = false;
  Renderer().SetFenceHandler([&](const FenceSignal&) { copy_done = true; });
  ASSERT_TRUE(Renderer().CreateFence(FenceSignal{context, 0, 1, true}));
  ASSERT_TRUE(PollUntil([&] { return copy_done; }));
  Renderer().SetFenceHandler(nullptr);
  std::vector<uint8_t> frame(kWidth * kHeight * 4, 0);

  ASSERT_TRUE(Renderer().ReadRect(target, {.x = 0, .y = 0, .width = kWidth, .height = kHeight},
                                  frame, kWidth * 4));

  Result<void> read_back = Renderer().TransferFromHost(TransferParams{
      .resource = target, .stride = kWidth * 4, .box = Box{0, 0, 0, kWidth, kHeight, 1}});
  ASSERT_TRUE(read_back) << read_back.error().message;

  // What the display shows is what the guest reads back, row for row.
  for (uint32_t y = 0; y < kHeight; ++y) {
    for (uint32_t x = 0; x < kWidth; ++x) {
      ASSERT_EQ(PixelAt(frame, kWidth * 4, x, y) & kRgbMask,
                PixelAt(guest_target, kWidth * 4, x, y) & kRgbMask)
          << "display read-back at " << x << "," << y;
    }
  }
  // And what the driver made of the copy is the source's rows, in one order or the other, or
  // nothing: on the H100, NVIDIA's driver leaves this B8G8R8X8 target untouched.
  const bool copied =
      std::any_of(guest_target.begin(), guest_target.end(), [](uint8_t byte) { return byte != 0; });
  if (!copied) {
    std::printf("note: the GL driver did not copy between these resources\n");
  } else {
    const bool rows_turned_over =
        (PixelAt(guest_target, kWidth * 4, 0, 0) & kRgbMask) == PatternRgb(0, kHeight - 1);
    for (uint32_t y = 0; y < kHeight; ++y) {
      for (uint32_t x = 0; x < kWidth; ++x) {
        const uint32_t source_row = rows_turned_over ? kHeight - 1 - y : y;
        ASSERT_EQ(PixelAt(guest_target, kWidth * 4, x, y) & kRgbMask, PatternRgb(x, source_row))
            << "guest read-back at " << x << "," << y;
      }
    }
  }
  Renderer().DestroyContext(context);
  Renderer().DestroyResource(source);
  Renderer().DestroyResource(target);
}

TEST_F(VirglReadbackTest, ReadRectConvertsRgbaToXrgb) {
  constexpr uint32_t kWidth = 8;
  constexpr uint32_t kHeight = 4;
  std::vector<uint8_t> guest(kWidth * kHeight * 4);
  for (size_t pixel = 0; pixel < kWidth * kHeight; ++pixel) {
    guest[pixel * 4 + 0] = 0x11;  // R
    guest[pixel * 4 + 1] = 0x22;  // G
    guest[pixel * 4 + 2] = 0x33;  // B
    guest[pixel * 4 + 3] = 0xff;  // A
  }
  const ResourceId resource = Upload(kFormatR8G8B8A8, kWidth, kHeight, guest);
  std::vector<uint8_t> frame(kWidth * kHeight * 4, 0);

  ASSERT_TRUE(Renderer().ReadRect(resource, {.x = 0, .y = 0, .width = kWidth, .height = kHeight},
                                  frame, kWidth * 4));

  EXPECT_EQ(PixelAt(frame, kWidth * 4, 0, 0) & kRgbMask, 0x112233u);
  EXPECT_EQ(PixelAt(frame, kWidth * 4, 7, 3) & kRgbMask, 0x112233u);
  Renderer().DestroyResource(resource);
}

TEST_F(VirglReadbackTest, ReadRectRejectsFormatsTheDisplayCannotTake) {
  const ResourceId resource = NextResourceId();
  ASSERT_TRUE(CreateTarget(resource, 8, 8, kResourceFlagY0Top, kFormatB5G6R5));
  std::vector<uint8_t> frame(8 * 8 * 4);

  Result<void> read =
      Renderer().ReadRect(resource, {.x = 0, .y = 0, .width = 8, .height = 8}, frame, 32);

  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().kind, ErrorKind::kUnsupported);
  Renderer().DestroyResource(resource);
}

TEST_F(VirglReadbackTest, ReadRectRejectsRectanglesOutsideTheResourceOrDestination) {
  const ResourceId resource = NextResourceId();
  ASSERT_TRUE(CreateTarget(resource, 16, 16, kResourceFlagY0Top));
  std::vector<uint8_t> frame(16 * 16 * 4);

  Result<void> outside =
      Renderer().ReadRect(resource, {.x = 8, .y = 0, .width = 16, .height = 16}, frame, 64);
  Result<void> overflowing =
      Renderer().ReadRect(resource, {.x = 0xffffffffu, .y = 0, .width = 2, .height = 1}, frame, 64);
  Result<void> short_destination = Renderer().ReadRect(
      resource, {.x = 0, .y = 0, .width = 16, .height = 16}, std::span(frame).first(100), 64);

  EXPECT_FALSE(outside);
  EXPECT_FALSE(overflowing);
  EXPECT_FALSE(short_destination);
  Renderer().DestroyResource(resource);
}

TEST_F(VirglReadbackTest, TransferFromHostFillsTheBacking) {
  constexpr uint32_t kWidth = 16;
  constexpr uint32_t kHeight = 8;
  std::vector<uint8_t> guest = BgrxPattern(kWidth, kHeight);
  const std::vector<uint8_t> expected = guest;
  const ResourceId resource = Upload(kFormatB8G8R8X8, kWidth, kHeight, guest);
  std::fill(guest.begin(), guest.end(), 0);

  Result<void> read = Renderer().TransferFromHost(TransferParams{
      .resource = resource, .stride = kWidth * 4, .box = Box{0, 0, 0, kWidth, kHeight, 1}});

  ASSERT_TRUE(read) << read.error().message;
  for (uint32_t y = 0; y < kHeight; ++y) {
    for (uint32_t x = 0; x < kWidth; ++x) {
      ASSERT_EQ(PixelAt(guest, kWidth * 4, x, y) & kRgbMask,
                PixelAt(expected, kWidth * 4, x, y) & kRgbMask);
    }
  }
  Renderer().DestroyResource(resource);
}

TEST_F(VirglReadbackTest, ReadCursorReturnsTheCursorInGuestRowOrder) {
  std::vector<uint8_t> guest = BgrxPattern(virtio_gpu::kCursorSize, virtio_gpu::kCursorSize);
  const ResourceId y_0_top =
      Upload(kFormatB8G8R8X8, virtio_gpu::kCursorSize, virtio_gpu::kCursorSize, guest);
  const ResourceId plain =
      Upload(kFormatB8G8R8X8, virtio_gpu::kCursorSize, virtio_gpu::kCursorSize, guest, 0);

  Result<CursorImage> from_y_0_top = Renderer().ReadCursor(y_0_top);
  Result<CursorImage> from_plain = Renderer().ReadCursor(plain);

  ASSERT_TRUE(from_y_0_top) << from_y_0_top.error().message;
  ASSERT_TRUE(from_plain) << from_plain.error().message;
  for (uint32_t y = 0; y < virtio_gpu::kCursorSize; ++y) {
    for (uint32_t x = 0; x < virtio_gpu::kCursorSize; ++x) {
      ASSERT_EQ((*from_y_0_top)[y * virtio_gpu::kCursorSize + x] & kRgbMask, PatternRgb(x, y))
          << "Y_0_TOP at " << x << "," << y;
      ASSERT_EQ((*from_plain)[y * virtio_gpu::kCursorSize + x] & kRgbMask, PatternRgb(x, y))
          << "plain at " << x << "," << y;
    }
  }
  Renderer().DestroyResource(y_0_top);
  Renderer().DestroyResource(plain);
}

TEST_F(VirglReadbackTest, CursorDataRejectsOtherSizes) {
  const ResourceId resource = NextResourceId();
  ASSERT_TRUE(CreateTarget(resource, 32, 32, kResourceFlagY0Top));

  Result<CursorImage> cursor = Renderer().ReadCursor(resource);

  EXPECT_FALSE(cursor);
  Renderer().DestroyResource(resource);
}

// DirectRows reads through a pixel-pack buffer (PixelPackReader) and must hand the display the
// same rows as ReadRect: the guest's order, whichever way the texture holds them, for the whole
// resource and for a rectangle inside it.
TEST_F(VirglReadbackTest, DirectRowsAreTheGuestsRowsForBothRowOrders) {
  constexpr uint32_t kWidth = 48;
  constexpr uint32_t kHeight = 36;
  for (uint32_t flags : {kResourceFlagY0Top, 0u}) {
    std::vector<uint8_t> guest = BgrxPattern(kWidth, kHeight);
    const ResourceId resource = Upload(kFormatB8G8R8X8, kWidth, kHeight, guest, flags);
    for (Rect rect : {Rect{0, 0, kWidth, kHeight}, Rect{5, 7, 20, 10}, Rect{40, 30, 8, 6}}) {
      std::optional<DisplayRows> rows = Renderer().DirectRows(resource, rect);
      ASSERT_TRUE(rows) << "flags " << flags << ": the pixel-pack read-back refused (see log)";
      ASSERT_TRUE(RowsShowPattern(*rows, rect)) << "flags " << flags;
      Renderer().ReleaseRows();
    }
    // Transfers and ReadRect still work after the reader's GL calls (state put back).
    std::vector<uint8_t> frame(kWidth * kHeight * 4, 0);
    ASSERT_TRUE(Renderer().ReadRect(resource, Rect{0, 0, kWidth, kHeight}, frame, kWidth * 4));
    EXPECT_EQ(PixelAt(frame, kWidth * 4, 9, 11) & kRgbMask, PatternRgb(9, 11));
    Renderer().DestroyResource(resource);
  }
}

TEST_F(VirglReadbackTest, DirectRowsRefuseFormatsTheDisplayCannotTake) {
  std::vector<uint8_t> guest(16 * 16 * 4, 0x55);
  const ResourceId resource = Upload(kFormatR8G8B8A8, 16, 16, guest);
  EXPECT_FALSE(Renderer().DirectRows(resource, Rect{0, 0, 16, 16}));
  Renderer().DestroyResource(resource);
}

// The route NVIDIA's driver gets (a GPU blit into the reader's own RGBA8 texture, then the read):
// run here on Mesa by asking for it, against the same expectations, for both row orders (the blit
// turns a Y_0_TOP image over, and leaves the other as it is).
TEST_F(VirglReadbackTest, PixelPackReaderThroughTheCopyGivesTheGuestsRowsForBothRowOrders) {
  constexpr uint32_t kWidth = 30;
  constexpr uint32_t kHeight = 20;
  for (uint32_t flags : {kResourceFlagY0Top, 0u}) {
    std::vector<uint8_t> guest = BgrxPattern(kWidth, kHeight);
    const ResourceId resource = Upload(kFormatB8G8R8X8, kWidth, kHeight, guest, flags);
    Result<ResourceInfo> info = Renderer().Info(resource);
    ASSERT_TRUE(info);
    virgl_renderer_force_ctx_0();
    {
      PixelPackReader reader(PixelPackReader::Route::kThroughCopy);
      for (Rect rect : {Rect{0, 0, kWidth, kHeight}, Rect{3, 4, 10, 9}}) {
        Result<DisplayRows> rows =
            reader.Read(info->texture_id, kWidth, kHeight, rect, flags == kResourceFlagY0Top);
        ASSERT_TRUE(rows) << rows.error().message;
        ASSERT_TRUE(RowsShowPattern(*rows, rect)) << "flags " << flags;
        reader.Release();
      }
    }  // Its GL objects go while ctx0 is current.
    std::vector<uint8_t> frame(kWidth * kHeight * 4, 0);
    ASSERT_TRUE(Renderer().ReadRect(resource, Rect{0, 0, kWidth, kHeight}, frame, kWidth * 4));
    EXPECT_EQ(PixelAt(frame, kWidth * 4, 2, 3) & kRgbMask, PatternRgb(2, 3));
    Renderer().DestroyResource(resource);
  }
}

// Both places the pack buffer can live (persistent client storage; a buffer mapped per read),
// and both routes, give the rows as they are now: a read after the guest changed the
// image shows the change (the persistent mapping is read after a fence, not a map), and a read
// larger than the buffer so far gets a new one.
TEST_F(VirglReadbackTest, PixelPackReaderStorageKindsReadTheImageAsItIsNow) {
  constexpr uint32_t kWidth = 64;
  constexpr uint32_t kHeight = 48;
  std::vector<uint8_t> guest = BgrxPattern(kWidth, kHeight);
  const ResourceId resource = Upload(kFormatB8G8R8X8, kWidth, kHeight, guest, kResourceFlagY0Top);
  Result<ResourceInfo> info = Renderer().Info(resource);
  ASSERT_TRUE(info);
  for (auto [route, storage] :
       {std::pair{PixelPackReader::Route::kAuto, PixelPackReader::Storage::kAuto},
        std::pair{PixelPackReader::Route::kAuto, PixelPackReader::Storage::kMapPerRead},
        std::pair{PixelPackReader::Route::kThroughCopy, PixelPackReader::Storage::kAuto}}) {
    const std::string name =
        std::string(route == PixelPackReader::Route::kAuto ? "direct" : "through the copy") +
        (storage == PixelPackReader::Storage::kAuto ? ", auto storage" : ", map per read");
    // The guest's pattern, then its complement: each read must see the one uploaded last.
    for (uint32_t complement : {0u, kRgbMask}) {
      // Into the attached backing itself: the renderer holds its address.
      const std::vector<uint8_t> next = BgrxPattern(kWidth, kHeight, complement);
      std::copy(next.begin(), next.end(), guest.begin());
      ASSERT_TRUE(Renderer().TransferToHost(TransferParams{
          .resource = resource, .stride = kWidth * 4, .box = Box{0, 0, 0, kWidth, kHeight, 1}}));
      virgl_renderer_force_ctx_0();
      PixelPackReader reader(route, storage);
      // Small first, then wide, then tall, then the whole image: each needs a larger buffer, and
      // a copy texture of another shape.
      for (Rect rect : {Rect{2, 3, 8, 4}, Rect{0, 40, kWidth, 8}, Rect{56, 0, 8, kHeight},
                        Rect{0, 0, kWidth, kHeight}, Rect{10, 20, 30, 20}}) {
        Result<DisplayRows> rows = reader.Read(info->texture_id, kWidth, kHeight, rect, true);
        ASSERT_TRUE(rows) << name << ": " << rows.error().message;
        ASSERT_TRUE(RowsShowPattern(*rows, rect, complement))
            << name << ", complement " << complement;
        reader.Release();
      }
    }
  }
  Renderer().DestroyResource(resource);
}

}  // namespace
}  // namespace vgpu::renderer::virgl
