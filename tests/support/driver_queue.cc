#include "support/driver_queue.h"

#include <poll.h>

#include <atomic>

namespace vgpu::test {
namespace {

// Spec: virtio 1.2 §2.7.6 (struct virtq_avail) and §2.7.8 (struct virtq_used), in bytes.
uint64_t AvailableRingBytes(uint16_t size) { return 6 + 2ull * size; }
uint64_t UsedRingBytes(uint16_t size) { return 6 + 8ull * size; }
constexpr uint16_t kUsedFlagNoNotify = 1;  // VIRTQ_USED_F_NO_NOTIFY (§2.7.10).

template <class T>
T LoadAcquire(const T* location) {
  return __atomic_load_n(location, __ATOMIC_ACQUIRE);
}
template <class T>
void StoreRelease(T* location, T value) {
  __atomic_store_n(location, value, __ATOMIC_RELEASE);
}

}  // namespace

Result<std::unique_ptr<DriverQueue>> DriverQueue::Create(GuestRam& ram,
                                                         DriverQueueOptions options) {
  if (options.size == 0) return MakeError(ErrorKind::kInvalidArgument, "queue size 0");
  const uint16_t size = options.size;
  DriverQueueLayout layout;
  // §2.7: "Descriptor Table 16, Available Ring 2, Used Ring 4" byte alignment.
  Result<uint64_t> descriptors = ram.Allocate(16ull * size, 16);
  if (!descriptors) return ErrorOf(descriptors);
  Result<uint64_t> available = ram.Allocate(AvailableRingBytes(size), 2);
  if (!available) return ErrorOf(available);
  Result<uint64_t> used = ram.Allocate(UsedRingBytes(size), 4);
  if (!used) return ErrorOf(used);
  layout.descriptor_guest_address = *descriptors;
  layout.available_guest_address = *available;
  layout.used_guest_address = *used;
  layout.descriptor_user_address = *ram.UserAddress(*descriptors, 16ull * size);
  layout.available_user_address = *ram.UserAddress(*available, AvailableRingBytes(size));
  layout.used_user_address = *ram.UserAddress(*used, UsedRingBytes(size));
  const std::pair<uint64_t, uint64_t> rings[] = {{*descriptors, 16ull * size},
                                                 {*available, AvailableRingBytes(size)},
                                                 {*used, UsedRingBytes(size)}};
  for (const auto& [address, length] : rings) {
    if (Result<void> zeroed = ram.Fill(address, length, 0); !zeroed) {
      return ErrorOf(zeroed);
    }
  }
  Result<EventFd> kick = EventFd::Create();
  if (!kick) return ErrorOf(kick);
  Result<EventFd> call = EventFd::Create();
  if (!call) return ErrorOf(call);
  return std::unique_ptr<DriverQueue>(
      new DriverQueue(ram, size, options.event_index, layout, std::move(*kick), std::move(*call)));
}

DriverQueue::DriverQueue(GuestRam& ram, uint16_t size, bool event_index, DriverQueueLayout layout,
                         EventFd kick, EventFd call)
    : ram_(ram),
      size_(size),
      event_index_(event_index),
      layout_(layout),
      kick_(std::move(kick)),
      call_(std::move(call)),
      descriptor_free_(size, true),
      chain_descriptors_(size),
      indirect_tables_(size, {0, 0}) {}

// Bounds: every ring pointer below was range-checked against the RAM when it was allocated.
VirtqDescriptor* DriverQueue::Descriptors() const {
  return reinterpret_cast<VirtqDescriptor*>(
      *ram_.HostPointer(layout_.descriptor_guest_address, 16ull * size_));
}
uint16_t* DriverQueue::AvailableIndexPointer() const {
  return reinterpret_cast<uint16_t*>(
             *ram_.HostPointer(layout_.available_guest_address, AvailableRingBytes(size_))) +
         1;
}
uint16_t* DriverQueue::AvailableRing() const { return AvailableIndexPointer() + 1; }
uint16_t* DriverQueue::UsedEventPointer() const { return AvailableRing() + size_; }
uint16_t* DriverQueue::UsedIndexPointer() const {
  return reinterpret_cast<uint16_t*>(
             *ram_.HostPointer(layout_.used_guest_address, UsedRingBytes(size_))) +
         1;
}
uint16_t* DriverQueue::AvailableEventPointer() const {
  // After flags, idx and size 8-byte elements.
  return reinterpret_cast<uint16_t*>(reinterpret_cast<uint8_t*>(UsedIndexPointer() + 1) +
                                     8ull * size_);
}

Result<uint64_t> DriverQueue::IndirectTableFor(uint16_t head, size_t entries) {
  auto& [address, capacity] = indirect_tables_[head];
  if (capacity < entries) {
    Result<uint64_t> table = ram_.Allocate(16ull * entries, 16);
    if (!table) return ErrorOf(table);
    address = *table;
    capacity = entries;
  }
  return address;
}

Result<uint16_t> DriverQueue::AddChain(const std::vector<Buffer>& readable,
                                       const std::vector<Buffer>& writable, ChainLayout layout) {
  std::vector<VirtqDescriptor> chain;
  for (const Buffer& buffer : readable)
    chain.push_back({buffer.guest_address, buffer.length, 0, 0});
  for (const Buffer& buffer : writable) {
    chain.push_back({buffer.guest_address, buffer.length, kDescriptorFlagWrite, 0});
  }
  if (chain.empty()) return MakeError(ErrorKind::kInvalidArgument, "empty chain");
  const size_t needed = layout == ChainLayout::kDirect ? chain.size() : 1;
  std::vector<uint16_t> slots;
  for (uint16_t index = 0; index < size_ && slots.size() < needed; ++index) {
    if (descriptor_free_[index]) slots.push_back(index);
  }
  if (slots.size() < needed) {
    return MakeError(ErrorKind::kResourceExhausted, "no free descriptors");
  }
  const uint16_t head = slots.front();
  VirtqDescriptor* table = Descriptors();
  if (layout == ChainLayout::kDirect) {
    for (size_t position = 0; position < chain.size(); ++position) {
      VirtqDescriptor descriptor = chain[position];
      if (position + 1 < chain.size()) {
        descriptor.flags |= kDescriptorFlagNext;
        descriptor.next = slots[position + 1];
      }
      table[slots[position]] = descriptor;
    }
  } else {
    // §2.7.5.3.1: inside an indirect table `next` indexes the table itself.
    for (size_t position = 0; position + 1 < chain.size(); ++position) {
      chain[position].flags |= kDescriptorFlagNext;
      chain[position].next = static_cast<uint16_t>(position + 1);
    }
    Result<uint64_t> address = IndirectTableFor(head, chain.size());
    if (!address) return ErrorOf(address);
    Result<void> written = ram_.Write(
        *address, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(chain.data()),
                                           chain.size() * sizeof(VirtqDescriptor)));
    if (!written) return ErrorOf(written);
    table[head] = {*address, static_cast<uint32_t>(chain.size() * sizeof(VirtqDescriptor)),
                   kDescriptorFlagIndirect, 0};
  }
  for (uint16_t slot : slots) descriptor_free_[slot] = false;
  chain_descriptors_[head] = slots;
  PublishHead(head);
  return head;
}

