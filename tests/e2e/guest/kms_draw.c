// Guest program of the end-to-end tests: lights up the first N connectors of /dev/dri/card0,
// connector i showing test pattern PATTERN_i (pattern.h) in a dumb buffer of its own; or, with
// --stream, keeps head 0 busy with full-screen updates forever.
//
// Usage: kms_draw PATTERN_0 [PATTERN_1 ...]
//        kms_draw --stream PATTERN
//
// Uses the legacy KMS ioctls only (no libdrm): GETRESOURCES, GETCONNECTOR, CREATE_DUMB, MAP_DUMB,
// ADDFB, SETCRTC, DIRTYFB, PAGE_FLIP. Connector i is driven by CRTC i (virtio-gpu pairs them one
// to one). A connector with no modes (QEMU reports only output 0 as enabled, so the others are
// "disconnected") gets a 1024x768 mode of our own: the driver scans out whatever it is given.
// Prints "@@vgpu drawn head=I WIDTHxHEIGHT pattern=N" per head, then "@@vgpu kms-ready", and
// then sleeps forever: the framebuffers live only as long as this process keeps the DRM file open
// (on last close the kernel restores the fbdev console configuration).
//
// --stream: for the tests that kill the VMM while updates are in flight. Two framebuffers take
// turns on head 0: each frame copies the next of kStreamPatterns patterns (PATTERN, PATTERN + 1,
// ..) into the hidden one and page-flips to it, so every frame is a full-screen
// TRANSFER_TO_HOST_2D, SET_SCANOUT and RESOURCE_FLUSH. Prints "@@vgpu streaming head=0
// WIDTHxHEIGHT" once the first frame is up, then "@@vgpu frame N" after frames 1, 2, 5, 10, 20,
// 50, .. (a marker per frame would slow the stream down: every serial byte is an exit to QEMU),
// and never stops.

#include <drm.h>
#include <drm_mode.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"

enum { kMaxHeads = 16 };
// Patterns --stream cycles through: each differs from the next everywhere in the bars.
enum { kStreamPatterns = 4 };

static int Fail(const char* what) {
  printf("@@vgpu error kms_draw: %s: %s\n", what, strerror(errno));
  return 1;
}

static int Ioctl(int fd, unsigned long request, void* argument) {
  int result;
  do {
    result = ioctl(fd, request, argument);
  } while (result != 0 && (errno == EINTR || errno == EAGAIN));
  return result;
}

// VESA DMT 1024x768 at 60 Hz, for connectors that report no modes.
static struct drm_mode_modeinfo FallbackMode(void) {
  struct drm_mode_modeinfo mode = {
      .clock = 65000,
      .hdisplay = 1024,
      .hsync_start = 1048,
      .hsync_end = 1184,
      .htotal = 1344,
      .vdisplay = 768,
      .vsync_start = 771,
      .vsync_end = 777,
      .vtotal = 806,
      .vrefresh = 60,
      .flags = DRM_MODE_FLAG_NHSYNC | DRM_MODE_FLAG_NVSYNC,
      .type = DRM_MODE_TYPE_USERDEF,
  };
  snprintf(mode.name, sizeof(mode.name), "1024x768");
  return mode;
}

// Picks the preferred mode of a connector, else its first, else FallbackMode().
static int ChooseMode(int fd, uint32_t connector_id, struct drm_mode_modeinfo* chosen) {
  // First call (count_modes == 0) probes the connector and returns the counts.
  struct drm_mode_get_connector connector = {.connector_id = connector_id};
  if (Ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &connector) != 0) return Fail("GETCONNECTOR");
  *chosen = FallbackMode();
  if (connector.count_modes == 0) return 0;

  const uint32_t count = connector.count_modes;
  struct drm_mode_modeinfo* modes = calloc(count, sizeof(*modes));
  if (modes == NULL) return Fail("calloc");
  struct drm_mode_get_connector with_modes = {
      .connector_id = connector_id,
      .count_modes = count,
      .modes_ptr = (uint64_t)(uintptr_t)modes,
  };
  if (Ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &with_modes) != 0) return Fail("GETCONNECTOR");
  const uint32_t returned = with_modes.count_modes < count ? with_modes.count_modes : count;
  if (returned > 0) *chosen = modes[0];
  for (uint32_t i = 0; i < returned; ++i) {
    if (modes[i].type & DRM_MODE_TYPE_PREFERRED) {
      *chosen = modes[i];
      break;
    }
  }
  free(modes);
  return 0;
}

