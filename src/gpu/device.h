// GpuDevice: the virtio-gpu device (virtio 1.2 §5.7) behind the virtio::Device interface.
//
//   GpuDevice device(GpuDeviceConfig{...});
//   // The vhost-user layer drives it: config space from the control thread, everything else on
//   // the device thread (SetEventLoop, Activate, queues, SetDisplaySocket).
//
// It owns the config space, the two queues, the display channel to the VMM and the command
// processor. A command that waits for the VMM (GET_DISPLAY_INFO, GET_EDID) stays pending without
// blocking the thread; the control queue is not read further until it completes, so responses
// keep their order (and fences their meaning).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/unique_fd.h"
#include "gpu/command_processor.h"
#include "gpu/display_channel.h"
#include "renderer/renderer.h"
#include "virtio/device.h"

namespace vgpu::gpu {

// Creates the 3D renderer; called once, on the device thread (GL contexts are thread-bound).
using RendererFactory = std::function<Result<std::unique_ptr<renderer::Renderer>>()>;

struct GpuDeviceConfig {
  bool headless = false;  // No display output, no EDID feature.
  uint64_t max_host_memory = 256ull << 20;
  RendererFactory renderer_factory;  // Empty: 2D only (null mode).
  bool context_init = false;         // Offer VIRTIO_GPU_F_CONTEXT_INIT (per-context fences work).
};

class GpuDevice final : public virtio::Device {
 public:
  static constexpr uint32_t kControlQueue = 0;
  static constexpr uint32_t kCursorQueue = 1;
  // Control commands handled per turn of the event loop before other events get theirs.
  static constexpr uint32_t kControlBatch = 32;

  explicit GpuDevice(const GpuDeviceConfig& config);
  ~GpuDevice() override;

  uint64_t DeviceFeatures() const override;
  uint32_t QueueCount() const override { return 2; }
  uint32_t MaxQueueSize(uint32_t) const override { return virtio::kMaxQueueSize; }
  uint32_t ConfigSize() const override;
  void ReadConfig(uint32_t offset, std::span<uint8_t> destination) const override;
  void WriteConfig(uint32_t offset, std::span<const uint8_t> source) override;

  Result<void> SetEventLoop(EventLoop& loop) override;
  void Activate(uint64_t acked_features) override;
  void QueueStarted(uint32_t queue_index, virtio::SplitVirtqueue* queue) override;
  void QueueNotified(uint32_t queue_index) override;
  void QueueStopping(uint32_t queue_index) override;
  void Reset() override;
  void Shutdown() override;

  // The display channel to the VMM (VHOST_USER_GPU_SET_SOCKET); a new one replaces the old.
  void SetDisplaySocket(UniqueFd socket);

  // Device thread (or after it stopped).
  CommandStatistics statistics() const {
    return processor_ ? processor_->statistics() : CommandStatistics{};
  }
  const CommandProcessor* processor() const { return processor_.get(); }
  const DisplayChannel* display() const { return display_.get(); }

 private:
  void ProcessControlQueue();
  void ProcessCursorQueue();
  void CompleteInFlight(uint64_t token, uint32_t used_length);
  void ReturnInFlightUnanswered();
  void OnRendererReadable();
  void RecordRing(uint32_t queue_index);

  const GpuDeviceConfig config_;
  mutable std::mutex config_mutex_;
  uint32_t events_read_ = 0;  // Guarded by config_mutex_.

  EventLoop* loop_ = nullptr;
  std::unique_ptr<DisplayChannel> display_;
  UniqueFd headless_socket_;  // --headless: the VMM's display socket, held silently.
  std::unique_ptr<renderer::Renderer> renderer_;  // Created with the event loop, if any.
  std::optional<WatchId> renderer_watch_;
  std::unique_ptr<CommandProcessor> processor_;  // Created with the event loop.
  uint32_t num_capsets_ = 0;                     // Read by the control thread once set.
  std::array<virtio::SplitVirtqueue*, 2> queues_{};
  // Control commands being answered, by token, in token order. Almost every command is answered
  // at once and removed again from the end, so a vector (its capacity kept) spares the control
  // path an allocation per command; the few held for a fence or the VMM stay a short list.
  struct InFlightCommand {
    uint64_t token;
    uint16_t head;
  };
  std::vector<InFlightCommand> in_flight_;
  // in_flight_'s entry for `token`, or end().
  std::vector<InFlightCommand>::iterator FindInFlight(uint64_t token);
  std::optional<uint64_t> blocking_token_;  // The one waiting for the VMM: later ones wait too.
  uint64_t next_token_ = 1;
  // Debug: the rings at each kick, when VHOST_DEVICE_GPU_RECORD_VIRTQUEUE names a file
  // (command_recorder.h; opened with the device, before the sandbox).
  CommandRecorder ring_recorder_ =
      CommandRecorder::FromEnvironment(kRecordVirtqueueEnvironmentVariable);
  std::array<uint32_t, 2> recorded_kicks_{};
};

}  // namespace vgpu::gpu
