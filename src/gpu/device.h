// GpuDevice: the virtio-gpu device model (virtio 1.2 §5.7) behind the virtio::Device interface.
//
//   GpuDevice device(GpuDeviceConfig{...});
//   // The vhost-user layer drives it: config reads on the control thread, queues on the device
//   // thread.
//
// This is the foundation version: it owns config space and the two queues, decodes the control
// header, and answers every command with a well-formed response.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

#include "base/unique_fd.h"
#include "virtio/device.h"

namespace vgpu::gpu {

struct GpuDeviceConfig {
  uint32_t num_scanouts = 1;
  uint32_t num_capsets = 0;
  bool edid = true;  // Offer VIRTIO_GPU_F_EDID (not in headless mode).
};

class GpuDevice final : public virtio::Device {
 public:
  static constexpr uint32_t kControlQueue = 0;
  static constexpr uint32_t kCursorQueue = 1;

  explicit GpuDevice(const GpuDeviceConfig& config);

  uint64_t DeviceFeatures() const override;
  uint32_t QueueCount() const override { return 2; }
  uint32_t MaxQueueSize(uint32_t) const override { return virtio::kMaxQueueSize; }
  uint32_t ConfigSize() const override;
  void ReadConfig(uint32_t offset, std::span<uint8_t> destination) const override;
  void WriteConfig(uint32_t offset, std::span<const uint8_t> source) override;

  void Activate(EventLoop& loop, uint64_t acked_features) override;
  void QueueStarted(uint32_t queue_index, virtio::SplitVirtqueue* queue) override;
  void QueueNotified(uint32_t queue_index) override;
  void QueueStopping(uint32_t queue_index) override;
  void Reset() override;

  // The display channel to the VMM (VHOST_USER_GPU_SET_SOCKET). Device thread.
  void SetDisplaySocket(UniqueFd socket);

 private:
  void ProcessControlQueue();
  void ProcessCursorQueue();

  const GpuDeviceConfig config_;
  mutable std::mutex config_mutex_;
  uint32_t events_read_ = 0;  // Guarded by config_mutex_.

  uint64_t acked_features_ = 0;
  std::array<virtio::SplitVirtqueue*, 2> queues_{};
  UniqueFd display_socket_;
};

}  // namespace vgpu::gpu
