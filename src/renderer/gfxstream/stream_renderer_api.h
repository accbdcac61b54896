// gfxstream's host C API (`stream_renderer_*`), declared here from its public header so that
// nothing of gfxstream is needed at build time. The library is loaded at run time
// (gfxstream_library.h); these declarations only give the function types for dlsym and the
// structs their arguments point at. Never call the functions directly: there is nothing to link.
//
//   GfxstreamLibrary& library = ...;
//   stream_renderer_fence fence{.flags = STREAM_RENDERER_FLAG_FENCE, .fence_id = 7};
//   library.api().create_fence(&fence);
//
// Source: google/gfxstream host/include/gfxstream/virtio-gpu-gfxstream-renderer.h, stable part,
// as of release v0.1.2 (2023-10-03) and main (2025-06).
// Sizes are those of x86-64 and aarch64 (LP64), checked below. stream_renderer_resource_map is
// not declared: it hands out a pointer into the daemon's own memory, which a VMM in another
// process cannot map; export_blob hands out an fd, which it can.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

extern "C" {

struct stream_renderer_box {
  uint32_t x, y, z;
  uint32_t w, h, d;
};
static_assert(sizeof(stream_renderer_box) == 24);

// Spec: struct virtio_gpu_resource_create_3d (less its header), as gfxstream takes it.
struct stream_renderer_resource_create_args {
  uint32_t handle;
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
};
static_assert(sizeof(stream_renderer_resource_create_args) == 44);

// Fence flags: the values of VIRTIO_GPU_FLAG_FENCE / _INFO_RING_IDX (§5.7.6.7).
#define STREAM_RENDERER_FLAG_FENCE (1 << 0)
#define STREAM_RENDERER_FLAG_FENCE_RING_IDX (1 << 1)
#define STREAM_RENDERER_FLAG_FENCE_SHAREABLE (1 << 2)

struct stream_renderer_fence {
  uint32_t flags;
  uint64_t fence_id;
  uint32_t ctx_id;
  uint8_t ring_idx;
};
static_assert(sizeof(stream_renderer_fence) == 24);
static_assert(offsetof(stream_renderer_fence, fence_id) == 8);
static_assert(offsetof(stream_renderer_fence, ctx_id) == 16);
static_assert(offsetof(stream_renderer_fence, ring_idx) == 20);

// The memory handle types kept their values across releases (the signal types were renumbered
// after v0.1.2, §2.4).
#define STREAM_HANDLE_TYPE_MEM_OPAQUE_FD 0x1
#define STREAM_HANDLE_TYPE_MEM_DMABUF 0x2
#define STREAM_HANDLE_TYPE_MEM_SHM 0x4

struct stream_renderer_handle {
  int64_t os_handle;
  uint32_t handle_type;
};
static_assert(sizeof(stream_renderer_handle) == 16);

// Spec: struct virtio_gpu_resource_create_blob's blob fields (§5.7.6.8), as gfxstream takes them;
// blob_mem and the flags have the spec's values.
struct stream_renderer_create_blob {
  uint32_t blob_mem;
  uint32_t blob_flags;
  uint64_t blob_id;
  uint64_t size;
};
static_assert(sizeof(struct stream_renderer_create_blob) == 24);

// stream_renderer_resource_map_info's answers: VIRTIO_GPU_MAP_CACHE_* (§5.7.6.9).
#define STREAM_RENDERER_MAP_CACHE_MASK 0x0f

#define STREAM_RENDERER_DEBUG_ERROR 0x1
#define STREAM_RENDERER_DEBUG_WARN 0x2
#define STREAM_RENDERER_DEBUG_INFO 0x3
#define STREAM_RENDERER_DEBUG_DEBUG 0x4

struct stream_renderer_debug {
  uint32_t debug_type;
  const char* message;
};
static_assert(sizeof(stream_renderer_debug) == 16);

// Called from inside stream_renderer_create_fence or from gfxstream's own threads.
typedef void (*stream_renderer_fence_callback)(void* user_data,
                                               struct stream_renderer_fence* fence_data);
typedef void (*stream_renderer_debug_callback)(void* user_data,
                                               struct stream_renderer_debug* debug);

// Init parameter keys. USER_DATA, RENDERER_FLAGS and FENCE_CALLBACK are required (init fails with
// -EINVAL without them); unknown keys are logged by gfxstream and skipped.
#define STREAM_RENDERER_PARAM_NULL 0
#define STREAM_RENDERER_PARAM_USER_DATA 1
#define STREAM_RENDERER_PARAM_RENDERER_FLAGS 2
#define STREAM_RENDERER_PARAM_FENCE_CALLBACK 3
#define STREAM_RENDERER_PARAM_WIN0_WIDTH 4
#define STREAM_RENDERER_PARAM_WIN0_HEIGHT 5
#define STREAM_RENDERER_PARAM_DEBUG_CALLBACK 6

struct stream_renderer_param {
  uint64_t key;
  uint64_t value;  // An integer, or a pointer cast to one.
};
static_assert(sizeof(stream_renderer_param) == 16);

struct stream_renderer_command {
  uint32_t ctx_id;
  uint32_t cmd_size;  // Bytes at cmd.
  uint8_t* cmd;
  // "Unstable: do not use until release strictly greater than 0.1.2": always 0 / NULL here. A
  // v0.1.2 library reads only the fields above.
  uint32_t num_in_fences;
  struct stream_renderer_handle* fences;
};
static_assert(sizeof(stream_renderer_command) == 32);
static_assert(offsetof(stream_renderer_command, cmd) == 8);
static_assert(offsetof(stream_renderer_command, fences) == 24);

// Entry points (all `extern "C"` in gfxstream and exported with default visibility).
int stream_renderer_init(struct stream_renderer_param* stream_renderer_params, uint64_t num_params);
void stream_renderer_teardown(void);
int stream_renderer_resource_create(struct stream_renderer_resource_create_args* args,
                                    struct iovec* iov, uint32_t num_iovs);
void stream_renderer_resource_unref(uint32_t res_handle);
int stream_renderer_context_create(uint32_t ctx_id, uint32_t nlen, const char* name,
                                   uint32_t context_init);
void stream_renderer_context_destroy(uint32_t handle);
int stream_renderer_submit_cmd(struct stream_renderer_command* cmd);
// ctx_id, level, stride and layer_stride are ignored by gfxstream (§2.4): the iovecs are
// addressed as the whole resource, rows width * bytes-per-pixel apart, and only the box's bytes
// are copied. Without iovecs (NULL, 0) the attached backing is used.
int stream_renderer_transfer_read_iov(uint32_t handle, uint32_t ctx_id, uint32_t level,
                                      uint32_t stride, uint32_t layer_stride,
                                      struct stream_renderer_box* box, uint64_t offset,
                                      struct iovec* iov, int iovec_cnt);
int stream_renderer_transfer_write_iov(uint32_t handle, uint32_t ctx_id, int level, uint32_t stride,
                                       uint32_t layer_stride, struct stream_renderer_box* box,
                                       uint64_t offset, struct iovec* iovec,
                                       unsigned int iovec_cnt);
// Writes *max_size for the capsets it knows and nothing otherwise; never writes *max_ver.
void stream_renderer_get_cap_set(uint32_t set, uint32_t* max_ver, uint32_t* max_size);
void stream_renderer_fill_caps(uint32_t set, uint32_t version, void* caps);
int stream_renderer_resource_attach_iov(int res_handle, struct iovec* iov, int num_iovs);
void stream_renderer_resource_detach_iov(int res_handle, struct iovec** iov, int* num_iovs);
void stream_renderer_ctx_attach_resource(int ctx_id, int res_handle);
void stream_renderer_ctx_detach_resource(int ctx_id, int res_handle);
int stream_renderer_create_fence(const struct stream_renderer_fence* fence);
// Returns 0 whether or not gfxstream made the blob (its frontend logs and drops a failure):
// map_info afterwards tells (GfxstreamBackend::CreateBlob). iovecs and num_iovs are unused.
int stream_renderer_create_blob(uint32_t ctx_id, uint32_t res_handle,
                                const struct stream_renderer_create_blob* create_blob,
                                const struct iovec* iovecs, uint32_t num_iovs,
                                const struct stream_renderer_handle* handle);
// Hands the blob's memory over: gfxstream gives up its handle, so a second call fails.
int stream_renderer_export_blob(uint32_t res_handle, struct stream_renderer_handle* handle);
int stream_renderer_resource_map_info(uint32_t res_handle, uint32_t* map_info);

}  // extern "C"

