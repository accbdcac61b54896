#include "gpu/edid.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

namespace vgpu::gpu {
namespace {

constexpr size_t kPreferredTimingOffset = 54;
constexpr size_t kRangeLimitsOffset = 72;
constexpr size_t kNameOffset = 90;
constexpr size_t kDummyOffset = 108;

// The detailed timing descriptor at `offset`, decoded as a sink would (EDID 1.4 §3.10.2).
struct DecodedTiming {
  uint32_t pixel_clock_10khz;
  uint32_t width;
  uint32_t horizontal_blank;
  uint32_t height;
  uint32_t vertical_blank;
  uint32_t width_mm;
  uint32_t height_mm;
  double RefreshHz() const {
    return pixel_clock_10khz * 10000.0 /
           (double(width + horizontal_blank) * double(height + vertical_blank));
  }
};

DecodedTiming DecodeTiming(const EdidBlock& edid, size_t offset) {
  const uint8_t* d = &edid[offset];
  return DecodedTiming{
      .pixel_clock_10khz = uint32_t(d[0]) | uint32_t(d[1]) << 8,
      .width = d[2] | uint32_t(d[4] >> 4) << 8,
      .horizontal_blank = d[3] | uint32_t(d[4] & 0xf) << 8,
      .height = d[5] | uint32_t(d[7] >> 4) << 8,
      .vertical_blank = d[6] | uint32_t(d[7] & 0xf) << 8,
      .width_mm = d[12] | uint32_t(d[14] >> 4) << 8,
      .height_mm = d[13] | uint32_t(d[14] & 0xf) << 8,
  };
}

uint32_t ByteSum(const EdidBlock& edid) { return std::accumulate(edid.begin(), edid.end(), 0u); }

struct Size {
  uint32_t width;
  uint32_t height;
};

class EdidPreferredMode : public testing::TestWithParam<Size> {};

TEST_P(EdidPreferredMode, DecodesBackToTheRequestedSizeAtSixtyHertz) {
  const Size size = GetParam();

  const EdidBlock edid = GenerateEdid(size.width, size.height);

  const DecodedTiming timing = DecodeTiming(edid, kPreferredTimingOffset);
  EXPECT_EQ(timing.width, size.width);
  EXPECT_EQ(timing.height, size.height);
  EXPECT_NEAR(timing.RefreshHz(), 60.0, 0.5);
  EXPECT_GE(timing.pixel_clock_10khz, 1000u);  // EDID 1.4: 10 MHz at least.
  EXPECT_EQ(ByteSum(edid) % 256, 0u);
  // 96 dpi: 25.4 mm per 96 pixels, rounded.
  EXPECT_EQ(timing.width_mm, (size.width * 254 + 480) / 960);
  EXPECT_EQ(timing.height_mm, (size.height * 254 + 480) / 960);
}

INSTANTIATE_TEST_SUITE_P(CommonSizes, EdidPreferredMode,
                         testing::Values(Size{1280, 800}, Size{1920, 1080}, Size{1024, 768},
                                         Size{640, 480}, Size{4095, 2160}),
                         [](const testing::TestParamInfo<Size>& info) {
                           return std::to_string(info.param.width) + "x" +
                                  std::to_string(info.param.height);
                         });

TEST(Edid, StartsWithTheFixedHeader) {
  const EdidBlock edid = GenerateEdid(1920, 1080);

  const uint8_t expected[8] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  EXPECT_EQ(std::memcmp(edid.data(), expected, sizeof(expected)), 0);
}

TEST(Edid, IsVersionOneFourWithoutExtensions) {
  const EdidBlock edid = GenerateEdid(1920, 1080);

  EXPECT_EQ(edid[18], 1);
  EXPECT_EQ(edid[19], 4);
  EXPECT_EQ(edid[126], 0);
  EXPECT_EQ(edid[20] & 0x80, 0x80);  // Digital input.
  EXPECT_EQ(edid[24] & 0x02, 0x02);  // The first descriptor is the preferred timing.
}

TEST(Edid, ManufacturerIdIsVgp) {
  const EdidBlock edid = GenerateEdid(1920, 1080);

  const uint16_t id = uint16_t(edid[8] << 8 | edid[9]);
  const std::string letters = {char('@' + ((id >> 10) & 0x1f)), char('@' + ((id >> 5) & 0x1f)),
                               char('@' + (id & 0x1f))};
  EXPECT_EQ(letters, "VGP");
  EXPECT_EQ(id & 0x8000, 0);  // Reserved bit.
}

TEST(Edid, ScreenSizeInCentimetresFollowsNinetySixDpi) {
  const EdidBlock edid = GenerateEdid(1920, 1080);

  EXPECT_EQ(edid[21], 51);  // 508 mm.
  EXPECT_EQ(edid[22], 29);  // 286 mm.
}

TEST(Edid, StandardTimingsAreUnusedAndEstablishedTimingsEmpty) {
  const EdidBlock edid = GenerateEdid(1920, 1080);

  for (size_t offset = 35; offset < 38; ++offset) EXPECT_EQ(edid[offset], 0) << offset;
  for (size_t offset = 38; offset < 54; ++offset) EXPECT_EQ(edid[offset], 1) << offset;
}

TEST(Edid, NameDescriptorHoldsTheFirstThirteenCharacters) {
  const EdidBlock edid = GenerateEdid(1920, 1080);

  EXPECT_EQ(edid[kNameOffset + 0], 0);
  EXPECT_EQ(edid[kNameOffset + 1], 0);
  EXPECT_EQ(edid[kNameOffset + 3], 0xfc);
  const std::string name(reinterpret_cast<const char*>(&edid[kNameOffset + 5]), 13);
  EXPECT_EQ(name, "vhost-device-");
}

TEST(Edid, RangeLimitsCoverThePreferredMode) {
  const EdidBlock edid = GenerateEdid(1920, 1080);

  const DecodedTiming timing = DecodeTiming(edid, kPreferredTimingOffset);
  const uint8_t* ranges = &edid[kRangeLimitsOffset];
  EXPECT_EQ(ranges[3], 0xfd);
  EXPECT_LE(ranges[5], timing.RefreshHz());
  EXPECT_GE(ranges[6], timing.RefreshHz());
  const double horizontal_khz =
      timing.pixel_clock_10khz * 10.0 / (timing.width + timing.horizontal_blank);
  EXPECT_LE(ranges[7], horizontal_khz);
  EXPECT_GE(ranges[8], horizontal_khz);
  EXPECT_GE(ranges[9] * 1000u, timing.pixel_clock_10khz);
}

TEST(Edid, LastDescriptorIsADummy) {
  const EdidBlock edid = GenerateEdid(1920, 1080);

  EXPECT_EQ(edid[kDummyOffset + 3], 0x10);
}

TEST(Edid, ZeroSizeGivesTheDefaultMonitor) {
  const EdidBlock expected = GenerateEdid(kEdidDefaultWidth, kEdidDefaultHeight);

  EXPECT_EQ(GenerateEdid(0, 0), expected);
  EXPECT_EQ(GenerateEdid(0, 1080), expected);
  EXPECT_EQ(GenerateEdid(1920, 0), expected);
}

TEST(Edid, OversizeIsClampedToTwelveBitsAndTheClockCapped) {
  const EdidBlock edid = GenerateEdid(std::numeric_limits<uint32_t>::max(), 8192);

  const DecodedTiming timing = DecodeTiming(edid, kPreferredTimingOffset);
  EXPECT_EQ(timing.width, kEdidMaxDimension);
  EXPECT_EQ(timing.height, kEdidMaxDimension);
  EXPECT_EQ(timing.pixel_clock_10khz, 0xffffu);
  EXPECT_GT(timing.RefreshHz(), 30.0);
  EXPECT_LT(timing.RefreshHz(), 60.0);
  EXPECT_EQ(ByteSum(edid) % 256, 0u);
}

TEST(Edid, OversizeWidthKeepsAFittingHeight) {
  const EdidBlock edid = GenerateEdid(5120, 1440);

  const DecodedTiming timing = DecodeTiming(edid, kPreferredTimingOffset);
  EXPECT_EQ(timing.width, kEdidMaxDimension);
  EXPECT_EQ(timing.height, 1440u);
}

TEST(Edid, TinySizeIsClampedUpToSixteen) {
  const EdidBlock edid = GenerateEdid(1, 1);

  const DecodedTiming timing = DecodeTiming(edid, kPreferredTimingOffset);
  EXPECT_EQ(timing.width, kEdidMinDimension);
  EXPECT_EQ(timing.height, kEdidMinDimension);
  // EDID 1.4 timings start at 10 MHz: the blank grows to get there, keeping 60 Hz.
  EXPECT_GE(timing.pixel_clock_10khz, 1000u);
  EXPECT_NEAR(timing.RefreshHz(), 60.0, 0.5);
  EXPECT_GE(edid[21], 1);  // Never 0: that would mean "aspect ratio only".
  EXPECT_GE(edid[22], 1);
  EXPECT_EQ(ByteSum(edid) % 256, 0u);
}

TEST(Edid, RefreshRateIsHonouredAndClamped) {
  EXPECT_NEAR(DecodeTiming(GenerateEdid(1920, 1080, 144), kPreferredTimingOffset).RefreshHz(),
              144.0, 0.5);
  EXPECT_EQ(GenerateEdid(1920, 1080, 0), GenerateEdid(1920, 1080, 60));
  EXPECT_EQ(GenerateEdid(1920, 1080, 100000), GenerateEdid(1920, 1080, kEdidMaxRefreshHz));
  EXPECT_EQ(GenerateEdid(1920, 1080, 1), GenerateEdid(1920, 1080, kEdidMinRefreshHz));
}

}  // namespace
}  // namespace vgpu::gpu
