// virtio-gpu wire format: command and response types, flags, feature bits, formats and the
// request/response structs of the control and cursor queues.
//
//   CtrlHdr header;
//   std::memcpy(&header, bytes, sizeof(header));  // Copy out of guest memory, never cast in place.
//   if (header.type == static_cast<uint32_t>(CommandType::kResourceCreate2d)) { ... }
//
// Spec: virtio v1.2 §5.7 "GPU Device" and Linux include/uapi/linux/virtio_gpu.h. Naming rule:
// struct virtio_gpu_foo_bar is FooBar here and keeps the spec's field names. Every field is
// little-endian on the wire; this daemon only runs on little-endian hosts (asserted below), so
// fields are plain uint32_t/uint64_t. Structs are packed and their sizes are asserted, so that a
// struct can be memcpy'd to and from a descriptor chain byte for byte.
#pragma once

#include <cstddef>
#include <cstdint>

#include "virtio_gpu/blob.h"
#include "virtio_gpu/formats.h"
#include "virtio_gpu/geometry.h"
#include "virtio_gpu/ids.h"

namespace vgpu::gpu {

// virtio-gpu's vocabulary (src/virtio_gpu), which the renderers share.
using virtio_gpu::Box;
using virtio_gpu::CapsetId;
using virtio_gpu::ContextId;
using virtio_gpu::CursorImage;
using virtio_gpu::Format;
using virtio_gpu::kCursorPixels;
using virtio_gpu::kCursorSize;
using virtio_gpu::kMaxRingIdx;
using virtio_gpu::Rect;
using virtio_gpu::ResourceId;
using virtio_gpu::ScanoutId;

// Spec: enum virtio_gpu_ctrl_type, commands (§5.7.6.7).
enum class CommandType : uint32_t {
  kUndefined = 0,  // Linux VIRTIO_GPU_UNDEFINED.

  // 2D commands.
  kGetDisplayInfo = 0x0100,
  kResourceCreate2d = 0x0101,
  kResourceUnref = 0x0102,
  kSetScanout = 0x0103,
  kResourceFlush = 0x0104,
  kTransferToHost2d = 0x0105,
  kResourceAttachBacking = 0x0106,
  kResourceDetachBacking = 0x0107,
  kGetCapsetInfo = 0x0108,
  kGetCapset = 0x0109,
  kGetEdid = 0x010a,
  kResourceAssignUuid = 0x010b,
  kResourceCreateBlob = 0x010c,
  kSetScanoutBlob = 0x010d,

  // 3D commands.
  kCtxCreate = 0x0200,
  kCtxDestroy = 0x0201,
  kCtxAttachResource = 0x0202,
  kCtxDetachResource = 0x0203,
  kResourceCreate3d = 0x0204,
  kTransferToHost3d = 0x0205,
  kTransferFromHost3d = 0x0206,
  kSubmit3d = 0x0207,
  kResourceMapBlob = 0x0208,
  kResourceUnmapBlob = 0x0209,

  // Cursor commands (cursorq).
  kUpdateCursor = 0x0300,
  kMoveCursor = 0x0301,
};

// Spec: enum virtio_gpu_ctrl_type, responses (§5.7.6.7).
enum class ResponseType : uint32_t {
  // Success responses.
  kOkNodata = 0x1100,
  kOkDisplayInfo = 0x1101,
  kOkCapsetInfo = 0x1102,
  kOkCapset = 0x1103,
  kOkEdid = 0x1104,
  kOkResourceUuid = 0x1105,
  kOkMapInfo = 0x1106,

