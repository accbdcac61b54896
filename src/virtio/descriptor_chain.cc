#include "virtio/descriptor_chain.h"

#include <array>
#include <cstring>

#include "base/checked_math.h"

namespace vgpu::virtio {
namespace {

constexpr uint32_t kInlineIndirectEntries = 16;

VirtqDescriptor CopyDescriptor(std::span<const uint8_t> table, uint32_t index) {
  VirtqDescriptor descriptor{};
  // Bounds: the caller checked index < table.size() / 16. One memcpy so that each field is read
  // from guest memory exactly once.
  std::memcpy(&descriptor, table.data() + static_cast<size_t>(index) * sizeof(descriptor),
              sizeof(descriptor));
  return descriptor;
}

}  // namespace

Result<DescriptorChain> WalkDescriptorChain(const std::shared_ptr<const GuestMemory>& memory,
                                            std::span<const uint8_t> descriptor_table,
                                            uint16_t head, const WalkOptions& options) {
  DescriptorChain chain;
  chain.head_index = head;
  chain.memory = &memory;

  const uint32_t queue_size = options.queue_size;
  if (descriptor_table.size() < static_cast<size_t>(queue_size) * sizeof(VirtqDescriptor)) {
    return MakeError(ErrorKind::kInternal, "descriptor table smaller than the queue");
  }
  // Each descriptor adds at most one span per memory region it touches.
  const size_t max_spans = static_cast<size_t>(queue_size) * memory->regions().size();

  std::span<const uint8_t> table = descriptor_table.first(queue_size * sizeof(VirtqDescriptor));
  uint32_t table_entries = queue_size;
  // Owned copy of the indirect table, once we enter one: on the stack for the short tables
  // drivers use (Linux: a header, a payload, a response), on the heap beyond that.
  std::array<uint8_t, kInlineIndirectEntries * sizeof(VirtqDescriptor)> inline_indirect;
  std::vector<uint8_t> heap_indirect;
  bool in_indirect = false;
  bool seen_writable = false;
  uint32_t visited = 0;  // Descriptors visited in the current table; bounds loops.
  uint32_t index = head;

  for (;;) {
    if (index >= table_entries) {
      return MakeError(ErrorKind::kOutOfRange, "descriptor index outside the table");
    }
    if (++visited > table_entries) {
      return MakeError(ErrorKind::kInvalidArgument, "descriptor chain loops or is too long");
    }
    const VirtqDescriptor descriptor = CopyDescriptor(table, index);

    if (descriptor.flags & kDescriptorFlagIndirect) {
      if (!options.indirect_allowed) {
        return MakeError(ErrorKind::kInvalidArgument, "indirect descriptor not negotiated");
      }
      // §2.7.5.3.1: no indirect table inside an indirect table, and INDIRECT excludes NEXT.
      if (in_indirect) return MakeError(ErrorKind::kInvalidArgument, "nested indirect table");
      if (descriptor.flags & kDescriptorFlagNext) {
        return MakeError(ErrorKind::kInvalidArgument, "indirect descriptor with NEXT");
      }
      if (descriptor.len == 0 || descriptor.len % sizeof(VirtqDescriptor) != 0) {
        return MakeError(ErrorKind::kInvalidArgument, "indirect table length not a multiple of 16");
      }
      const uint32_t entries = descriptor.len / sizeof(VirtqDescriptor);
      if (entries > queue_size) {
        return MakeError(ErrorKind::kInvalidArgument, "indirect table longer than the queue");
      }
      std::span<uint8_t> copy;
      if (entries <= kInlineIndirectEntries) {
        copy = std::span<uint8_t>(inline_indirect).first(descriptor.len);
      } else {
        heap_indirect.resize(descriptor.len);
        copy = heap_indirect;
      }
      Result<void> copied = memory->Read(GuestAddress{descriptor.addr}, copy);
      if (!copied) return MakeError(ErrorKind::kOutOfRange, "indirect table not in guest memory");
      table = copy;
      table_entries = entries;
      in_indirect = true;
      visited = 0;
      index = 0;
      continue;
    }

    if (descriptor.len == 0)
      return MakeError(ErrorKind::kInvalidArgument, "zero-length descriptor");
    const bool writable = descriptor.flags & kDescriptorFlagWrite;
    // §2.7.4.2: device-writable descriptors come after all device-readable ones.
    if (!writable && seen_writable) {
      return MakeError(ErrorKind::kInvalidArgument, "readable descriptor after a writable one");
    }
    seen_writable = seen_writable || writable;
    Result<void> translated =
        memory->TranslateRange(GuestAddress{descriptor.addr}, descriptor.len,
                               writable ? chain.writable : chain.readable, max_spans);
    if (!translated) {
      return MakeError(ErrorKind::kOutOfRange, "descriptor buffer outside guest memory");
    }
    (writable ? chain.writable_length : chain.readable_length) += descriptor.len;

    if (!(descriptor.flags & kDescriptorFlagNext)) break;
    index = descriptor.next;
  }
  return chain;
}

}  // namespace vgpu::virtio
