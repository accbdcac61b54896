// virtio::Device: what a virtio device model implements, whatever transport carries it.
//
// The vhost-user layer drives a Device; the GPU device model implements it and never sees
// vhost-user. Threading contract:
//   - Features(), QueueCount(), MaxQueueSize(), ReadConfig() and WriteConfig() may be called from
//     the control thread at any time, also while the device thread is busy, so they must not wait
//     for device work (QEMU reads config space synchronously from a vCPU).
//   - Everything else runs on the device thread, whose EventLoop the device may use for its own
//     fds (a renderer's fence fd, the display socket).
//
//   class MyDevice final : public virtio::Device { ... };
//   device.SetEventLoop(loop);            // Once, on the device thread, before anything else.
//   device.Activate(acked_features);
//   device.QueueStarted(0, &queue, true);  // The device may now Pop() and PushUsed().
//   device.QueueNotified(0);               // The driver kicked.
//   device.QueueStopping(0);               // Finish or fail everything in flight; then forget it.
//   device.Reset();
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/event_loop.h"
#include "virtio/shared_memory.h"
#include "virtio/split_virtqueue.h"

namespace vgpu::virtio {

class Device {
 public:
  virtual ~Device() = default;

  // Device-specific feature bits offered (the transport adds VERSION_1 and ring features).
  virtual uint64_t DeviceFeatures() const = 0;
  virtual uint32_t QueueCount() const = 0;
  virtual uint32_t MaxQueueSize(uint32_t queue_index) const = 0;
  virtual uint32_t ConfigSize() const = 0;
  // Copies config space bytes [offset, offset + destination.size()), already bounds-checked.
  virtual void ReadConfig(uint32_t offset, std::span<uint8_t> destination) const = 0;
  virtual void WriteConfig(uint32_t offset, std::span<const uint8_t> source) = 0;
  // The sizes of the device's shared memory regions, indexed by shmid (0 where a shmid has none),
  // constant for the device's life; empty when it has none (§2.10).
  virtual std::vector<uint64_t> SharedMemoryRegions() const { return {}; }

  // Device thread from here on.
  // The device thread's loop, for the device's own fds and timers. Called once, first; an error
  // means the device cannot run (the daemon exits).
  virtual Result<void> SetEventLoop(EventLoop& loop) = 0;
  // The driver's features are known and the rings are about to start.
  virtual void Activate(uint64_t acked_features) = 0;
  // `enabled`: the ring may be processed with side effects (vhost-user SET_VRING_ENABLE);
  // QueueEnabled tells of changes.
  virtual void QueueStarted(uint32_t queue_index, SplitVirtqueue* queue, bool enabled) = 0;
  virtual void QueueEnabled(uint32_t queue_index, bool enabled) = 0;
  virtual void QueueNotified(uint32_t queue_index) = 0;
  // The queue now reads a new memory table (its chains from now on point into it); `old` is the
  // memory that chains the device still holds point into (docs/ARCHITECTURE.md, "Guest buffers
  // have one owner"): keep it while they are out.
  virtual void QueueMemoryReplaced(uint32_t queue_index,
                                   std::shared_ptr<const GuestMemory> old) = 0;
  // Completes (or fails) every request the device still holds from this queue; afterwards the
  // queue pointer is no longer valid.
  virtual void QueueStopping(uint32_t queue_index) = 0;
  // How the regions of SharedMemoryRegions() get their mappings; null when the transport has no
  // way (then nothing can be mapped). A device reset drops the mappings on the VMM's side.
  virtual void SetSharedMemoryMapper(std::shared_ptr<SharedMemoryMapper> mapper) { (void)mapper; }
  // Drops every piece of device state: the frontend went away or reset the device.
  virtual void Reset() = 0;
  // The device thread is about to end: release what belongs to it (GL contexts are bound to the
  // thread that made them), so that nothing of it is torn down from another thread later.
  virtual void Shutdown() {}
};

}  // namespace vgpu::virtio
