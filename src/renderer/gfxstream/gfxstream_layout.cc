#include "renderer/gfxstream/gfxstream_layout.h"

#include <algorithm>

#include "base/checked_math.h"

namespace vgpu::renderer::gfxstream {
namespace {

// The virgl format and bind numbers gfxstream tells resources apart by (the guest's
// RESOURCE_CREATE_3D fields carry them).
constexpr uint32_t kTargetBuffer = 0;  // PIPE_BUFFER
constexpr uint32_t kBindRenderTarget = 1u << 1;
constexpr uint32_t kBindSamplerView = 1u << 3;
constexpr uint32_t kBindCursor = 1u << 16;
constexpr uint32_t kBindCustom = 1u << 17;
constexpr uint32_t kBindScanout = 1u << 18;
constexpr uint32_t kBindLinear = 1u << 22;

constexpr uint32_t kFormatB5G6R5 = 7;
constexpr uint32_t kFormatZ16 = 16;
constexpr uint32_t kFormatR16 = 48;
constexpr uint32_t kFormatR8 = 64;
constexpr uint32_t kFormatR8G8 = 65;
constexpr uint32_t kFormatR16G16B16A16Float = 94;
constexpr uint32_t kFormatZ32FloatS8X24 = 126;
constexpr uint32_t kFormatYv12 = 163;
constexpr uint32_t kFormatNv12 = 166;
constexpr uint32_t kFormatP010 = 314;

constexpr uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// Bytes per texel that gfxstream moves for a single-plane format. Formats it does not know are
// read and written as RGBA8 (4). R8G8B8 is 3 bytes in gfxstream's GL path but a 4-byte RGBA
// image in its Vulkan path, which reads back 4 per texel: 4 covers both.
uint64_t BytesPerTexel(uint32_t format) {
  switch (format) {
    case kFormatR16G16B16A16Float:
    case kFormatZ32FloatS8X24:
      return 8;
    case kFormatB5G6R5:
    case kFormatR8G8:
    case kFormatR16:
    case kFormatZ16:
      return 2;
    case kFormatR8:
      return 1;
    default:
      return 4;
  }
}

// The planar YUV formats: a full-size luma plane and chroma at half resolution in both
// directions. Rows as gfxstream lays them out (YV12's luma rows 32-texel aligned; NV12 and P010
// 2-texel aligned, as its Vulkan path copies them); odd heights rounded up for the chroma rows.
std::optional<uint64_t> YuvBytes(uint32_t format, uint64_t width, uint64_t height) {
  const uint64_t chroma_rows = (height + 1) / 2;
  switch (format) {
    case kFormatYv12: {
      const uint64_t luma_stride = AlignUp(width, 32);
      return luma_stride * height + (luma_stride / 2) * chroma_rows * 2;
    }
    case kFormatNv12:
    case kFormatP010: {
      const uint64_t bytes_per_sample = format == kFormatP010 ? 2 : 1;
      const uint64_t stride = AlignUp(width, 2) * bytes_per_sample;
      return stride * height + stride * chroma_rows;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

GfxstreamResourceKind GfxstreamKindOf(const ResourceParams& params) {
  if (params.target == kTargetBuffer && params.bind == kBindCustom) {
    return GfxstreamResourceKind::kPipe;
  }
  const uint32_t texture_binds = kBindSamplerView | kBindRenderTarget | kBindScanout | kBindCursor;
  if (params.format != kFormatR8 || (params.bind & texture_binds) != 0 ||
      (params.bind & kBindLinear) == 0) {
    return GfxstreamResourceKind::kColorBuffer;
  }
  return GfxstreamResourceKind::kBuffer;
}

std::optional<uint64_t> GfxstreamCopyBytes(const ResourceParams& params) {
  // gfxstream ignores depth, layers and levels: one width x height image. A height of 0 still
  // moves a row (pipes and buffers address box.x + box.w bytes of it).
  const uint64_t width = params.width;
  const uint64_t height = std::max<uint32_t>(params.height, 1);
  if (std::optional<uint64_t> yuv = YuvBytes(params.format, width, height);
      yuv && GfxstreamKindOf(params) == GfxstreamResourceKind::kColorBuffer) {
    return yuv;
  }
  // Pipes and buffers are bytes, addressed through the format's texel size like every transfer;
  // colour buffers are texels.
  std::optional<uint64_t> texels = CheckedMul<uint64_t>(width, height);
  if (!texels) return std::nullopt;
  return CheckedMul<uint64_t>(*texels, BytesPerTexel(params.format));
}

}  // namespace vgpu::renderer::gfxstream