// A dumb buffer with a framebuffer on it, mapped for drawing.
struct Framebuffer {
  uint32_t id;
  uint32_t pitch;
  size_t size;
  uint8_t* pixels;
};

static int CreateFramebuffer(int fd, uint32_t width, uint32_t height,
                             struct Framebuffer* framebuffer) {
  struct drm_mode_create_dumb dumb = {.width = width, .height = height, .bpp = 32};
  if (Ioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) != 0) return Fail("CREATE_DUMB");
  struct drm_mode_map_dumb map_dumb = {.handle = dumb.handle};
  if (Ioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map_dumb) != 0) return Fail("MAP_DUMB");
  uint8_t* const pixels =
      mmap(NULL, dumb.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map_dumb.offset);
  if (pixels == MAP_FAILED) return Fail("mmap dumb buffer");
  struct drm_mode_fb_cmd command = {
      .width = width,
      .height = height,
      .pitch = dumb.pitch,
      .bpp = 32,
      .depth = 24,
      .handle = dumb.handle,
  };
  if (Ioctl(fd, DRM_IOCTL_MODE_ADDFB, &command) != 0) return Fail("ADDFB");
  *framebuffer = (struct Framebuffer){
      .id = command.fb_id, .pitch = dumb.pitch, .size = dumb.size, .pixels = pixels};
  return 0;
}

// Writes `pattern` into `pixels` (rows `pitch` bytes apart).
static void DrawPattern(uint8_t* pixels, uint32_t pitch, uint32_t width, uint32_t height,
                        uint32_t pattern) {
  // Legacy ADDFB with bpp 32 / depth 24 is DRM_FORMAT_XRGB8888: 0x00RRGGBB little endian.
  for (uint32_t y = 0; y < height; ++y) {
    uint32_t* const row = (uint32_t*)(pixels + (size_t)y * pitch);
    for (uint32_t x = 0; x < width; ++x) {
      row[x] = PatternPixel(x, y, width, height, pattern);
    }
  }
}

static int SetCrtc(int fd, uint32_t connector_id, uint32_t crtc_id, uint32_t framebuffer_id,
                   const struct drm_mode_modeinfo* mode) {
  struct drm_mode_crtc crtc = {
      .set_connectors_ptr = (uint64_t)(uintptr_t)&connector_id,
      .count_connectors = 1,
      .crtc_id = crtc_id,
      .fb_id = framebuffer_id,
      .mode_valid = 1,
      .mode = *mode,
  };
  if (Ioctl(fd, DRM_IOCTL_MODE_SETCRTC, &crtc) != 0) return Fail("SETCRTC");
  // The modeset already flushes the whole plane; DIRTYFB makes the flush explicit for drivers
  // that wait for damage. Not every driver implements it, so its result is ignored.
  struct drm_mode_fb_dirty_cmd dirty = {.fb_id = framebuffer_id};
  Ioctl(fd, DRM_IOCTL_MODE_DIRTYFB, &dirty);
  return 0;
}

// Shows `pattern` on CRTC crtc_id through connector connector_id.
static int LightUpHead(int fd, uint32_t head, uint32_t connector_id, uint32_t crtc_id,
                       uint32_t pattern) {
  struct drm_mode_modeinfo mode;
  if (ChooseMode(fd, connector_id, &mode) != 0) return 1;
  struct Framebuffer framebuffer;
  if (CreateFramebuffer(fd, mode.hdisplay, mode.vdisplay, &framebuffer) != 0) return 1;
  DrawPattern(framebuffer.pixels, framebuffer.pitch, mode.hdisplay, mode.vdisplay, pattern);
  munmap(framebuffer.pixels, framebuffer.size);
  if (SetCrtc(fd, connector_id, crtc_id, framebuffer.id, &mode) != 0) return 1;
  printf("@@vgpu drawn head=%u %ux%u pattern=%u\n", head, mode.hdisplay, mode.vdisplay, pattern);
  fflush(stdout);
  return 0;
}

// Page-flips crtc_id to framebuffer_id. The flip is a nonblocking commit: DRM refuses a new one
// with EBUSY while the previous one is still being committed, so that is retried after a short
// pause rather than spinning, which would take the CPU from the kernel worker doing the commit.
static int PageFlip(int fd, uint32_t crtc_id, uint32_t framebuffer_id) {
  struct drm_mode_crtc_page_flip flip = {.crtc_id = crtc_id, .fb_id = framebuffer_id};
  const struct timespec pause_between_tries = {.tv_nsec = 1000 * 1000};
  while (Ioctl(fd, DRM_IOCTL_MODE_PAGE_FLIP, &flip) != 0) {
    if (errno != EBUSY) return Fail("PAGE_FLIP");
    nanosleep(&pause_between_tries, NULL);
  }
  return 0;
}

