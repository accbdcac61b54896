#include "gpu/device.h"

#include <cstring>

#include "base/log.h"
#include "virtio/chain_io.h"

namespace vgpu::gpu {
namespace {

// Spec: struct virtio_gpu_config (§5.7.4).
struct VirtioGpuConfig {
  uint32_t events_read;
  uint32_t events_clear;
  uint32_t num_scanouts;
  uint32_t num_capsets;
} __attribute__((packed));
static_assert(sizeof(VirtioGpuConfig) == 16);

// Spec: struct virtio_gpu_ctrl_hdr (§5.7.6.7).
struct CtrlHeader {
  uint32_t type;
  uint32_t flags;
  uint64_t fence_id;
  uint32_t ctx_id;
  uint8_t ring_idx;
  uint8_t padding[3];
} __attribute__((packed));
static_assert(sizeof(CtrlHeader) == 24);

constexpr uint32_t kFlagFence = 1;
constexpr uint32_t kResponseErrorUnspecified = 0x1200;
constexpr uint64_t kFeatureEdid = 1ull << 1;

}  // namespace

GpuDevice::GpuDevice(const GpuDeviceConfig& config) : config_(config) {}

uint64_t GpuDevice::DeviceFeatures() const { return config_.edid ? kFeatureEdid : 0; }

uint32_t GpuDevice::ConfigSize() const { return sizeof(VirtioGpuConfig); }

void GpuDevice::ReadConfig(uint32_t offset, std::span<uint8_t> destination) const {
  VirtioGpuConfig config{};
  {
    std::lock_guard lock(config_mutex_);
    config.events_read = events_read_;
  }
  config.num_scanouts = config_.num_scanouts;
  config.num_capsets = config_.num_capsets;
  // Bounds: the vhost-user layer checked offset + size <= ConfigSize().
  std::memcpy(destination.data(), reinterpret_cast<const uint8_t*>(&config) + offset,
              destination.size());
}

void GpuDevice::WriteConfig(uint32_t offset, std::span<const uint8_t> source) {
  // Only events_clear is writable (§5.7.4): a 1 bit clears the matching events_read bit.
  VirtioGpuConfig written{};
  std::memcpy(reinterpret_cast<uint8_t*>(&written) + offset, source.data(), source.size());
  if (offset <= offsetof(VirtioGpuConfig, events_clear) &&
      offset + source.size() >= offsetof(VirtioGpuConfig, events_clear) + sizeof(uint32_t)) {
    std::lock_guard lock(config_mutex_);
    events_read_ &= ~written.events_clear;
  }
}

void GpuDevice::Activate(EventLoop&, uint64_t acked_features) { acked_features_ = acked_features; }

void GpuDevice::QueueStarted(uint32_t queue_index, virtio::SplitVirtqueue* queue) {
  queues_[queue_index] = queue;
}

void GpuDevice::QueueStopping(uint32_t queue_index) { queues_[queue_index] = nullptr; }

void GpuDevice::Reset() {
  queues_ = {};
  display_socket_.reset();
  acked_features_ = 0;
}

void GpuDevice::SetDisplaySocket(UniqueFd socket) { display_socket_ = std::move(socket); }

void GpuDevice::QueueNotified(uint32_t queue_index) {
  if (queue_index == kControlQueue) {
    ProcessControlQueue();
  } else {
    ProcessCursorQueue();
  }
}

void GpuDevice::ProcessControlQueue() {
  virtio::SplitVirtqueue* queue = queues_[kControlQueue];
  if (queue == nullptr) return;
  do {
    while (std::optional<virtio::PoppedChain> popped = queue->Pop()) {
      uint32_t written = 0;
      if (popped->chain) {
        virtio::ChainReader reader(*popped->chain);
        std::optional<CtrlHeader> request = reader.ReadObject<CtrlHeader>();
        if (request) {
          CtrlHeader response{};
          response.type = kResponseErrorUnspecified;
          if (request->flags & kFlagFence) {
            response.flags = kFlagFence;
            response.fence_id = request->fence_id;
            response.ctx_id = request->ctx_id;
          }
          virtio::ChainWriter writer(*popped->chain);
          if (writer.WriteObject(response)) written = static_cast<uint32_t>(writer.bytes_written());
        }
      } else {
        LogWarning("control queue: %s", popped->chain.error().message.c_str());
      }
      queue->PushUsed(popped->head_index, written);
    }
    queue->NotifyIfNeeded();
  } while (queue->EnableKickAndRecheck());
}

void GpuDevice::ProcessCursorQueue() {
  virtio::SplitVirtqueue* queue = queues_[kCursorQueue];
  if (queue == nullptr) return;
  do {
    while (std::optional<virtio::PoppedChain> popped = queue->Pop()) {
      queue->PushUsed(popped->head_index, 0);
    }
    queue->NotifyIfNeeded();
  } while (queue->EnableKickAndRecheck());
}

}  // namespace vgpu::gpu
