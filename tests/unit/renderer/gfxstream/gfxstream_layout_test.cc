// GfxstreamCopyBytes: the bytes gfxstream moves between a resource and the copy of its backing.
#include "renderer/gfxstream/gfxstream_layout.h"

#include <gtest/gtest.h>

namespace vgpu::renderer::gfxstream {
namespace {

constexpr uint32_t kTexture2d = 2;
constexpr uint32_t kBuffer = 0;
constexpr uint32_t kBindRenderTarget = 1u << 1;
constexpr uint32_t kBindSamplerView = 1u << 3;
constexpr uint32_t kBindCustom = 1u << 17;
constexpr uint32_t kBindLinear = 1u << 22;

ResourceParams Params(uint32_t target, uint32_t format, uint32_t bind, uint32_t width,
                      uint32_t height, uint32_t depth = 1, uint32_t array_size = 1) {
  return ResourceParams{.target = target,
                        .format = format,
                        .bind = bind,
                        .width = width,
                        .height = height,
                        .depth = depth,
                        .array_size = array_size};
}

TEST(GfxstreamLayoutTest, KindFollowsTargetBindAndFormat) {
  EXPECT_EQ(GfxstreamKindOf(Params(kBuffer, 64, kBindCustom, 16, 1)), GfxstreamResourceKind::kPipe);
  EXPECT_EQ(GfxstreamKindOf(Params(kBuffer, 64, kBindLinear, 16, 1)),
            GfxstreamResourceKind::kBuffer);
  // R8 with a texture bind, or without LINEAR, is a colour buffer; so is every other format.
  EXPECT_EQ(GfxstreamKindOf(Params(kTexture2d, 64, kBindLinear | kBindSamplerView, 16, 1)),
            GfxstreamResourceKind::kColorBuffer);
  EXPECT_EQ(GfxstreamKindOf(Params(kBuffer, 64, 0, 16, 1)), GfxstreamResourceKind::kColorBuffer);
  EXPECT_EQ(GfxstreamKindOf(Params(kBuffer, 2, kBindCustom | kBindLinear, 16, 1)),
            GfxstreamResourceKind::kColorBuffer);
}

TEST(GfxstreamLayoutTest, ColourBuffersAreOneImageOfTheFormatsTexelSize) {
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 2, kBindRenderTarget, 512, 512)), 512u * 512 * 4);
  // Depth, layers and levels are not gfxstream's: one width x height image.
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 2, kBindRenderTarget, 16, 16, 4, 6)),
            16u * 16 * 4);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 94, kBindSamplerView, 3, 3)), 3u * 3 * 8);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 126, kBindSamplerView, 3, 3)), 3u * 3 * 8);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 7, kBindSamplerView, 3, 3)), 3u * 3 * 2);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 66, kBindSamplerView, 3, 3)), 3u * 3 * 4);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 64, kBindSamplerView, 3, 3)), 3u * 3 * 1);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 12345, kBindSamplerView, 3, 3)), 3u * 3 * 4);
}

TEST(GfxstreamLayoutTest, YuvPlanesAsGfxstreamLaysThemOut) {
  // YV12 1920x1080: luma 1920 (already 32-aligned) x 1080, two 960 x 540 chroma planes.
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 163, kBindSamplerView, 1920, 1080)),
            1920u * 1080 + 960u * 540 * 2);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 163, kBindSamplerView, 33, 3)),
            64u * 3 + 32u * 2 * 2);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 166, kBindSamplerView, 1920, 1080)),
            1920u * 1080 * 3 / 2);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 314, kBindSamplerView, 4, 4)), 8u * 4 + 8u * 2);
}

TEST(GfxstreamLayoutTest, BuffersAndPipesAreBytesWithAtLeastOneRow) {
  EXPECT_EQ(GfxstreamCopyBytes(Params(kBuffer, 64, kBindLinear, 65536, 1)), 65536u);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kBuffer, 64, kBindCustom, 100, 0)), 100u);
}

TEST(GfxstreamLayoutTest, LargestDimensionsDoNotWrap) {
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 94, kBindSamplerView, UINT32_MAX, UINT32_MAX)),
            std::nullopt);
  EXPECT_EQ(GfxstreamCopyBytes(Params(kTexture2d, 2, kBindSamplerView, UINT32_MAX, 2)),
            uint64_t{UINT32_MAX} * 2 * 4);
}

}  // namespace
}  // namespace vgpu::renderer::gfxstream