// True for 1, 2, 5, 10, 20, 50, ...: the frames after which --stream prints a marker.
static int IsReportedFrame(uint64_t frame) {
  while (frame >= 10 && frame % 10 == 0) frame /= 10;
  return frame == 1 || frame == 2 || frame == 5;
}

// --stream PATTERN on head 0; returns only on failure.
static int Stream(int fd, uint32_t connector_id, uint32_t crtc_id, uint32_t first_pattern) {
  struct drm_mode_modeinfo mode;
  if (ChooseMode(fd, connector_id, &mode) != 0) return 1;
  const uint32_t width = mode.hdisplay;
  const uint32_t height = mode.vdisplay;
  struct Framebuffer framebuffers[2];
  for (int i = 0; i < 2; ++i) {
    if (CreateFramebuffer(fd, width, height, &framebuffers[i]) != 0) return 1;
  }
  // Every pattern is computed once: a frame is then a copy, so frames follow each other as fast
  // as the device takes them, not as fast as the guest's TCG-emulated CPU computes pixels.
  const size_t size = framebuffers[0].size;
  const uint32_t pitch = framebuffers[0].pitch;
  uint8_t* images[kStreamPatterns];
  for (uint32_t i = 0; i < kStreamPatterns; ++i) {
    images[i] = malloc(size);
    if (images[i] == NULL) return Fail("malloc");
    DrawPattern(images[i], pitch, width, height, first_pattern + i);
  }
  memcpy(framebuffers[0].pixels, images[0], size);
  if (SetCrtc(fd, connector_id, crtc_id, framebuffers[0].id, &mode) != 0) return 1;
  printf("@@vgpu streaming head=0 %ux%u\n", width, height);
  fflush(stdout);
  for (uint64_t frame = 1;; ++frame) {
    const struct Framebuffer* hidden = &framebuffers[frame % 2];
    memcpy(hidden->pixels, images[frame % kStreamPatterns], size);
    if (PageFlip(fd, crtc_id, hidden->id) != 0) return 1;
    if (IsReportedFrame(frame)) {
      printf("@@vgpu frame %llu\n", (unsigned long long)frame);
      fflush(stdout);
    }
  }
}

int main(int argc, char** argv) {
  const int stream = argc == 3 && strcmp(argv[1], "--stream") == 0;
  const uint32_t head_count = stream ? 1 : (uint32_t)(argc - 1);
  if (head_count == 0 || head_count > kMaxHeads || (!stream && argv[1][0] == '-')) {
    printf("@@vgpu error usage: kms_draw PATTERN_0 [PATTERN_1 ...] | kms_draw --stream PATTERN\n");
    return 2;
  }
  const int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Fail("open /dev/dri/card0");

  uint32_t connectors[kMaxHeads];
  uint32_t crtcs[kMaxHeads];
  struct drm_mode_card_res resources = {0};
  if (Ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &resources) != 0) return Fail("GETRESOURCES");
  if (resources.count_connectors < head_count || resources.count_crtcs < head_count) {
    printf("@@vgpu error kms_draw: %u heads asked, the card has %u connectors and %u CRTCs\n",
           head_count, resources.count_connectors, resources.count_crtcs);
    return 1;
  }
  if (resources.count_connectors > kMaxHeads || resources.count_crtcs > kMaxHeads) {
    printf("@@vgpu error kms_draw: more than %d connectors or CRTCs\n", kMaxHeads);
    return 1;
  }
  struct drm_mode_card_res ids = {
      .connector_id_ptr = (uint64_t)(uintptr_t)connectors,
      .count_connectors = resources.count_connectors,
      .crtc_id_ptr = (uint64_t)(uintptr_t)crtcs,
      .count_crtcs = resources.count_crtcs,
  };
  if (Ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &ids) != 0) return Fail("GETRESOURCES");

  if (stream) {
    return Stream(fd, connectors[0], crtcs[0], (uint32_t)strtoul(argv[2], NULL, 10));
  }
  for (uint32_t head = 0; head < head_count; ++head) {
    const uint32_t pattern = (uint32_t)strtoul(argv[head + 1], NULL, 10);
    if (LightUpHead(fd, head, connectors[head], crtcs[head], pattern) != 0) return 1;
  }
  printf("@@vgpu kms-ready\n");
  fflush(stdout);
  for (;;) pause();
}
