#include "gpu/edid.h"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace vgpu::gpu {
namespace {

// Byte offsets in the base block (VESA E-EDID 1.4, section 3).
constexpr size_t kManufacturerOffset = 8;
constexpr size_t kProductCodeOffset = 10;
constexpr size_t kSerialOffset = 12;
constexpr size_t kWeekOffset = 16;
constexpr size_t kYearOffset = 17;
constexpr size_t kVersionOffset = 18;
constexpr size_t kVideoInputOffset = 20;
constexpr size_t kScreenWidthCmOffset = 21;
constexpr size_t kScreenHeightCmOffset = 22;
constexpr size_t kGammaOffset = 23;
constexpr size_t kFeaturesOffset = 24;
constexpr size_t kChromaticityOffset = 25;
constexpr size_t kStandardTimingsOffset = 38;
constexpr size_t kStandardTimingsCount = 8;
constexpr size_t kDescriptorOffset = 54;
constexpr size_t kDescriptorSize = 18;
constexpr size_t kExtensionCountOffset = 126;
constexpr size_t kChecksumOffset = 127;

// Display descriptor tags (section 3.10.3).
constexpr uint8_t kTagDummy = 0x10;
constexpr uint8_t kTagRangeLimits = 0xfd;
constexpr uint8_t kTagProductName = 0xfc;
constexpr size_t kDescriptorTextLength = 13;

// The monitor pretends to be 96 dpi, the common desktop default: 25.4 mm per 96 pixels.
constexpr uint32_t MillimetresAt96Dpi(uint32_t pixels) { return (pixels * 254 + 480) / 960; }

// A chromaticity coordinate in 1/10000 as the 10-bit binary fraction EDID stores.
constexpr uint32_t TenBitFraction(uint32_t ten_thousandths) {
  return (ten_thousandths * 1024 + 5000) / 10000;
}

void WriteHeader(EdidBlock& edid) {
  static constexpr uint8_t kHeader[8] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  std::memcpy(edid.data(), kHeader, sizeof(kHeader));

  // Manufacturer "VGP": three letters, 5 bits each ('A' = 1), big-endian.
  constexpr char kVendor[] = "VGP";
  const uint16_t vendor = static_cast<uint16_t>(((kVendor[0] - '@') << 10) |
                                                ((kVendor[1] - '@') << 5) | (kVendor[2] - '@'));
  edid[kManufacturerOffset] = static_cast<uint8_t>(vendor >> 8);
  edid[kManufacturerOffset + 1] = static_cast<uint8_t>(vendor & 0xff);
  edid[kProductCodeOffset] = 0x01;  // Product code 1, little-endian.
  edid[kProductCodeOffset + 1] = 0x00;
  std::memset(&edid[kSerialOffset], 0, 4);  // No serial number.
  edid[kWeekOffset] = 1;
  edid[kYearOffset] = 2025 - 1990;
  edid[kVersionOffset] = 1;
  edid[kVersionOffset + 1] = 4;
}

void WriteBasicParameters(EdidBlock& edid, uint32_t width, uint32_t height) {
  edid[kVideoInputOffset] = 0xa0;  // Digital, 8 bits per colour, interface not defined.
  // Screen size in cm. A zero in one of them would mean "aspect ratio" in EDID 1.4, so >= 1.
  edid[kScreenWidthCmOffset] =
      static_cast<uint8_t>(std::max<uint32_t>(1, (MillimetresAt96Dpi(width) + 5) / 10));
  edid[kScreenHeightCmOffset] =
      static_cast<uint8_t>(std::max<uint32_t>(1, (MillimetresAt96Dpi(height) + 5) / 10));
  edid[kGammaOffset] = 220 - 100;  // Gamma 2.2.
  // sRGB is the default colour space, RGB 4:4:4, the preferred timing is the native mode.
  edid[kFeaturesOffset] = 0x06;
}

void WriteSrgbChromaticity(EdidBlock& edid) {
  const uint32_t red_x = TenBitFraction(6400), red_y = TenBitFraction(3300);
  const uint32_t green_x = TenBitFraction(3000), green_y = TenBitFraction(6000);
  const uint32_t blue_x = TenBitFraction(1500), blue_y = TenBitFraction(600);
  const uint32_t white_x = TenBitFraction(3127), white_y = TenBitFraction(3290);
  uint8_t* bytes = &edid[kChromaticityOffset];
  bytes[0] = static_cast<uint8_t>(((red_x & 3) << 6) | ((red_y & 3) << 4) | ((green_x & 3) << 2) |
                                  (green_y & 3));
  bytes[1] = static_cast<uint8_t>(((blue_x & 3) << 6) | ((blue_y & 3) << 4) | ((white_x & 3) << 2) |
                                  (white_y & 3));
  const uint32_t high_bits[] = {red_x, red_y, green_x, green_y, blue_x, blue_y, white_x, white_y};
  for (size_t index = 0; index < 8; ++index) {
    bytes[2 + index] = static_cast<uint8_t>(high_bits[index] >> 2);
  }
}

// Blanking after CVT reduced blanking (VESA CVT 1.2 "RB"), which suits any size a window has:
// a fixed 160-pixel horizontal blank and at least 460 us of vertical blank.
struct Timing {
  uint32_t pixel_clock_10khz;
  uint32_t width, horizontal_blank, horizontal_front, horizontal_sync;
  uint32_t height, vertical_blank, vertical_front, vertical_sync;
};

Timing ComputeTiming(uint32_t width, uint32_t height, uint32_t refresh_hz) {
  constexpr uint32_t kHorizontalBlank = 160, kHorizontalFront = 48, kHorizontalSync = 32;
  constexpr uint32_t kVerticalFront = 3, kVerticalSync = 6, kMinVerticalBackPorch = 6;
  constexpr uint64_t kMinVerticalBlankMicroseconds = 460;

  // Lines in 460 us: line period = (frame period - 460 us) / height. refresh_hz <= 240 keeps the
  // denominator positive; height <= 4095 keeps the result (< 600) inside 12 bits.
  const uint64_t numerator = kMinVerticalBlankMicroseconds * height * refresh_hz;
  const uint64_t denominator = 1'000'000 - kMinVerticalBlankMicroseconds * refresh_hz;
  uint32_t vertical_blank =
      std::max<uint32_t>(static_cast<uint32_t>((numerator + denominator - 1) / denominator),
                         kVerticalFront + kVerticalSync + kMinVerticalBackPorch);

  // EDID 1.4 detailed timings start at 10 MHz (edid-decode rejects lower clocks). Small modes
  // reach it with a longer vertical blank: at most 2368 lines (16x16 at 24 Hz), within 12 bits.
  constexpr uint64_t kMinPixelClockHz = 10'000'000;
  const uint64_t line_rate_divisor = uint64_t{width + kHorizontalBlank} * refresh_hz;
  const uint64_t min_total_lines = (kMinPixelClockHz + line_rate_divisor - 1) / line_rate_divisor;
  if (height + vertical_blank < min_total_lines) {
    vertical_blank = static_cast<uint32_t>(min_total_lines - height);
  }

  const uint64_t total = uint64_t{width + kHorizontalBlank} * (height + vertical_blank);
  const uint64_t clock_10khz = (total * refresh_hz + 5000) / 10000;
  return Timing{
      .pixel_clock_10khz = static_cast<uint32_t>(std::min<uint64_t>(clock_10khz, 0xffff)),
      .width = width,
      .horizontal_blank = kHorizontalBlank,
      .horizontal_front = kHorizontalFront,
      .horizontal_sync = kHorizontalSync,
      .height = height,
      .vertical_blank = vertical_blank,
      .vertical_front = kVerticalFront,
      .vertical_sync = kVerticalSync,
  };
}

// Detailed timing descriptor (section 3.10.2).
void WriteDetailedTiming(uint8_t* descriptor, const Timing& timing) {
  const uint32_t width_mm = MillimetresAt96Dpi(timing.width);
  const uint32_t height_mm = MillimetresAt96Dpi(timing.height);
  auto low = [](uint32_t value) { return static_cast<uint8_t>(value & 0xff); };
  auto high_nibbles = [](uint32_t upper, uint32_t lower) {
    return static_cast<uint8_t>((((upper >> 8) & 0xf) << 4) | ((lower >> 8) & 0xf));
  };
  descriptor[0] = low(timing.pixel_clock_10khz);
  descriptor[1] = low(timing.pixel_clock_10khz >> 8);
  descriptor[2] = low(timing.width);
  descriptor[3] = low(timing.horizontal_blank);
  descriptor[4] = high_nibbles(timing.width, timing.horizontal_blank);
  descriptor[5] = low(timing.height);
  descriptor[6] = low(timing.vertical_blank);
  descriptor[7] = high_nibbles(timing.height, timing.vertical_blank);
  descriptor[8] = low(timing.horizontal_front);
  descriptor[9] = low(timing.horizontal_sync);
  descriptor[10] =
      static_cast<uint8_t>(((timing.vertical_front & 0xf) << 4) | (timing.vertical_sync & 0xf));
  descriptor[11] = static_cast<uint8_t>(
      (((timing.horizontal_front >> 8) & 3) << 6) | (((timing.horizontal_sync >> 8) & 3) << 4) |
      (((timing.vertical_front >> 4) & 3) << 2) | ((timing.vertical_sync >> 4) & 3));
  descriptor[12] = low(width_mm);
  descriptor[13] = low(height_mm);
  descriptor[14] = high_nibbles(width_mm, height_mm);
  descriptor[15] = 0;  // No borders.
  descriptor[16] = 0;
  // Digital separate sync, horizontal sync positive, vertical sync negative (as CVT-RB).
  descriptor[17] = 0x1a;
}

void WriteDescriptorTag(uint8_t* descriptor, uint8_t tag) {
  std::memset(descriptor, 0, kDescriptorSize);
  descriptor[3] = tag;
}

// Display range limits (section 3.10.3.3): wide enough for every mode GenerateEdid emits, except
// line rates above 255 kHz (narrow modes over ~3800 lines at high refresh rates), which a base
// block cannot state; edid-decode only warns about those.
void WriteRangeLimits(uint8_t* descriptor) {
  WriteDescriptorTag(descriptor, kTagRangeLimits);
  descriptor[5] = kEdidMinRefreshHz;  // Vertical Hz.
  descriptor[6] = kEdidMaxRefreshHz;
  descriptor[7] = 1;  // Horizontal kHz.
  descriptor[8] = 255;
  descriptor[9] = 66;     // Maximum pixel clock in 10 MHz: 660 MHz covers any 16-bit DTD clock.
  descriptor[10] = 0x01;  // Range limits only, no secondary timing formula.
  descriptor[11] = 0x0a;
  std::memset(descriptor + 12, ' ', kDescriptorSize - 12);
}

// Display product name (section 3.10.3.4): up to 13 characters, then a line feed, then spaces.
void WriteProductName(uint8_t* descriptor) {
  WriteDescriptorTag(descriptor, kTagProductName);
  uint8_t* text = descriptor + 5;
  std::memset(text, ' ', kDescriptorTextLength);
  const std::string_view name(kEdidMonitorName);
  const size_t length = std::min(name.size(), kDescriptorTextLength);
  std::memcpy(text, name.data(), length);
  if (length < kDescriptorTextLength) text[length] = '\n';
}

void WriteChecksum(EdidBlock& edid) {
  uint32_t sum = 0;
  for (size_t index = 0; index < kChecksumOffset; ++index) sum += edid[index];
  edid[kChecksumOffset] = static_cast<uint8_t>((256 - (sum & 0xff)) & 0xff);
}

}  // namespace

