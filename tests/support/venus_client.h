// VenusClient: a small Vulkan client that speaks Venus (the Vulkan command serialization of
// virglrenderer's Venus renderer) straight over virtio-gpu, as the guest's Venus driver would:
// commands go in SUBMIT_3D to a context made with the Venus capset, replies come back in a
// shared-memory blob (HOST3D, blob_id 0) mapped into the host-visible region, and device memory
// is mapped the same way (a HOST3D blob whose blob_id is the VkDeviceMemory's object id).
//
//   VenusClient client(transport);
//   Result<void> ready = client.CreateInstance();
//   Result<VenusPhysicalDevice> device = client.FirstPhysicalDevice();
//
// Written from the protocol's published definitions (Venus's VK_EXT_command_serialization and
// VK_MESA_venus_protocol encoding rules, as virglrenderer 0.10.4 decodes them): every item is
// 4-byte granular, handles are u64 object ids the client picks, a pointer is a u64 presence marker
// followed by what it points at, an array a u64 element count followed by its elements. Each call
// here is one SUBMIT_3D: a seek of the reply stream to 0, then the command with its reply bit;
// the reply is read back from the reply blob after the SUBMIT_3D's response (the renderer writes
// replies before it returns from the submit).
//
// Test support only: objects are never reused within a client, and a failed call leaves the
// context as the renderer left it (a decoding error is fatal for a Venus context).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace vgpu::test {

// What the client needs of the device: a context made with the Venus capset and a way to map
// blobs. Implemented by the test over the daemon's control queue and the ShmemWindow.
class VenusTransport {
 public:
  virtual ~VenusTransport() = default;
  // SUBMIT_3D of `commands` on the Venus context; succeeds when it is answered OK_NODATA.
  virtual Result<void> Submit(std::span<const uint8_t> commands) = 0;
  // RESOURCE_CREATE_BLOB (HOST3D, `flags`, `blob_id`, `size`) as resource `resource_id` in the
  // context, then RESOURCE_MAP_BLOB; the guest's view of the mapping.
  virtual Result<std::span<uint8_t>> CreateAndMapBlob(uint32_t resource_id, uint64_t blob_id,
                                                      uint32_t flags, uint64_t size) = 0;
};

struct VenusPhysicalDevice {
  uint64_t id = 0;
  std::string name;
  uint32_t device_type = 0;  // VkPhysicalDeviceType.
  uint32_t api_version = 0;
  uint32_t vendor_id = 0;
};

// A buffer in host-visible device memory, mapped into the guest's view.
struct VenusMappedBuffer {
  uint64_t memory = 0;
  uint64_t buffer = 0;
  uint32_t resource_id = 0;
  std::span<uint8_t> bytes;
};

class VenusClient {
 public:
  // `reply_resource_id`: the resource id the reply blob gets.
  VenusClient(VenusTransport& transport, uint32_t reply_resource_id);

  // The reply blob, vkSetReplyCommandStreamMESA, vkCreateInstance (Vulkan 1.1).
  Result<void> CreateInstance();
  // vkEnumeratePhysicalDevices, then vkGetPhysicalDeviceProperties of the first.
  Result<VenusPhysicalDevice> FirstPhysicalDevice();
  // A device with one queue of a family that can transfer, and that queue. With `queue_ring` > 0
  // the queue is bound to that ring of the context's fence timelines (vkGetDeviceQueue2 with
  // VkDeviceQueueTimelineInfoMESA), so that a virtio-gpu fence on that ring signals when the
  // queue has executed what was submitted to it before (§5.7.6.7, per-ring fences).
  Result<void> CreateDevice(const VenusPhysicalDevice& physical_device, uint32_t queue_ring = 0);
  // `size` bytes of host-visible, coherent memory, a transfer buffer bound to all of it, mapped
  // through a blob made as `resource_id`.
  Result<VenusMappedBuffer> CreateMappedBuffer(uint32_t resource_id, uint64_t size);
  // Records into the command buffer: copy `copy_size` bytes from `source_offset` to
  // `destination_offset`, then fill `fill_size` bytes at `fill_offset` with `fill_value`.
  Result<void> RecordCopyAndFill(const VenusMappedBuffer& buffer, uint64_t source_offset,
                                 uint64_t destination_offset, uint64_t copy_size,
                                 uint64_t fill_offset, uint64_t fill_size, uint32_t fill_value);
  // vkQueueSubmit of the recorded command buffer (or of nothing), without a Vulkan fence and
  // without a reply: for the caller to send in a SUBMIT_3D fenced on the queue's ring.
  std::vector<uint8_t> QueueSubmitCommand(bool with_commands) const;
  // RecordCopyAndFill, then submits with a Vulkan fence and waits for it by polling
  // vkGetFenceStatus, at most `timeout`.
  Result<void> CopyAndFill(const VenusMappedBuffer& buffer, uint64_t source_offset,
                           uint64_t destination_offset, uint64_t copy_size, uint64_t fill_offset,
                           uint64_t fill_size, uint32_t fill_value,
                           std::chrono::milliseconds timeout);
  // One empty vkQueueSubmit with a fence, waited for as above (for fences per second).
  Result<void> SubmitAndWaitForFence(std::chrono::milliseconds timeout);
  // Destroys the device's objects, the device and the instance.
  Result<void> Destroy();

  uint64_t instance() const { return instance_; }

 private:
  // Sends `command` (commands, each starting with its header; one with the reply bit) after a
  // seek of the reply stream to 0, and returns the reply's bytes, checked to start with
  // `reply_type` (default: the first command's type).
  Result<std::span<const uint8_t>> Call(const std::vector<uint8_t>& command, size_t reply_size,
                                        std::optional<uint32_t> reply_type = std::nullopt);
  // Call, for a command that returns a VkResult: anything but VK_SUCCESS fails, naming `name`.
  Result<std::span<const uint8_t>> CallChecked(const std::vector<uint8_t>& command,
                                               size_t reply_size, const char* name,
                                               std::optional<uint32_t> reply_type = std::nullopt);
  std::vector<uint8_t> EncodeQueueSubmit(bool with_commands, uint64_t fence, bool reply) const;
  // vkQueueSubmit with the fence (and the command buffer), then vkGetFenceStatus until signalled.
  Result<void> SubmitFenced(bool with_commands, std::chrono::milliseconds timeout);
  uint64_t NewId() { return next_id_++; }

  VenusTransport& transport_;
  const uint32_t reply_resource_id_;
  std::span<uint8_t> reply_;
  uint64_t next_id_ = 1;
  uint64_t instance_ = 0;
  uint64_t physical_device_ = 0;
  uint64_t device_ = 0;
  uint64_t queue_ = 0;
  uint32_t queue_family_ = 0;
  std::vector<uint32_t> memory_type_flags_;
  uint64_t command_pool_ = 0;
  uint64_t command_buffer_ = 0;
  uint64_t fence_ = 0;
  std::vector<uint64_t> buffers_;
  std::vector<uint64_t> memories_;
};

}  // namespace vgpu::test
