// CommandDispatcher: the device model. It owns the tables (resources, contexts, scanouts), the
// software 2D renderer, and one executor per concern, and hands each decoded command to its
// executor, whose result goes to Completions (docs/ARCHITECTURE.md, "The device model").
//
//   CommandDispatcher model(config, display, renderer_3d);     // Either may be null.
//   DecodedCommand decoded = DecodeControl(chain, model.decode_policy());
//   model.Dispatch(std::move(decoded), Reply(std::move(pending), decoded_header));
//   model.DispatchCursor(DecodeCursor(cursor_chain));
//
// Resources live in the software renderer (2D) or the 3D renderer; with a 3D renderer every
// fenced command is answered when the renderer signals its fence (§5.7.6.7), and 3D scanouts are
// shown through dmabufs where the renderer exports them (DmabufScanouts), else read back.
#pragma once

#include <chrono>
#include <memory>

#include "gpu/blob_executor.h"
#include "gpu/command.h"
#include "gpu/command_decoder.h"
#include "gpu/command_recorder.h"
#include "gpu/completions.h"
#include "gpu/context_executor.h"
#include "gpu/context_table.h"
#include "gpu/cursor_executor.h"
#include "gpu/diagnostics.h"
#include "gpu/display_channel.h"
#include "gpu/display_info_executor.h"
#include "gpu/dmabuf_scanouts.h"
#include "gpu/host_visible_region.h"
#include "gpu/reply.h"
#include "gpu/resource_executor.h"
#include "gpu/resource_table.h"
#include "gpu/scanout.h"
#include "gpu/scanout_executor.h"
#include "renderer/renderer.h"
#include "renderer/software2d/software2d_renderer.h"

namespace vgpu::gpu {

// 60 read-backs a second per scanout: more than QEMU's displays show (docs/ARCHITECTURE.md).
inline constexpr std::chrono::nanoseconds kDefaultReadbackInterval{1'000'000'000 / 60};

struct DispatcherConfig {
  uint64_t max_host_memory = 256ull << 20;
  bool edid_offered = true;  // VIRTIO_GPU_F_EDID offered (not headless).
  // At most one read-back of a 3D scanout per interval (ReadbackPacer); zero: every flush.
  std::chrono::nanoseconds readback_interval = kDefaultReadbackInterval;
  // The host-visible shared memory region's size (shmid 1); 0: none (nothing can be mapped).
  uint64_t host_visible_size = 0;
};

class CommandDispatcher {
 public:
  // `display` is null when headless; `renderer_3d` is null in 2D mode. Both outlive this.
  CommandDispatcher(const DispatcherConfig& config, DisplayChannel* display,
                    renderer::Renderer* renderer_3d = nullptr);
  CommandDispatcher(const CommandDispatcher&) = delete;
  CommandDispatcher& operator=(const CommandDispatcher&) = delete;

  // The driver's features (EDID, RESOURCE_UUID, RESOURCE_BLOB, CONTEXT_INIT).
  void set_acked_features(uint64_t features) { acked_features_ = features; }
  DecodePolicy decode_policy() const { return DecodePolicy{.three_d = renderer_3d_ != nullptr}; }

  void Dispatch(DecodedCommand decoded, Reply reply);
  void DispatchCursor(const CommandResult<CursorCommand>& command);
  // A fence the renderer signalled (Completions).
  void OnFenceSignalled(const renderer::FenceSignal& fence) {
    completions_.OnFenceSignalled(fence);
  }
  // Where RESOURCE_MAP_BLOB's mappings go (the transport's); null: nowhere.
  void SetSharedMemoryMapper(std::shared_ptr<virtio::SharedMemoryMapper> mapper) {
    region_.SetMapper(std::move(mapper));
  }
  const HostVisibleRegion& host_visible_region() const { return region_; }
  // The control queue stopped: what was held is forgotten (its chains went back already).
  void DropHeld();
  // Drops every resource, context and scanout (device reset or disconnect).
  void Reset();

  const ResourceTable& resources() const { return resources_; }
  const CommandStatistics& statistics() const { return diagnostics_.statistics; }
  const Scanout& scanout(uint32_t index) const { return scanouts_[index]; }
  // Commands held for a fence, the VMM or a dmabuf update.
  size_t held_commands() const;
  const renderer::software2d::Software2dRenderer& software() const { return software_; }
  const ReadbackPacer& scanout_pacer() const { return scanout_executor_.pacer(); }

 private:
  void Record3d(const CommandBody& body);
  bool Acked(uint32_t feature) const { return (acked_features_ & (1ull << feature)) != 0; }

  const DispatcherConfig config_;
  renderer::Renderer* const renderer_3d_;
  uint64_t acked_features_ = 0;
  Diagnostics diagnostics_;
  renderer::software2d::Software2dRenderer software_;
  ResourceTable resources_;
  ContextTable contexts_;
  ScanoutArray scanouts_ = InitialScanouts();
  HostVisibleRegion region_;
  Completions completions_;
  std::unique_ptr<DmabufScanouts> dmabuf_;  // With a 3D renderer and a display.
  ScanoutExecutor scanout_executor_;
  DisplayInfoExecutor display_info_;
  ResourceExecutor resource_executor_;
  BlobExecutor blob_executor_;
  ContextExecutor context_executor_;
  CursorExecutor cursor_executor_;
  // Debug: 3D commands appended to $VHOST_DEVICE_GPU_RECORD_3D when set (command_recorder.h).
  CommandRecorder recorder_ = CommandRecorder::FromEnvironment();
};

}  // namespace vgpu::gpu
