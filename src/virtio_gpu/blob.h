// Blob resources' vocabulary (virtio v1.2 §5.7.6.8, §5.7.6.9), shared by the device model and
// the renderers: what memory a blob is, how it may be used, how the guest must map it.
#pragma once

#include <cstdint>

namespace vgpu::virtio_gpu::blob {

// Blobs are made, mapped and shared in whole guest pages: a blob's size and its place in the
// host-visible region are multiples of this (the x86 and arm64 4 KiB page; a VMM's region is
// aligned to its own, larger, page size).
inline constexpr uint64_t kBlobPageSize = 4096;

// Spec: VIRTIO_GPU_BLOB_MEM_* in resource_create_blob.blob_mem (§5.7.6.8). 0 is invalid.
inline constexpr uint32_t kBlobMemGuest = 1;
inline constexpr uint32_t kBlobMemHost3d = 2;
inline constexpr uint32_t kBlobMemHost3dGuest = 3;

// Spec: VIRTIO_GPU_BLOB_FLAG_* in resource_create_blob.blob_flags (§5.7.6.8).
inline constexpr uint32_t kBlobFlagUseMappable = 1u << 0;
inline constexpr uint32_t kBlobFlagUseShareable = 1u << 1;
inline constexpr uint32_t kBlobFlagUseCrossDevice = 1u << 2;

// Spec: VIRTIO_GPU_MAP_CACHE_* in resp_map_info.map_info (§5.7.6.8).
inline constexpr uint32_t kMapCacheMask = 0x0f;
inline constexpr uint32_t kMapCacheNone = 0x00;
inline constexpr uint32_t kMapCacheCached = 0x01;
inline constexpr uint32_t kMapCacheUncached = 0x02;
inline constexpr uint32_t kMapCacheWc = 0x03;

}  // namespace vgpu::virtio_gpu::blob