EdidBlock GenerateEdid(uint32_t width, uint32_t height, uint32_t refresh_hz) {
  if (width == 0 || height == 0) {
    width = kEdidDefaultWidth;
    height = kEdidDefaultHeight;
  }
  width = std::clamp(width, kEdidMinDimension, kEdidMaxDimension);
  height = std::clamp(height, kEdidMinDimension, kEdidMaxDimension);
  refresh_hz = refresh_hz == 0 ? kEdidDefaultRefreshHz
                               : std::clamp(refresh_hz, kEdidMinRefreshHz, kEdidMaxRefreshHz);

  EdidBlock edid{};
  WriteHeader(edid);
  WriteBasicParameters(edid, width, height);
  WriteSrgbChromaticity(edid);
  // Established timings stay 0; standard timings are all "unused" (01 01).
  for (size_t index = 0; index < kStandardTimingsCount; ++index) {
    edid[kStandardTimingsOffset + 2 * index] = 0x01;
    edid[kStandardTimingsOffset + 2 * index + 1] = 0x01;
  }
  uint8_t* descriptors = &edid[kDescriptorOffset];
  WriteDetailedTiming(descriptors, ComputeTiming(width, height, refresh_hz));
  WriteRangeLimits(descriptors + kDescriptorSize);
  WriteProductName(descriptors + 2 * kDescriptorSize);
  WriteDescriptorTag(descriptors + 3 * kDescriptorSize, kTagDummy);
  edid[kExtensionCountOffset] = 0;
  WriteChecksum(edid);
  return edid;
}

}  // namespace vgpu::gpu
