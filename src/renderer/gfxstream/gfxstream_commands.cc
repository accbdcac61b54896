#include "renderer/gfxstream/gfxstream_commands.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace vgpu::renderer::gfxstream {
namespace {

// sizeof(struct gfxstreamResourceCreate3d), the larger of the two structs read here.
constexpr size_t kLargestStructBytes = 56;

}  // namespace

GfxstreamCommand DecodeGfxstreamCommand(std::span<const uint8_t> stream) {
  if (stream.size() < sizeof(uint32_t)) return std::monostate{};
  // The struct as gfxstream copies it: the stream's bytes, zeros after them.
  std::array<uint8_t, kLargestStructBytes> bytes{};
  std::copy_n(stream.begin(), std::min(stream.size(), bytes.size()), bytes.begin());
  const auto word = [&](size_t index) {
    uint32_t value;
    std::memcpy(&value, bytes.data() + index * 4, sizeof(value));
    return value;
  };
  switch (word(0)) {
    case kGfxstreamOpContextCreate:
      return GfxstreamContextCreate{.ring = ResourceId{word(1)}};
    case kGfxstreamOpResourceCreate3d: {
      // hdr, target, format, bind, width, height, depth, arraySize, lastLevel, nrSamples, flags,
      // pad, then the u64 blobId at byte 48.
      uint64_t blob_id;
      std::memcpy(&blob_id, bytes.data() + 48, sizeof(blob_id));
      return GfxstreamResourceCreate3d{.shape = ResourceParams{.target = word(1),
                                                               .format = word(2),
                                                               .bind = word(3),
                                                               .width = word(4),
                                                               .height = word(5),
                                                               .depth = word(6),
                                                               .array_size = word(7),
                                                               .last_level = word(8),
                                                               .nr_samples = word(9),
                                                               .flags = word(10)},
                                       .blob_id = static_cast<uint32_t>(blob_id)};
    }
    default:
      return std::monostate{};
  }
}

}  // namespace vgpu::renderer::gfxstream