void DriverQueue::PublishHead(uint16_t head) {
  // §2.7.13: write the ring entry, then (release) the index that makes it visible.
  StoreRelease(&AvailableRing()[available_index_ % size_], head);
  ++available_index_;
  StoreRelease(AvailableIndexPointer(), available_index_);
}

void DriverQueue::SetAvailIndex(uint16_t value) {
  available_index_ = value;
  StoreRelease(AvailableIndexPointer(), value);
}

void DriverQueue::KickIfNeeded(uint16_t old_available_index) const {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (event_index_) {
    // §2.7.10: vring_need_event(avail_event, new, old).
    const uint16_t event = LoadAcquire(AvailableEventPointer());
    const uint16_t new_index = available_index_;
    if (static_cast<uint16_t>(new_index - event - 1) <
        static_cast<uint16_t>(new_index - old_available_index)) {
      Kick();
    }
    return;
  }
  const uint16_t* used_flags = UsedIndexPointer() - 1;
  if ((LoadAcquire(used_flags) & kUsedFlagNoNotify) == 0) Kick();
}

uint16_t DriverQueue::DeviceUsedIndex() const { return LoadAcquire(UsedIndexPointer()); }

void DriverQueue::ReleaseChain(uint16_t head) {
  if (head >= size_) return;
  for (uint16_t slot : chain_descriptors_[head]) descriptor_free_[slot] = true;
  chain_descriptors_[head].clear();
}

std::optional<UsedElement> DriverQueue::PollUsed() {
  if (DeviceUsedIndex() == last_used_index_) return std::nullopt;
  // The acquire load of used->idx orders the element read after it (§2.7.14).
  const uint64_t element_address =
      layout_.used_guest_address + 4 + 8ull * (last_used_index_ % size_);
  Result<UsedElement> element = ram_.ReadObject<UsedElement>(element_address);
  ++last_used_index_;
  if (event_index_) {
    StoreRelease(UsedEventPointer(), last_used_index_);
  }
  if (element) ReleaseChain(static_cast<uint16_t>(element->id));
  return element ? std::optional<UsedElement>(*element) : std::nullopt;
}

std::optional<UsedElement> DriverQueue::WaitForUsed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (event_index_) {
    // Ask for a call as soon as the device uses anything after what we have seen (§2.7.10).
    StoreRelease(UsedEventPointer(), last_used_index_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  while (true) {
    if (std::optional<UsedElement> element = PollUsed()) return element;
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) return std::nullopt;
    pollfd descriptor{call_.fd(), POLLIN, 0};
    // Short slices as well, so that a device that updates the ring without a call (allowed when
    // notifications are suppressed) is still seen.
    const int slice = static_cast<int>(std::min<int64_t>(remaining.count(), 100));
    if (poll(&descriptor, 1, slice) > 0) call_.Consume();
  }
}

std::optional<UsedElement> DriverQueue::WaitForUsedHead(uint16_t head,
                                                        std::chrono::milliseconds timeout,
                                                        std::vector<UsedElement>* others) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) return std::nullopt;
    std::optional<UsedElement> element = WaitForUsed(remaining);
    if (!element) return std::nullopt;
    if (element->id == head) return element;
    if (others != nullptr) others->push_back(*element);
  }
}

Result<void> DriverQueue::WriteDescriptor(uint16_t index, uint64_t address, uint32_t length,
                                          uint16_t flags, uint16_t next) {
  if (index >= size_) return MakeError(ErrorKind::kOutOfRange, "descriptor index >= queue size");
  Descriptors()[index] = {address, length, flags, next};
  return {};
}

Result<uint64_t> DriverQueue::WriteIndirectTable(const std::vector<VirtqDescriptor>& descriptors) {
  if (descriptors.empty()) return MakeError(ErrorKind::kInvalidArgument, "empty indirect table");
  const uint64_t bytes = descriptors.size() * sizeof(VirtqDescriptor);
  Result<uint64_t> address = ram_.Allocate(bytes, 16);
  if (!address) return ErrorOf(address);
  Result<void> written = ram_.Write(
      *address,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(descriptors.data()), bytes));
  if (!written) return ErrorOf(written);
  return *address;
}

}  // namespace vgpu::test
