// The vhost-user GPU socket protocol: the display channel from this back-end to the VMM.
//
//   MessageHeader header{static_cast<uint32_t>(Request::kScanout), 0, sizeof(Scanout)};
//   Scanout scanout{scanout_id, width, height};
//   // Send header and payload with one sendmsg(): QEMU reads them with blocking reads in its
//   // main loop, so a partial message stalls it.
//
// Spec: QEMU docs/interop/vhost-user-gpu.rst. The socket arrives with VHOST_USER_GPU_SET_SOCKET.
// The back-end sends requests and QEMU sends the optional replies. Every message is a 12-byte
// header followed by `size` payload bytes, in host byte order, with at most one fd attached as
// SCM_RIGHTS (DMABUF_SCANOUT and DMABUF_SCANOUT2 only).
#pragma once

#include <cstdint>

namespace vgpu::gpu::display {

// Spec: "Message types" (VhostUserGpuRequest).
enum class Request : uint32_t {
  kNone = 0,
  kGetProtocolFeatures = 1,  // Reply: uint64_t feature bits.
  kSetProtocolFeatures = 2,  // Payload: uint64_t.
  kGetDisplayInfo = 3,       // Reply: gpu::RespDisplayInfo (408 bytes).
  kCursorPos = 4,            // Payload: CursorPos.
  kCursorPosHide = 5,        // Payload: CursorPos.
  kCursorUpdate = 6,         // Payload: CursorUpdate.
  kScanout = 7,              // Payload: Scanout.
  kUpdate = 8,               // Payload: Update, then width * height * 4 pixel bytes.
  kDmabufScanout = 9,        // Payload: DmabufScanout, fd attached (none: disable).
  kDmabufUpdate = 10,        // Payload: Update header only. Reply: empty, when QEMU has drawn.
  kGetEdid = 11,             // Payload: EdidRequest. Reply: gpu::RespEdid. Needs kFeatureEdid.
  kDmabufScanout2 = 12,      // Payload: DmabufScanout2, fd attached. Needs kFeatureDmabuf2.
};

// The name of a request for logs ("SCANOUT"); "UNKNOWN" for any other value.
constexpr const char* RequestName(uint32_t request) {
  switch (static_cast<Request>(request)) {
    case Request::kNone:
      return "NONE";
    case Request::kGetProtocolFeatures:
      return "GET_PROTOCOL_FEATURES";
    case Request::kSetProtocolFeatures:
      return "SET_PROTOCOL_FEATURES";
    case Request::kGetDisplayInfo:
      return "GET_DISPLAY_INFO";
    case Request::kCursorPos:
      return "CURSOR_POS";
    case Request::kCursorPosHide:
      return "CURSOR_POS_HIDE";
    case Request::kCursorUpdate:
      return "CURSOR_UPDATE";
    case Request::kScanout:
      return "SCANOUT";
    case Request::kUpdate:
      return "UPDATE";
    case Request::kDmabufScanout:
      return "DMABUF_SCANOUT";
    case Request::kDmabufUpdate:
      return "DMABUF_UPDATE";
    case Request::kGetEdid:
      return "GET_EDID";
    case Request::kDmabufScanout2:
      return "DMABUF_SCANOUT2";
  }
  return "UNKNOWN";
}

// Spec: "Protocol features". Values are bit numbers, not masks.
inline constexpr uint32_t kFeatureEdid = 0;     // QEMU 8.1 and later.
inline constexpr uint32_t kFeatureDmabuf2 = 1;  // QEMU 8.2 and later.

// Spec: "Header" flags. QEMU sets exactly this in its replies and ignores the flags of requests
// (we send 0, as contrib/vhost-user-gpu does).
inline constexpr uint32_t kReplyFlag = 1u << 2;

// Spec: "Header": u32 request, u32 flags, u32 size (payload bytes after the header).
struct MessageHeader {
  uint32_t request;
  uint32_t flags;
  uint32_t size;
} __attribute__((packed));
static_assert(sizeof(MessageHeader) == 12);

// Spec: VhostUserGpuCursorPos (CURSOR_POS, CURSOR_POS_HIDE).
struct CursorPos {
  uint32_t scanout_id;
  uint32_t x;
  uint32_t y;
} __attribute__((packed));
static_assert(sizeof(CursorPos) == 12);

inline constexpr uint32_t kCursorWidth = 64;
inline constexpr uint32_t kCursorHeight = 64;

// Spec: VhostUserGpuCursorUpdate (CURSOR_UPDATE). `data` is a 64x64 PIXMAN_a8r8g8b8 image.
// QEMU copies all 16 KiB without checking `size`, so always send the whole struct.
struct CursorUpdate {
  CursorPos pos;
  uint32_t hot_x;
  uint32_t hot_y;
  uint32_t data[kCursorWidth * kCursorHeight];
} __attribute__((packed));
static_assert(sizeof(CursorUpdate) == 16404);

// Spec: VhostUserGpuScanout (SCANOUT). width == 0 disables the scanout.
struct Scanout {
  uint32_t scanout_id;
  uint32_t width;
  uint32_t height;
} __attribute__((packed));
static_assert(sizeof(Scanout) == 12);

// Spec: VhostUserGpuUpdate (UPDATE, DMABUF_UPDATE). For UPDATE, width * height PIXMAN_x8r8g8b8
// pixels with stride width * 4 follow the struct; QEMU does not check `size` against them.
struct Update {
  uint32_t scanout_id;
  uint32_t x;
  uint32_t y;
  uint32_t width;
  uint32_t height;
} __attribute__((packed));
static_assert(sizeof(Update) == 20);

// Spec: VhostUserGpuDMABUFScanout (DMABUF_SCANOUT). QEMU ignores x and y (code reading).
struct DmabufScanout {
  uint32_t scanout_id;
  uint32_t x;
  uint32_t y;
  uint32_t width;
  uint32_t height;
  uint32_t fd_width;
  uint32_t fd_height;
  uint32_t fd_stride;
  uint32_t fd_flags;  // Bit 0: y0 is the top row.
  int32_t fd_drm_fourcc;
} __attribute__((packed));
static_assert(sizeof(DmabufScanout) == 40);

inline constexpr uint32_t kDmabufFlagY0Top = 1u << 0;

// Spec: VhostUserGpuDMABUFScanout2 (DMABUF_SCANOUT2).
struct DmabufScanout2 {
  DmabufScanout dmabuf_scanout;
  uint64_t modifier;
} __attribute__((packed));
static_assert(sizeof(DmabufScanout2) == 48);

// Spec: VhostUserGpuEdidRequest (GET_EDID). QEMU sends no reply if scanout_id >= its outputs.
struct EdidRequest {
  uint32_t scanout_id;
} __attribute__((packed));
static_assert(sizeof(EdidRequest) == 4);

}  // namespace vgpu::gpu::display
