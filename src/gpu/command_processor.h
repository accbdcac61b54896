// CommandProcessor: decodes, validates and executes virtio-gpu commands (§5.7.6) for the 2D
// device, and sends what the guest shows to the display channel.
//
//   CommandProcessor processor(config, &display_channel);   // display null when headless.
//   std::optional<uint32_t> used = processor.HandleControl(chain, on_complete);
//   if (used) queue.PushUsed(chain.head_index, *used);     // Else on_complete(used) comes later.
//   processor.HandleCursor(cursor_chain);                     // Cursor queue: nothing to write.
//
// Decode before use: each request is copied out of the chain into a struct, validated with
// overflow-safe arithmetic, then executed. A bad request gets the matching ERR_* response and a
// rate-limited log line (ARCHITECTURE.md error tier 1).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>

#include "base/log.h"
#include "gpu/display_channel.h"
#include "gpu/protocol.h"
#include "gpu/resource_table.h"
#include "gpu/scanout.h"
#include "virtio/descriptor_chain.h"

namespace vgpu::gpu {

struct CommandProcessorConfig {
  uint64_t max_host_memory = 256ull << 20;
  bool edid_offered = true;  // VIRTIO_GPU_F_EDID offered (not headless).
};

struct CommandStatistics {
  uint64_t commands = 0;
  uint64_t errors = 0;
  uint64_t cursor_commands = 0;
  uint64_t display_updates = 0;
};

class CommandProcessor {
 public:
  using Completion = std::function<void(uint32_t used_length)>;

  CommandProcessor(const CommandProcessorConfig& config, DisplayChannel* display);

  // The driver's features (EDID, RESOURCE_UUID).
  void set_acked_features(uint64_t features) { acked_features_ = features; }

  // Handles one control queue request. Returns the number of bytes written, or nullopt when the
  // command waits for the VMM; `on_complete` is then called exactly once, later, from the device
  // thread (never from inside this call).
  std::optional<uint32_t> HandleControl(const virtio::DescriptorChain& chain,
                                        Completion on_complete);
  void HandleCursor(const virtio::DescriptorChain& chain);

  // Drops every resource and scanout (device reset or disconnect).
  void Reset();

  const ResourceTable& resources() const { return resources_; }
  const CommandStatistics& statistics() const { return statistics_; }
  const Scanout& scanout(uint32_t index) const { return scanouts_[index]; }

 private:
  // Each handler returns the response to write; pending ones return nullopt.
  std::optional<uint32_t> GetDisplayInfo(const virtio::DescriptorChain& chain,
                                         const CtrlHdr& header, Completion on_complete);
  std::optional<uint32_t> GetEdid(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                                  Completion on_complete);
  ResponseType ResourceCreate2d(const virtio::DescriptorChain& chain);
  ResponseType ResourceUnref(const virtio::DescriptorChain& chain);
  ResponseType SetScanout(const virtio::DescriptorChain& chain);
  ResponseType ResourceFlush(const virtio::DescriptorChain& chain);
  ResponseType TransferToHost2d(const virtio::DescriptorChain& chain);
  ResponseType AttachBacking(const virtio::DescriptorChain& chain);
  ResponseType DetachBacking(const virtio::DescriptorChain& chain);
  uint32_t AssignUuid(const virtio::DescriptorChain& chain, const CtrlHdr& header);

  RespDisplayInfo LocalDisplayInfo() const;
  RespEdid LocalEdid(uint32_t scanout_id) const;
  void RecordDisplayInfo(const RespDisplayInfo& info);
  void DisableScanout(uint32_t scanout_id);
  // Sends the part of `resource` inside `rect` (resource coordinates) to every scanout showing it.
  void SendToScanouts(Resource2d& resource, const Rect& rect);
  void SendUpdate(uint32_t scanout_id, Resource2d& resource, const Rect& resource_rect);
  uint32_t Respond(const virtio::DescriptorChain& chain, const CtrlHdr& header, ResponseType type);
  ResponseType Reject(ResponseType type, const char* format, ...)
      __attribute__((format(printf, 3, 4)));

  const CommandProcessorConfig config_;
  DisplayChannel* const display_;
  uint64_t acked_features_ = 0;
  ResourceTable resources_;
  std::array<Scanout, kMaxScanouts> scanouts_{};
  std::vector<uint8_t> staging_;  // Conversion buffer for non-native formats, reused.
  CommandStatistics statistics_;
  RateLimitedLog guest_errors_;
};

}  // namespace vgpu::gpu
