#include "support/venus_client.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

namespace vgpu::test {
namespace {

// VkCommandTypeEXT values (VK_EXT_command_serialization, VK_MESA_venus_protocol).
enum Command : uint32_t {
  kCreateInstance = 0,
  kDestroyInstance = 1,
  kEnumeratePhysicalDevices = 2,
  kGetPhysicalDeviceProperties = 6,
  kGetPhysicalDeviceQueueFamilyProperties = 7,
  kGetPhysicalDeviceMemoryProperties = 8,
  kCreateDevice = 11,
  kDestroyDevice = 12,
  kGetDeviceQueue = 17,
  kQueueSubmit = 18,
  kAllocateMemory = 21,
  kFreeMemory = 22,
  kBindBufferMemory = 28,
  kGetBufferMemoryRequirements = 30,
  kCreateFence = 35,
  kDestroyFence = 36,
  kResetFences = 37,
  kGetFenceStatus = 38,
  kGetDeviceQueue2 = 155,
  kCreateBuffer = 50,
  kDestroyBuffer = 51,
  kCreateCommandPool = 85,
  kDestroyCommandPool = 86,
  kAllocateCommandBuffers = 88,
  kBeginCommandBuffer = 90,
  kEndCommandBuffer = 91,
  kCmdCopyBuffer = 112,
  kCmdFillBuffer = 118,
  kSetReplyCommandStreamMesa = 178,
  kSeekReplyCommandStreamMesa = 179,
};
constexpr uint32_t kGenerateReply = 1;  // VK_COMMAND_GENERATE_REPLY_BIT_EXT

// VkStructureType values.
enum StructureType : int32_t {
  kApplicationInfo = 0,
  kInstanceCreateInfo = 1,
  kDeviceQueueCreateInfo = 2,
  kDeviceCreateInfo = 3,
  kSubmitInfo = 4,
  kMemoryAllocateInfo = 5,
  kFenceCreateInfo = 8,
  kBufferCreateInfo = 12,
  kCommandPoolCreateInfo = 39,
  kCommandBufferAllocateInfo = 40,
  kCommandBufferBeginInfo = 42,
  kDeviceQueueInfo2 = 1000145003,
  kDeviceQueueTimelineInfoMesa = 1000384005,
};

constexpr uint32_t kApiVersion11 = (1u << 22) | (1u << 12);  // VK_MAKE_API_VERSION(0, 1, 1, 0)
constexpr uint32_t kQueueGraphics = 1, kQueueCompute = 2, kQueueTransfer = 4;
constexpr uint32_t kMemoryHostVisible = 2, kMemoryHostCoherent = 4;
constexpr uint32_t kBufferTransferSource = 1, kBufferTransferDestination = 2;
constexpr int32_t kNotReady = 1;
constexpr uint64_t kReplyBlobSize = 64 << 10;
constexpr uint32_t kBlobFlagMappable = 1;

// One command in Venus's encoding: everything 4-byte granular, little-endian.
class Encoder {
 public:
  Encoder(uint32_t type, bool reply) { U32(type).U32(reply ? kGenerateReply : 0); }
  Encoder& U32(uint32_t value) { return Raw(&value, 4); }
  Encoder& I32(int32_t value) { return Raw(&value, 4); }
  Encoder& F32(float value) { return Raw(&value, 4); }
  Encoder& U64(uint64_t value) { return Raw(&value, 8); }
  Encoder& Present() { return U64(1); }  // A pointer's presence marker.
  Encoder& Null() { return U64(0); }     // A null pointer, pNext or array.
  // A NUL-terminated string: its size with the NUL, then its bytes padded to 4.
  Encoder& String(const std::string& text) {
    U64(text.size() + 1);
    const size_t padded = (text.size() + 1 + 3) & ~size_t{3};
    const size_t start = bytes.size();
    bytes.resize(start + padded, 0);
    std::memcpy(bytes.data() + start, text.c_str(), text.size() + 1);
    return *this;
  }
  std::vector<uint8_t> bytes;

