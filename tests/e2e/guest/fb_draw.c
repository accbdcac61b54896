// Guest program of the end-to-end tests: draws test pattern N (pattern.h) on /dev/fb0.
//
// Usage: fb_draw PATTERN
//
// Reads the geometry and pixel layout from the fbdev driver, writes every visible pixel through
// an mmap of the framebuffer, then msync()s it: DRM's fbdev emulation is deferred I/O, and its
// fsync handler (fb_deferred_io_fsync) runs the pending flush to the device right away instead of
// after the worker's delay. On success prints "@@vgpu drawn fb0 WIDTHxHEIGHT pattern=N".

#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pattern.h"

static int Fail(const char* what) {
  printf("@@vgpu error fb_draw: %s: %s\n", what, strerror(errno));
  return 1;
}

// Places an 8-bit channel value where the fbdev bitfield says it goes.
static uint32_t PackChannel(uint32_t value, const struct fb_bitfield* field) {
  return (value >> (8 - field->length)) << field->offset;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    printf("@@vgpu error usage: fb_draw PATTERN\n");
    return 2;
  }
  const uint32_t pattern = (uint32_t)strtoul(argv[1], NULL, 10);

  const int fd = open("/dev/fb0", O_RDWR);
  if (fd < 0) return Fail("open /dev/fb0");
  struct fb_var_screeninfo var;
  struct fb_fix_screeninfo fix;
  if (ioctl(fd, FBIOGET_VSCREENINFO, &var) != 0) return Fail("FBIOGET_VSCREENINFO");
  if (ioctl(fd, FBIOGET_FSCREENINFO, &fix) != 0) return Fail("FBIOGET_FSCREENINFO");
  if (var.bits_per_pixel != 32 || var.red.length > 8 || var.green.length > 8 ||
      var.blue.length > 8) {
    printf("@@vgpu error fb_draw: unsupported format: %u bpp\n", var.bits_per_pixel);
    return 1;
  }

  uint8_t* const map = mmap(NULL, fix.smem_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return Fail("mmap /dev/fb0");
  // The visible screen starts at the panning offset.
  uint8_t* const origin = map + (size_t)var.yoffset * fix.line_length + (size_t)var.xoffset * 4;
  for (uint32_t y = 0; y < var.yres; ++y) {
    uint32_t* const row = (uint32_t*)(origin + (size_t)y * fix.line_length);
    for (uint32_t x = 0; x < var.xres; ++x) {
      const uint32_t rgb = PatternPixel(x, y, var.xres, var.yres, pattern);
      row[x] = PackChannel((rgb >> 16) & 0xff, &var.red) |
               PackChannel((rgb >> 8) & 0xff, &var.green) | PackChannel(rgb & 0xff, &var.blue);
    }
  }
  if (msync(map, fix.smem_len, MS_SYNC) != 0) return Fail("msync");
  munmap(map, fix.smem_len);
  close(fd);
  printf("@@vgpu drawn fb0 %ux%u pattern=%u\n", var.xres, var.yres, pattern);
  return 0;
}