  // Error responses.
  kErrUnspec = 0x1200,
  kErrOutOfMemory = 0x1201,
  kErrInvalidScanoutId = 0x1202,
  kErrInvalidResourceId = 0x1203,
  kErrInvalidContextId = 0x1204,
  kErrInvalidParameter = 0x1205,
};

// The name of a command or response type for logs ("RESOURCE_CREATE_2D", "OK_NODATA"); "UNKNOWN"
// for any other value. Takes the raw value because it comes from the guest.
const char* CommandName(uint32_t type);

// Spec: VIRTIO_GPU_FLAG_* in struct virtio_gpu_ctrl_hdr.flags (§5.7.6.7).
inline constexpr uint32_t kFlagFence = 1u << 0;
inline constexpr uint32_t kFlagInfoRingIdx = 1u << 1;

// Spec: feature bits (§5.7.3). Values are bit numbers, not masks.
inline constexpr uint32_t kFeatureVirgl = 0;
inline constexpr uint32_t kFeatureEdid = 1;
inline constexpr uint32_t kFeatureResourceUuid = 2;
inline constexpr uint32_t kFeatureResourceBlob = 3;
inline constexpr uint32_t kFeatureContextInit = 4;  // Requires kFeatureVirgl.

// Spec: VIRTIO_GPU_EVENT_DISPLAY in virtio_gpu_config.events_read (§5.7.4).
inline constexpr uint32_t kEventDisplay = 1u << 0;

// Spec: VIRTIO_GPU_MAX_SCANOUTS (§5.7.6.8, GET_DISPLAY_INFO).
inline constexpr uint32_t kMaxScanouts = 16;

// Blob memory kinds, flags and map-cache types: src/virtio_gpu/blob.h (the renderers share them).
using virtio_gpu::blob::kBlobFlagUseCrossDevice;
using virtio_gpu::blob::kBlobFlagUseMappable;
using virtio_gpu::blob::kBlobFlagUseShareable;
using virtio_gpu::blob::kBlobMemGuest;
using virtio_gpu::blob::kBlobMemHost3d;
using virtio_gpu::blob::kBlobMemHost3dGuest;
using virtio_gpu::blob::kBlobPageSize;
using virtio_gpu::blob::kMapCacheCached;
using virtio_gpu::blob::kMapCacheMask;
using virtio_gpu::blob::kMapCacheNone;
using virtio_gpu::blob::kMapCacheUncached;
using virtio_gpu::blob::kMapCacheWc;

// Spec: enum virtio_gpu_shm_id (§5.7.5 Device Initialization).
inline constexpr uint8_t kShmIdUndefined = 0;
inline constexpr uint8_t kShmIdHostVisible = 1;

// Linux uapi: VIRTIO_GPU_RESOURCE_FLAG_Y_0_TOP in resource_create_3d.flags (not in the spec).
inline constexpr uint32_t kResourceFlagY0Top = 1u << 0;

// Spec: VIRTIO_GPU_CONTEXT_INIT_CAPSET_ID_MASK in ctx_create.context_init (§5.7.6.9).
inline constexpr uint32_t kContextInitCapsetIdMask = 0x000000ff;

// Spec: struct virtio_gpu_config (§5.7.4). v1.4's blob_alignment is not offered.
struct Config {
  uint32_t events_read;
  uint32_t events_clear;
  uint32_t num_scanouts;
  uint32_t num_capsets;
} __attribute__((packed));
static_assert(sizeof(Config) == 16);

// Spec: struct virtio_gpu_ctrl_hdr (§5.7.6.7).
struct CtrlHdr {
  uint32_t type;
  uint32_t flags;
  uint64_t fence_id;
  uint32_t ctx_id;
  uint8_t ring_idx;
  uint8_t padding[3];
} __attribute__((packed));
static_assert(sizeof(CtrlHdr) == 24);

// Spec: struct virtio_gpu_display_one, inside virtio_gpu_resp_display_info (§5.7.6.8).
struct DisplayOne {
  Rect r;
  uint32_t enabled;
  uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(DisplayOne) == 24);

// Spec: struct virtio_gpu_resp_display_info (§5.7.6.8, GET_DISPLAY_INFO).
struct RespDisplayInfo {
  CtrlHdr hdr;
  DisplayOne pmodes[kMaxScanouts];
} __attribute__((packed));
static_assert(sizeof(RespDisplayInfo) == 408);

// Spec: struct virtio_gpu_get_edid (§5.7.6.8, GET_EDID).
struct GetEdid {
  CtrlHdr hdr;
  uint32_t scanout;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(GetEdid) == 32);

// Spec: struct virtio_gpu_resp_edid (§5.7.6.8, GET_EDID).
struct RespEdid {
  CtrlHdr hdr;
  uint32_t size;
  uint32_t padding;
  uint8_t edid[1024];
} __attribute__((packed));
static_assert(sizeof(RespEdid) == 1056);

// Spec: struct virtio_gpu_resource_create_2d (§5.7.6.8, RESOURCE_CREATE_2D).
struct ResourceCreate2d {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t format;
  uint32_t width;
  uint32_t height;
} __attribute__((packed));
static_assert(sizeof(ResourceCreate2d) == 40);

// Spec: struct virtio_gpu_resource_unref (§5.7.6.8, RESOURCE_UNREF).
struct ResourceUnref {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(ResourceUnref) == 32);

// Spec: struct virtio_gpu_set_scanout (§5.7.6.8, SET_SCANOUT).
struct SetScanout {
  CtrlHdr hdr;
  Rect r;
  uint32_t scanout_id;
  uint32_t resource_id;
} __attribute__((packed));
static_assert(sizeof(SetScanout) == 48);

// Spec: struct virtio_gpu_resource_flush (§5.7.6.8, RESOURCE_FLUSH).
struct ResourceFlush {
  CtrlHdr hdr;
  Rect r;
  uint32_t resource_id;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(ResourceFlush) == 48);

// Spec: struct virtio_gpu_transfer_to_host_2d (§5.7.6.8, TRANSFER_TO_HOST_2D).
struct TransferToHost2d {
  CtrlHdr hdr;
  Rect r;
  uint64_t offset;
  uint32_t resource_id;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(TransferToHost2d) == 56);

// Spec: struct virtio_gpu_resource_attach_backing (§5.7.6.8, RESOURCE_ATTACH_BACKING).
// nr_entries MemEntry structs follow it in the request.
struct ResourceAttachBacking {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t nr_entries;
} __attribute__((packed));
static_assert(sizeof(ResourceAttachBacking) == 32);

// Spec: struct virtio_gpu_mem_entry (§5.7.6.8, RESOURCE_ATTACH_BACKING).
struct MemEntry {
  uint64_t addr;
  uint32_t length;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(MemEntry) == 16);

// Spec: struct virtio_gpu_resource_detach_backing (§5.7.6.8, RESOURCE_DETACH_BACKING).
struct ResourceDetachBacking {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(ResourceDetachBacking) == 32);

// Spec: struct virtio_gpu_get_capset_info (§5.7.6.8, GET_CAPSET_INFO).
struct GetCapsetInfo {
  CtrlHdr hdr;
  uint32_t capset_index;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(GetCapsetInfo) == 32);

// Spec: struct virtio_gpu_resp_capset_info (§5.7.6.8, GET_CAPSET_INFO).
struct RespCapsetInfo {
  CtrlHdr hdr;
  uint32_t capset_id;
  uint32_t capset_max_version;
  uint32_t capset_max_size;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(RespCapsetInfo) == 40);

// Spec: struct virtio_gpu_get_capset (§5.7.6.8, GET_CAPSET).
struct GetCapset {
  CtrlHdr hdr;
  uint32_t capset_id;
  uint32_t capset_version;
} __attribute__((packed));
static_assert(sizeof(GetCapset) == 32);

// Spec: struct virtio_gpu_resp_capset (§5.7.6.8, GET_CAPSET): the header only; capset_data
// (capset_max_size bytes) follows it.
struct RespCapset {
  CtrlHdr hdr;
} __attribute__((packed));
static_assert(sizeof(RespCapset) == 24);

// Spec: struct virtio_gpu_resource_assign_uuid (§5.7.6.8, RESOURCE_ASSIGN_UUID).
struct ResourceAssignUuid {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(ResourceAssignUuid) == 32);

// Spec: struct virtio_gpu_resp_resource_uuid (§5.7.6.8, RESOURCE_ASSIGN_UUID).
struct RespResourceUuid {
  CtrlHdr hdr;
  uint8_t uuid[16];
} __attribute__((packed));
static_assert(sizeof(RespResourceUuid) == 40);

// Spec: struct virtio_gpu_resource_create_blob (§5.7.6.8, RESOURCE_CREATE_BLOB). nr_entries
// MemEntry structs follow it in the request.
struct ResourceCreateBlob {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t blob_mem;
  uint32_t blob_flags;
  uint32_t nr_entries;
  uint64_t blob_id;
  uint64_t size;
} __attribute__((packed));
static_assert(sizeof(ResourceCreateBlob) == 56);

// Spec: struct virtio_gpu_set_scanout_blob (§5.7.6.8, SET_SCANOUT_BLOB).
struct SetScanoutBlob {
  CtrlHdr hdr;
  Rect r;
  uint32_t scanout_id;
  uint32_t resource_id;
  uint32_t width;
  uint32_t height;
  uint32_t format;
  uint32_t padding;
  uint32_t strides[4];
  uint32_t offsets[4];
} __attribute__((packed));
static_assert(sizeof(SetScanoutBlob) == 96);

// Spec: struct virtio_gpu_ctx_create (§5.7.6.9, CTX_CREATE). The context id is hdr.ctx_id.
struct CtxCreate {
  CtrlHdr hdr;
  uint32_t nlen;
  uint32_t context_init;
  char debug_name[64];
} __attribute__((packed));
static_assert(sizeof(CtxCreate) == 96);

// Spec: struct virtio_gpu_ctx_destroy (§5.7.6.9, CTX_DESTROY; Linux uapi): the header only.
struct CtxDestroy {
  CtrlHdr hdr;
} __attribute__((packed));
static_assert(sizeof(CtxDestroy) == 24);

// Spec: struct virtio_gpu_ctx_resource (§5.7.6.9, CTX_ATTACH_RESOURCE/CTX_DETACH_RESOURCE;
// layout from the Linux uapi header).
struct CtxResource {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(CtxResource) == 32);

// Spec: struct virtio_gpu_resource_create_3d (§5.7.6.9, RESOURCE_CREATE_3D; layout from the
// Linux uapi header, the spec lists the command only).
struct ResourceCreate3d {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t target;
  uint32_t format;
  uint32_t bind;
  uint32_t width;
  uint32_t height;
  uint32_t depth;
  uint32_t array_size;
  uint32_t last_level;
  uint32_t nr_samples;
  uint32_t flags;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(ResourceCreate3d) == 72);

// Spec: struct virtio_gpu_transfer_host_3d (§5.7.6.9, TRANSFER_TO_HOST_3D/TRANSFER_FROM_HOST_3D;
// layout from the Linux uapi header).
struct TransferHost3d {
  CtrlHdr hdr;
  Box box;
  uint64_t offset;
  uint32_t resource_id;
  uint32_t level;
  uint32_t stride;
  uint32_t layer_stride;
} __attribute__((packed));
static_assert(sizeof(TransferHost3d) == 72);

// Spec: struct virtio_gpu_cmd_submit (§5.7.6.9, SUBMIT_3D; layout from the Linux uapi header).
// `size` command bytes follow it.
struct CmdSubmit {
  CtrlHdr hdr;
  uint32_t size;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(CmdSubmit) == 32);

// Spec: struct virtio_gpu_resource_map_blob (§5.7.6.9, RESOURCE_MAP_BLOB).
struct ResourceMapBlob {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t padding;
  uint64_t offset;
} __attribute__((packed));
static_assert(sizeof(ResourceMapBlob) == 40);

// Spec: struct virtio_gpu_resp_map_info (§5.7.6.9, RESOURCE_MAP_BLOB).
struct RespMapInfo {
  CtrlHdr hdr;
  uint32_t map_info;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(RespMapInfo) == 32);

// Spec: struct virtio_gpu_resource_unmap_blob (§5.7.6.9, RESOURCE_UNMAP_BLOB).
struct ResourceUnmapBlob {
  CtrlHdr hdr;
  uint32_t resource_id;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(ResourceUnmapBlob) == 32);

// Spec: struct virtio_gpu_cursor_pos (§5.7.6.10).
struct CursorPos {
  uint32_t scanout_id;
  uint32_t x;
  uint32_t y;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(CursorPos) == 16);

// Spec: struct virtio_gpu_update_cursor (§5.7.6.10, UPDATE_CURSOR and MOVE_CURSOR; MOVE_CURSOR
// uses only pos).
struct UpdateCursor {
  CtrlHdr hdr;
  CursorPos pos;
  uint32_t resource_id;
  uint32_t hot_x;
  uint32_t hot_y;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(UpdateCursor) == 56);

}  // namespace vgpu::gpu