 private:
  Encoder& Raw(const void* value, size_t size) {
    const auto* data = static_cast<const uint8_t*>(value);
    bytes.insert(bytes.end(), data, data + size);
    return *this;
  }
};

uint32_t ReadU32(std::span<const uint8_t> reply, size_t offset) {
  uint32_t value;
  std::memcpy(&value, reply.data() + offset, sizeof(value));
  return value;
}
int32_t ReadI32(std::span<const uint8_t> reply, size_t offset) {
  return static_cast<int32_t>(ReadU32(reply, offset));
}
uint64_t ReadU64(std::span<const uint8_t> reply, size_t offset) {
  uint64_t value;
  std::memcpy(&value, reply.data() + offset, sizeof(value));
  return value;
}

tl::unexpected<Error> VkFailure(const char* call, int32_t result) {
  return MakeError(ErrorKind::kInternal,
                   std::string(call) + " returned VkResult " + std::to_string(result));
}

}  // namespace

VenusClient::VenusClient(VenusTransport& transport, uint32_t reply_resource_id)
    : transport_(transport), reply_resource_id_(reply_resource_id) {}

Result<std::span<const uint8_t>> VenusClient::Call(const std::vector<uint8_t>& command,
                                                   size_t reply_size,
                                                   std::optional<uint32_t> reply_type) {
  if (reply_size > reply_.size()) {
    return MakeError(ErrorKind::kInvalidArgument, "reply larger than the reply blob");
  }
  // Every call's reply starts at the stream's start; a sentinel shows a reply that never came.
  std::vector<uint8_t> batch = Encoder(kSeekReplyCommandStreamMesa, false).U64(0).bytes;
  batch.insert(batch.end(), command.begin(), command.end());
  std::memset(reply_.data(), 0xff, reply_size);
  if (Result<void> submitted = transport_.Submit(batch); !submitted) return ErrorOf(submitted);
  uint32_t type;
  std::memcpy(&type, command.data(), sizeof(type));
  if (reply_type) type = *reply_type;
  std::span<const uint8_t> reply(reply_.data(), reply_size);
  if (ReadU32(reply, 0) != type) {
    return MakeError(ErrorKind::kInternal, "no reply to Venus command " + std::to_string(type) +
                                               " (the renderer refused the stream)");
  }
  return reply;
}

Result<std::span<const uint8_t>> VenusClient::CallChecked(const std::vector<uint8_t>& command,
                                                          size_t reply_size, const char* name,
                                                          std::optional<uint32_t> reply_type) {
  Result<std::span<const uint8_t>> reply = Call(command, reply_size, reply_type);
  if (!reply) return reply;
  // Every command called this way returns a VkResult, right after the reply's type.
  if (int32_t result = ReadI32(*reply, 4); result != 0) return VkFailure(name, result);
  return reply;
}

Result<void> VenusClient::CreateInstance() {
  Result<std::span<uint8_t>> reply = transport_.CreateAndMapBlob(reply_resource_id_, /*blob_id=*/0,
                                                                 kBlobFlagMappable, kReplyBlobSize);
  if (!reply) return ErrorOf(reply);
  reply_ = *reply;
  const Encoder set = Encoder(kSetReplyCommandStreamMesa, false)
                          .Present()
                          .U32(reply_resource_id_)
                          .U64(0)
                          .U64(kReplyBlobSize);
  if (Result<void> sent = transport_.Submit(set.bytes); !sent) return ErrorOf(sent);

  instance_ = NewId();
  Encoder create(kCreateInstance, true);
  create.Present().I32(kInstanceCreateInfo).Null().U32(0);
  create.Present().I32(kApplicationInfo).Null().String("vhost-device-gpu venus test").U32(1);
  create.Null().U32(0).U32(kApiVersion11);  // No engine name.
  create.U32(0).Null();                     // No layers.
  create.U32(0).Null();                     // No extensions (the renderer adds its own).
  create.Null();                            // pAllocator.
  create.Present().U64(instance_);
  Result<std::span<const uint8_t>> created = CallChecked(create.bytes, 24, "vkCreateInstance");
  if (!created) return ErrorOf(created);
  return {};
}

Result<VenusPhysicalDevice> VenusClient::FirstPhysicalDevice() {
  Encoder count_query(kEnumeratePhysicalDevices, true);
  count_query.U64(instance_).Present().U32(0).Null();
  Result<std::span<const uint8_t>> counted =
      CallChecked(count_query.bytes, 28, "vkEnumeratePhysicalDevices");
  if (!counted) return ErrorOf(counted);
  const uint32_t count = ReadU32(*counted, 16);
  if (count == 0) return MakeError(ErrorKind::kNotFound, "the renderer has no Vulkan device");
  std::vector<uint64_t> ids;
  Encoder enumerate(kEnumeratePhysicalDevices, true);
  enumerate.U64(instance_).Present().U32(count).U64(count);
  for (uint32_t i = 0; i < count; ++i) {
    ids.push_back(NewId());
    enumerate.U64(ids.back());
  }
  Result<std::span<const uint8_t>> listed =
      CallChecked(enumerate.bytes, 28 + 8 * size_t{count}, "vkEnumeratePhysicalDevices");
  if (!listed) return ErrorOf(listed);
  physical_device_ = ids[0];

  Encoder properties(kGetPhysicalDeviceProperties, true);
  properties.U64(physical_device_).Present();
  Result<std::span<const uint8_t>> got = Call(properties.bytes, 880);
  if (!got) return ErrorOf(got);
  VenusPhysicalDevice device{.id = physical_device_,
                             .device_type = ReadU32(*got, 28),
                             .api_version = ReadU32(*got, 12),
                             .vendor_id = ReadU32(*got, 20)};
  const char* name = reinterpret_cast<const char*>(got->data() + 40);
  device.name.assign(name, strnlen(name, 256));
  return device;
}

Result<void> VenusClient::CreateDevice(const VenusPhysicalDevice& physical_device,
                                       uint32_t queue_ring) {
  // A queue family that can transfer (graphics and compute imply it).
  Encoder families(kGetPhysicalDeviceQueueFamilyProperties, true);
  families.U64(physical_device.id).Present().U32(0).Null();
  Result<std::span<const uint8_t>> counted = Call(families.bytes, 24);
  if (!counted) return ErrorOf(counted);
  const uint32_t family_count = ReadU32(*counted, 12);
  Encoder listed(kGetPhysicalDeviceQueueFamilyProperties, true);
  listed.U64(physical_device.id).Present().U32(family_count).U64(family_count);
  Result<std::span<const uint8_t>> got = Call(listed.bytes, 24 + 24 * size_t{family_count});
  if (!got) return ErrorOf(got);
  bool found = false;
  for (uint32_t i = 0; i < family_count && !found; ++i) {
    const uint32_t flags = ReadU32(*got, 24 + 24 * size_t{i});
    if (flags & (kQueueGraphics | kQueueCompute | kQueueTransfer)) {
      queue_family_ = i;
      found = true;
    }
  }
  if (!found) return MakeError(ErrorKind::kNotFound, "no queue family can transfer");

  Encoder memory(kGetPhysicalDeviceMemoryProperties, true);
  memory.U64(physical_device.id).Present().U64(32).U64(16);  // VK_MAX_MEMORY_TYPES, _HEAPS.
  Result<std::span<const uint8_t>> types = Call(memory.bytes, 484);
  if (!types) return ErrorOf(types);
  const uint32_t type_count = std::min(ReadU32(*types, 12), 32u);
  memory_type_flags_.clear();
  for (uint32_t i = 0; i < type_count; ++i) {
    memory_type_flags_.push_back(ReadU32(*types, 24 + 8 * size_t{i}));
  }

  device_ = NewId();
  Encoder create(kCreateDevice, true);
  create.U64(physical_device.id).Present().I32(kDeviceCreateInfo).Null().U32(0);
  create.U32(1).U64(1);  // One VkDeviceQueueCreateInfo.
  create.I32(kDeviceQueueCreateInfo).Null().U32(0).U32(queue_family_).U32(1).U64(1).F32(1.0f);
  create.U32(0).Null();  // Layers.
  create.U32(0).Null();  // Extensions.
  create.Null();         // pEnabledFeatures.
  create.Null();         // pAllocator.
  create.Present().U64(device_);
  Result<std::span<const uint8_t>> made = CallChecked(create.bytes, 24, "vkCreateDevice");
  if (!made) return ErrorOf(made);

  queue_ = NewId();
  Encoder queue(queue_ring == 0 ? kGetDeviceQueue : kGetDeviceQueue2, true);
  if (queue_ring == 0) {
    queue.U64(device_).U32(queue_family_).U32(0);
  } else {
    // VkDeviceQueueInfo2 {sType, pNext -> VkDeviceQueueTimelineInfoMESA {sType, pNext, ringIdx},
    // flags, queueFamilyIndex, queueIndex}.
    queue.U64(device_).Present().I32(kDeviceQueueInfo2);
    queue.Present().I32(kDeviceQueueTimelineInfoMesa).Null().U32(queue_ring);
    queue.U32(0).U32(queue_family_).U32(0);
  }
  queue.Present().U64(queue_);
  if (Result<std::span<const uint8_t>> got_queue = Call(queue.bytes, 20); !got_queue) {
    return ErrorOf(got_queue);
  }

  command_pool_ = NewId();
  Encoder pool(kCreateCommandPool, true);
  pool.U64(device_).Present().I32(kCommandPoolCreateInfo).Null().U32(2 /*RESET_COMMAND_BUFFER*/);
  pool.U32(queue_family_).Null().Present().U64(command_pool_);
  Result<std::span<const uint8_t>> pooled = CallChecked(pool.bytes, 24, "vkCreateCommandPool");
  if (!pooled) return ErrorOf(pooled);
  command_buffer_ = NewId();
  Encoder allocate(kAllocateCommandBuffers, true);
  allocate.U64(device_).Present().I32(kCommandBufferAllocateInfo).Null().U64(command_pool_);
  allocate.I32(0 /*PRIMARY*/).U32(1).U64(1).U64(command_buffer_);
  Result<std::span<const uint8_t>> allocated =
      CallChecked(allocate.bytes, 24, "vkAllocateCommandBuffers");
  if (!allocated) return ErrorOf(allocated);
  fence_ = NewId();
  Encoder fence(kCreateFence, true);
  fence.U64(device_).Present().I32(kFenceCreateInfo).Null().U32(0).Null().Present().U64(fence_);
  Result<std::span<const uint8_t>> fenced = CallChecked(fence.bytes, 24, "vkCreateFence");
  if (!fenced) return ErrorOf(fenced);
  return {};
}

Result<VenusMappedBuffer> VenusClient::CreateMappedBuffer(uint32_t resource_id, uint64_t size) {
  std::optional<uint32_t> type;
  for (uint32_t i = 0; i < memory_type_flags_.size() && !type; ++i) {
    const uint32_t wanted = kMemoryHostVisible | kMemoryHostCoherent;
    if ((memory_type_flags_[i] & wanted) == wanted) type = i;
  }
  if (!type) return MakeError(ErrorKind::kNotFound, "no host-visible coherent memory type");
  VenusMappedBuffer mapped{.memory = NewId(), .buffer = NewId(), .resource_id = resource_id};

  Encoder buffer(kCreateBuffer, true);
  buffer.U64(device_).Present().I32(kBufferCreateInfo).Null().U32(0).U64(size);
  buffer.U32(kBufferTransferSource | kBufferTransferDestination).I32(0 /*EXCLUSIVE*/);
  buffer.U32(0).Null().Null().Present().U64(mapped.buffer);
  Result<std::span<const uint8_t>> made = CallChecked(buffer.bytes, 24, "vkCreateBuffer");
  if (!made) return ErrorOf(made);
  buffers_.push_back(mapped.buffer);
  Encoder requirements(kGetBufferMemoryRequirements, true);
  requirements.U64(device_).U64(mapped.buffer).Present();
  Result<std::span<const uint8_t>> needs = Call(requirements.bytes, 32);
  if (!needs) return ErrorOf(needs);
  const uint64_t needed = ReadU64(*needs, 12);
  const uint32_t type_bits = ReadU32(*needs, 28);
  if ((type_bits & (1u << *type)) == 0) {
    return MakeError(ErrorKind::kNotFound, "the buffer cannot live in host-visible memory");
  }
  // The blob is mapped in whole pages.
  const uint64_t allocation = (std::max(needed, size) + 4095) & ~uint64_t{4095};

  Encoder allocate(kAllocateMemory, true);
  allocate.U64(device_).Present().I32(kMemoryAllocateInfo).Null().U64(allocation).U32(*type);
  allocate.Null().Present().U64(mapped.memory);
  Result<std::span<const uint8_t>> allocated = CallChecked(allocate.bytes, 24, "vkAllocateMemory");
  if (!allocated) return ErrorOf(allocated);
  memories_.push_back(mapped.memory);
  Encoder bind(kBindBufferMemory, true);
  bind.U64(device_).U64(mapped.buffer).U64(mapped.memory).U64(0);
  Result<std::span<const uint8_t>> bound = CallChecked(bind.bytes, 8, "vkBindBufferMemory");
  if (!bound) return ErrorOf(bound);
  // The memory's blob: blob_id is the VkDeviceMemory's object id.
  Result<std::span<uint8_t>> bytes =
      transport_.CreateAndMapBlob(resource_id, mapped.memory, kBlobFlagMappable, allocation);
  if (!bytes) return ErrorOf(bytes);
  mapped.bytes = bytes->subspan(0, size);
  return mapped;
}

Result<void> VenusClient::CopyAndFill(const VenusMappedBuffer& buffer, uint64_t source_offset,
                                      uint64_t destination_offset, uint64_t copy_size,
                                      uint64_t fill_offset, uint64_t fill_size, uint32_t fill_value,
                                      std::chrono::milliseconds timeout) {
  Result<void> recorded = RecordCopyAndFill(buffer, source_offset, destination_offset, copy_size,
                                            fill_offset, fill_size, fill_value);
  if (!recorded) return recorded;
  return SubmitFenced(/*with_commands=*/true, timeout);
}

Result<void> VenusClient::RecordCopyAndFill(const VenusMappedBuffer& buffer, uint64_t source_offset,
                                            uint64_t destination_offset, uint64_t copy_size,
                                            uint64_t fill_offset, uint64_t fill_size,
                                            uint32_t fill_value) {
  Encoder begin(kBeginCommandBuffer, true);
  begin.U64(command_buffer_).Present().I32(kCommandBufferBeginInfo).Null().U32(1).Null();
  Result<std::span<const uint8_t>> begun = CallChecked(begin.bytes, 8, "vkBeginCommandBuffer");
  if (!begun) return ErrorOf(begun);
  Encoder record = Encoder(kCmdCopyBuffer, false)
                       .U64(command_buffer_)
                       .U64(buffer.buffer)
                       .U64(buffer.buffer)
                       .U32(1)
                       .U64(1)
                       .U64(source_offset)
                       .U64(destination_offset)
                       .U64(copy_size);
  const Encoder fill = Encoder(kCmdFillBuffer, false)
                           .U64(command_buffer_)
                           .U64(buffer.buffer)
                           .U64(fill_offset)
                           .U64(fill_size)
                           .U32(fill_value);
  record.bytes.insert(record.bytes.end(), fill.bytes.begin(), fill.bytes.end());
  const Encoder end = Encoder(kEndCommandBuffer, true).U64(command_buffer_);
  record.bytes.insert(record.bytes.end(), end.bytes.begin(), end.bytes.end());
  // The one reply is End's.
  Result<std::span<const uint8_t>> ended =
      CallChecked(record.bytes, 8, "vkEndCommandBuffer", kEndCommandBuffer);
  if (!ended) return ErrorOf(ended);
  return {};
}

Result<void> VenusClient::SubmitAndWaitForFence(std::chrono::milliseconds timeout) {
  return SubmitFenced(/*with_commands=*/false, timeout);
}

std::vector<uint8_t> VenusClient::EncodeQueueSubmit(bool with_commands, uint64_t fence,
                                                    bool reply) const {
  Encoder submit(kQueueSubmit, reply);
  submit.U64(queue_).U32(1).U64(1);
  submit.I32(kSubmitInfo).Null().U32(0).Null().Null();  // No wait semaphores, no stage masks.
  if (with_commands) {
    submit.U32(1).U64(1).U64(command_buffer_);
  } else {
    submit.U32(0).Null();
  }
  submit.U32(0).Null();  // No signal semaphores.
  submit.U64(fence);     // 0: VK_NULL_HANDLE.
  return std::move(submit.bytes);
}

std::vector<uint8_t> VenusClient::QueueSubmitCommand(bool with_commands) const {
  return EncodeQueueSubmit(with_commands, /*fence=*/0, /*reply=*/false);
}

Result<void> VenusClient::SubmitFenced(bool with_commands, std::chrono::milliseconds timeout) {
  Result<std::span<const uint8_t>> submitted =
      CallChecked(EncodeQueueSubmit(with_commands, fence_, /*reply=*/true), 8, "vkQueueSubmit");
  if (!submitted) return ErrorOf(submitted);
  // vkWaitForFences would hold the renderer for its whole timeout: poll instead.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Encoder status(kGetFenceStatus, true);
    status.U64(device_).U64(fence_);
    Result<std::span<const uint8_t>> got = Call(status.bytes, 8);
    if (!got) return ErrorOf(got);
    const int32_t result = ReadI32(*got, 4);
    if (result == 0) break;
    if (result != kNotReady) return VkFailure("vkGetFenceStatus", result);
    if (std::chrono::steady_clock::now() > deadline) {
      return MakeError(ErrorKind::kTimedOut, "the fence did not signal");
    }
    std::this_thread::yield();
  }
  Encoder reset(kResetFences, true);
  reset.U64(device_).U32(1).U64(1).U64(fence_);
  Result<std::span<const uint8_t>> was_reset = Call(reset.bytes, 8);
  if (!was_reset) return ErrorOf(was_reset);
  return {};
}

Result<void> VenusClient::Destroy() {
  std::vector<uint8_t> batch;
  auto add = [&](const Encoder& command) {
    batch.insert(batch.end(), command.bytes.begin(), command.bytes.end());
  };
  if (device_ != 0) {
    if (fence_ != 0) add(Encoder(kDestroyFence, false).U64(device_).U64(fence_).Null());
    if (command_pool_ != 0) {
      add(Encoder(kDestroyCommandPool, false).U64(device_).U64(command_pool_).Null());
    }
    for (uint64_t buffer : buffers_) {
      add(Encoder(kDestroyBuffer, false).U64(device_).U64(buffer).Null());
    }
    for (uint64_t memory : memories_) {
      add(Encoder(kFreeMemory, false).U64(device_).U64(memory).Null());
    }
    add(Encoder(kDestroyDevice, false).U64(device_).Null());
  }
  if (instance_ != 0) add(Encoder(kDestroyInstance, false).U64(instance_).Null());
  device_ = instance_ = fence_ = command_pool_ = command_buffer_ = 0;
  buffers_.clear();
  memories_.clear();
  if (batch.empty()) return {};
  return transport_.Submit(batch);
}

}  // namespace vgpu::test
