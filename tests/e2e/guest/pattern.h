// The test pattern the guest draws and tests/e2e/e2e.py expects (pattern_pixel() there is the
// same function: change both together).
//
// Every pixel is a pure function of (x, y, width, height, pattern), integers only, so the host
// can compute the exact image: a 1-pixel orange border (catches off-by-one and stride errors),
// eight colour bars in the top half (shifted by the pattern number, so two patterns differ
// everywhere there) and gradients in the bottom half (every channel value occurs).

#ifndef VGPU_TESTS_E2E_GUEST_PATTERN_H_
#define VGPU_TESTS_E2E_GUEST_PATTERN_H_

#include <stdint.h>

// 0xRRGGBB.
static const uint32_t kPatternBars[8] = {0xffffff, 0xffff00, 0x00ffff, 0x00ff00,
                                         0xff00ff, 0xff0000, 0x0000ff, 0x000000};
static const uint32_t kPatternBorder = 0xff8000;

// Returns pixel (x, y) of pattern `pattern` on a width x height screen (both at least 2) as
// 0xRRGGBB.
static inline uint32_t PatternPixel(uint32_t x, uint32_t y, uint32_t width, uint32_t height,
                                    uint32_t pattern) {
  if (x == 0 || y == 0 || x == width - 1 || y == height - 1) {
    return kPatternBorder;
  }
  const uint32_t half = height / 2;
  if (y < half) {
    return kPatternBars[(x * 8 / width + pattern) % 8];
  }
  const uint32_t red = x * 255 / (width - 1);
  const uint32_t green = (y - half) * 255 / (height - half - 1);
  const uint32_t blue = ((x ^ y) * (pattern + 1)) & 0xff;
  return (red << 16) | (green << 8) | blue;
}

#endif  // VGPU_TESTS_E2E_GUEST_PATTERN_H_