// Outside the extern "C" block in gfxstream's header too. GLX (bit 2) is accepted by gfxstream
// and ignored; it is never set here.
enum StreamRendererFlags : uint32_t {
  STREAM_RENDERER_FLAGS_USE_EGL_BIT = 1u << 0,
  STREAM_RENDERER_FLAGS_THREAD_SYNC = 1u << 1,
  STREAM_RENDERER_FLAGS_USE_GLX_BIT = 1u << 2,
  STREAM_RENDERER_FLAGS_USE_SURFACELESS_BIT = 1u << 3,
  STREAM_RENDERER_FLAGS_USE_GLES_BIT = 1u << 4,
  STREAM_RENDERER_FLAGS_USE_VK_BIT = 1u << 5,
  // Blob memory made by gfxstream is exportable: ring blobs (blob_id 0) in a memfd, Vulkan
  // memory as an external handle. Without it gfxstream keeps them in its own heap.
  STREAM_RENDERER_FLAGS_USE_EXTERNAL_BLOB = 1u << 6,
  // Host-visible Vulkan memory that is exported is allocated in shared memory (a memfd) and
  // imported into Vulkan (VK_EXT_external_memory_host), so that any VMM can map it; without it
  // the export is the driver's opaque fd, which only that driver can map.
  STREAM_RENDERER_FLAGS_USE_SYSTEM_BLOB = 1u << 7,
};

