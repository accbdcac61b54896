// GpuDevice: the virtio-gpu device (virtio 1.2 §5.7) behind the virtio::Device interface.
//
//   GpuDevice device(GpuDeviceConfig{...});
//   // The vhost-user layer drives it: config space from the control thread, everything else on
//   // the device thread (SetEventLoop, Activate, queues, SetDisplaySocket).
//
// It owns the config space, the two queues' in-flight chains, the display channel to the VMM,
// the 3D renderer and the device model (CommandDispatcher). Each popped chain is decoded once
// (command_decoder.h) and its writable part handed to the queue's InFlightChains, whose handle
// (a Reply) goes with the command: the only way its response can be written
// (docs/ARCHITECTURE.md, "Guest buffers have one owner"). A command that waits for the VMM holds
// the queue until it is answered, so responses keep their order; stopping the queue returns every
// chain still out, with nothing written, and their handles go dead.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "base/log.h"
#include "base/unique_fd.h"
#include "gpu/command_dispatcher.h"
#include "gpu/command_recorder.h"
#include "gpu/display_channel.h"
#include "renderer/renderer.h"
#include "virtio/device.h"
#include "virtio/pending_chain.h"

namespace vgpu::gpu {

// Creates the 3D renderer; called once, on the device thread (GL contexts are thread-bound).
using RendererFactory = std::function<Result<std::unique_ptr<renderer::Renderer>>()>;

struct GpuDeviceConfig {
  bool headless = false;  // No display output, no EDID feature.
  uint64_t max_host_memory = 256ull << 20;
  RendererFactory renderer_factory;  // Empty: 2D only (null mode).
  bool context_init = false;         // Offer VIRTIO_GPU_F_CONTEXT_INIT (per-context fences work).
  std::chrono::nanoseconds readback_interval = kDefaultReadbackInterval;  // DispatcherConfig.
  // The host-visible region (shmid 1) offered to the VMM for mapped blobs; 0: none. Only with a
  // 3D renderer (host blobs are its).
  uint64_t host_visible_size = 0;
  // Large UPDATEs lend their pages to the display socket (DisplayChannelOptions::lend_pages).
  bool lend_display_pages = true;
};

class GpuDevice final : public virtio::Device {
 public:
  static constexpr uint32_t kControlQueue = 0;
  static constexpr uint32_t kCursorQueue = 1;
  // Commands handled per turn of the event loop before other events get theirs: a guest that
  // keeps a queue full would otherwise hold the device thread (the other queue, the renderer's
  // fences and the display's replies wait behind it).
  static constexpr uint32_t kControlBatch = 32;
  static constexpr uint32_t kCursorBatch = 64;

  explicit GpuDevice(const GpuDeviceConfig& config);
  ~GpuDevice() override;

  uint64_t DeviceFeatures() const override;
  uint32_t QueueCount() const override { return 2; }
  uint32_t MaxQueueSize(uint32_t) const override { return virtio::kMaxQueueSize; }
  uint32_t ConfigSize() const override;
  void ReadConfig(uint32_t offset, std::span<uint8_t> destination) const override;
  void WriteConfig(uint32_t offset, std::span<const uint8_t> source) override;
  std::vector<uint64_t> SharedMemoryRegions() const override;
  void SetSharedMemoryMapper(std::shared_ptr<virtio::SharedMemoryMapper> mapper) override;

  Result<void> SetEventLoop(EventLoop& loop) override;
  void Activate(uint64_t acked_features) override;
  void QueueStarted(uint32_t queue_index, virtio::SplitVirtqueue* queue, bool enabled) override;
  void QueueEnabled(uint32_t queue_index, bool enabled) override;
  void QueueNotified(uint32_t queue_index) override;
  void QueueMemoryReplaced(uint32_t queue_index,
                           std::shared_ptr<const virtio::GuestMemory> old) override {
    in_flight_[queue_index].KeepMemory(std::move(old));
  }
  void QueueStopping(uint32_t queue_index) override;
  void Reset() override;
  void Shutdown() override;

  // The display channel to the VMM (VHOST_USER_GPU_SET_SOCKET); a new one replaces the old.
  void SetDisplaySocket(UniqueFd socket);

  // Device thread (or after it stopped).
  CommandStatistics statistics() const {
    return model_ ? model_->statistics() : CommandStatistics{};
  }
  const CommandDispatcher* model() const { return model_.get(); }
  const DisplayChannel* display() const { return display_.get(); }
  size_t chains_in_flight(uint32_t queue_index) const { return in_flight_[queue_index].size(); }

 private:
  uint64_t HostVisibleSize() const;  // 0 without a 3D renderer that makes blobs.
  void ProcessControlQueue();
  void ProcessCursorQueue();
  void OnRendererReadable();
  void RecordRing(uint32_t queue_index);
  void RecordControlRequest(const virtio::DescriptorChain& chain);

  const GpuDeviceConfig config_;
  mutable std::mutex config_mutex_;
  uint32_t events_read_ = 0;  // Guarded by config_mutex_.
  uint32_t num_capsets_ = 0;  // Guarded by config_mutex_; set once the renderer runs.

  // The queues' chains that are out, declared before everything that may hold their handles (the
  // model, the display channel's callbacks), so that they outlive those.
  std::array<virtio::InFlightChains, 2> in_flight_;
  std::array<virtio::SplitVirtqueue*, 2> queues_{};
  EventLoop* loop_ = nullptr;
  std::unique_ptr<DisplayChannel> display_;
  UniqueFd headless_socket_;  // --headless: the VMM's display socket, held silently.
  std::unique_ptr<renderer::Renderer> renderer_;   // Created with the event loop, if any.
  std::atomic<bool> renderer_makes_blobs_{false};  // Read by the control thread.
  std::optional<WatchId> renderer_watch_;
  std::unique_ptr<CommandDispatcher> model_;  // Created with the event loop.
  RateLimitedLog guest_log_;                  // Malformed chains.
  // Debug: when VHOST_DEVICE_GPU_RECORD_CONTROL / _VIRTQUEUE name files (command_recorder.h;
  // opened with the device, before the sandbox): each control request, and the rings at each kick.
  CommandRecorder control_recorder_ =
      CommandRecorder::FromEnvironment(kRecordControlEnvironmentVariable);
  CommandRecorder ring_recorder_ =
      CommandRecorder::FromEnvironment(kRecordVirtqueueEnvironmentVariable);
  std::array<uint32_t, 2> recorded_kicks_{};
};

}  // namespace vgpu::gpu
