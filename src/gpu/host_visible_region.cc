#include "gpu/host_visible_region.h"

#include <string>

#include "base/checked_math.h"
#include "gpu/protocol.h"

namespace vgpu::gpu {

void HostVisibleRegion::SetMapper(std::shared_ptr<virtio::SharedMemoryMapper> mapper) {
  mapper_ = std::move(mapper);
  mappings_.clear();  // A new connection's VMM has none of ours.
}

Result<void> HostVisibleRegion::Map(uint64_t offset, const renderer::ExportedBlob& blob) {
  if (!can_map()) {
    return MakeError(ErrorKind::kUnsupported, "no host-visible region is mapped by the VMM");
  }
  if (offset % kBlobPageSize != 0 || blob.size == 0 ||
      !RangeFits<uint64_t>(offset, blob.size, size_)) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "offset " + std::to_string(offset) + " + " + std::to_string(blob.size) +
                         " bytes outside the " + std::to_string(size_) + "-byte region");
  }
  // The first mapping at or after offset, and the one before it.
  auto next = mappings_.lower_bound(offset);
  const bool overlaps_next = next != mappings_.end() && next->first < offset + blob.size;
  const bool overlaps_previous =
      next != mappings_.begin() && std::prev(next)->first + std::prev(next)->second > offset;
  if (overlaps_next || overlaps_previous) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "offset " + std::to_string(offset) + " overlaps a mapped blob");
  }
  Result<void> mapped = mapper_->Map(virtio::ShmemMapping{.shmid = kShmIdHostVisible,
                                                          .fd = blob.fd.get(),
                                                          .fd_offset = blob.offset,
                                                          .shm_offset = offset,
                                                          .length = blob.size,
                                                          .writable = blob.writable});
  if (!mapped) return mapped;
  mappings_.emplace(offset, blob.size);
  return {};
}

Result<void> HostVisibleRegion::Unmap(uint64_t offset) {
  auto mapping = mappings_.find(offset);
  if (mapping == mappings_.end()) {
    return MakeError(ErrorKind::kNotFound, "nothing mapped at " + std::to_string(offset));
  }
  const uint64_t length = mapping->second;
  mappings_.erase(mapping);  // Gone for the device whatever the VMM says.
  if (!mapper_) return {};
  return mapper_->Unmap(kShmIdHostVisible, offset, length);
}

}  // namespace vgpu::gpu
