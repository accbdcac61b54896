#include "gpu/backing_store.h"

#include <vector>

#include "gpu/command_decoder.h"

namespace vgpu::gpu {

Result<BackingStore> BackingStore::Create(std::shared_ptr<const virtio::GuestMemory> memory,
                                          std::span<const MemEntry> entries) {
  if (entries.empty() || entries.size() > kMaxBackingEntries) {
    return MakeError(ErrorKind::kInvalidArgument, "backing entry count out of range");
  }
  std::vector<std::span<uint8_t>> spans;
  // Each entry adds at most one span per memory region it crosses.
  const size_t max_spans = entries.size() * memory->regions().size();
  for (const MemEntry& entry : entries) {
    if (entry.length == 0) {
      return MakeError(ErrorKind::kInvalidArgument, "backing entry of length zero");
    }
    if (Result<void> translated = memory->TranslateRange(virtio::GuestAddress{entry.addr},
                                                         entry.length, spans, max_spans);
        !translated) {
      return MakeError(ErrorKind::kOutOfRange, "backing entry outside guest memory");
    }
  }
  BackingStore store;
  store.memory_ = std::move(memory);
  store.backing_ = renderer::GuestBacking(std::move(spans));
  return store;
}

}  // namespace vgpu::gpu