namespace vgpu::renderer::gfxstream {

// Capset ids gfxstream answers (host/virtgpu_gfxstream_protocol.h; virtio-gpu §5.7.4 numbering).
inline constexpr uint32_t kCapsetGfxstreamVulkan = 3;
inline constexpr uint32_t kCapsetGfxstreamGles = 8;

// The entry points this backend uses, as loaded from the library. All are required.
struct StreamRendererApi {
  decltype(&::stream_renderer_init) init = nullptr;
  decltype(&::stream_renderer_teardown) teardown = nullptr;
  decltype(&::stream_renderer_resource_create) resource_create = nullptr;
  decltype(&::stream_renderer_resource_unref) resource_unref = nullptr;
  decltype(&::stream_renderer_context_create) context_create = nullptr;
  decltype(&::stream_renderer_context_destroy) context_destroy = nullptr;
  decltype(&::stream_renderer_submit_cmd) submit_cmd = nullptr;
  decltype(&::stream_renderer_transfer_read_iov) transfer_read_iov = nullptr;
  decltype(&::stream_renderer_transfer_write_iov) transfer_write_iov = nullptr;
  decltype(&::stream_renderer_get_cap_set) get_cap_set = nullptr;
  decltype(&::stream_renderer_fill_caps) fill_caps = nullptr;
  decltype(&::stream_renderer_resource_attach_iov) resource_attach_iov = nullptr;
  decltype(&::stream_renderer_resource_detach_iov) resource_detach_iov = nullptr;
  decltype(&::stream_renderer_ctx_attach_resource) ctx_attach_resource = nullptr;
  decltype(&::stream_renderer_ctx_detach_resource) ctx_detach_resource = nullptr;
  decltype(&::stream_renderer_create_fence) create_fence = nullptr;
  decltype(&::stream_renderer_create_blob) create_blob = nullptr;
  decltype(&::stream_renderer_export_blob) export_blob = nullptr;
  decltype(&::stream_renderer_resource_map_info) resource_map_info = nullptr;
};

}  // namespace vgpu::renderer::gfxstream
