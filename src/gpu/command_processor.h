// CommandProcessor: decodes, validates and executes virtio-gpu commands (§5.7.6), and sends what
// the guest shows to the display channel.
//
//   CommandProcessor processor(config, &display_channel, renderer);  // Either may be null.
//   ControlOutcome outcome = processor.HandleControl(chain, on_complete);
//   if (outcome.state == ControlOutcome::State::kDone) {
//     queue.PushUsed(chain.head_index, outcome.used_length);
//   }  // Otherwise on_complete(used_length) comes later, from the device thread.
//   processor.HandleCursor(cursor_chain);                 // Cursor queue: nothing to write.
//
// 2D resources live in host memory (software2d) in every mode. With a 3D renderer (virgl), 3D
// resources, contexts and SUBMIT_3D go to it, and every fenced command is answered only when
// the renderer signals its fence (§5.7.6.7), in fence order per timeline. A 3D scanout is shown
// through a dmabuf where the renderer exports one (DMABUF_SCANOUT once, DMABUF_UPDATE per flush,
// the flush answered when the VMM has drawn: command_processor_dmabuf.cc); otherwise flushed
// rectangles are read back and sent as UPDATE. The choice is made per scanout and logged.
//
// Decode before use: each request is copied out of the chain into a struct, validated with
// overflow-safe arithmetic, then executed. A bad request gets the matching ERR_* response and a
// rate-limited log line (ARCHITECTURE.md error tier 1).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "base/log.h"
#include "gpu/command_recorder.h"
#include "gpu/display_channel.h"
#include "gpu/protocol.h"
#include "gpu/resource_table.h"
#include "gpu/scanout.h"
#include "renderer/renderer.h"
#include "virtio/descriptor_chain.h"

namespace vgpu::gpu {

struct CommandProcessorConfig {
  uint64_t max_host_memory = 256ull << 20;
  bool edid_offered = true;  // VIRTIO_GPU_F_EDID offered (not headless).
};

// The largest SUBMIT_3D command stream accepted (Mesa's virgl driver sends at most 64 KiB).
inline constexpr uint32_t kMaxSubmitBytes = 4u << 20;

struct CommandStatistics {
  uint64_t commands = 0;
  uint64_t errors = 0;
  uint64_t cursor_commands = 0;
  uint64_t display_updates = 0;
  uint64_t fences_completed = 0;
};

struct ControlOutcome {
  enum class State {
    kDone,           // Answered: used_length bytes written.
    kWaitingForVmm,  // GET_DISPLAY_INFO / GET_EDID forwarded; later commands must wait.
    // Fenced, or a RESOURCE_FLUSH waiting for the VMM to draw a dmabuf; later commands may
    // proceed.
    kWaitingForFence,
  };
  State state = State::kDone;
  uint32_t used_length = 0;
};

class CommandProcessor {
 public:
  using Completion = std::function<void(uint32_t used_length)>;

  CommandProcessor(const CommandProcessorConfig& config, DisplayChannel* display,
                   renderer::Renderer* renderer = nullptr);

  // The driver's features (EDID, RESOURCE_UUID, CONTEXT_INIT).
  void set_acked_features(uint64_t features) { acked_features_ = features; }

  ControlOutcome HandleControl(const virtio::DescriptorChain& chain, Completion on_complete);
  void HandleCursor(const virtio::DescriptorChain& chain);

  // A fence the renderer signalled: answers, in order, every held command of that timeline whose
  // fence id is at most the signalled one.
  void OnFenceSignalled(const renderer::FenceSignal& fence);
  // Forgets held fenced commands and flushes waiting for the display without answering them
  // (their queue stopped).
  void DropHeldCommands();

  // Drops every resource, context and scanout (device reset or disconnect).
  void Reset();

  const ResourceTable& resources() const { return resources_; }
  const CommandStatistics& statistics() const { return statistics_; }
  const Scanout& scanout(uint32_t index) const { return scanouts_[index]; }
  // Fenced commands and flushes that wait for the display.
  size_t held_commands() const { return held_.size() + flush_waits_.size(); }

 private:
  // A fenced command's response, held until its fence signals.
  struct HeldCommand {
    renderer::FenceSignal fence;
    virtio::DescriptorChain chain;
    std::vector<uint8_t> response;
    Completion on_complete;
  };
  // A RESOURCE_FLUSH whose response waits for the replies to the DMABUF_UPDATEs of its damage.
  struct FlushWait {
    virtio::DescriptorChain chain;
    CtrlHdr header;
    Completion on_complete;
    uint32_t outstanding = 0;  // Replies still to come (+1 while the flush is being sent).
  };

  // VHOST_DEVICE_GPU_RECORD_CONTROL: the chain's readable bytes, as the guest laid them out.
  void RecordControlRequest(const virtio::DescriptorChain& chain);
  ControlOutcome Dispatch(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                          Completion& on_complete);
  // Answers `response` for `request`: now, or when its fence signals (3D mode, fenced request).
  ControlOutcome Finish(const virtio::DescriptorChain& chain, const CtrlHdr& request,
                        std::span<const uint8_t> response, Completion& on_complete);
  ControlOutcome FinishHeader(const virtio::DescriptorChain& chain, const CtrlHdr& request,
                              ResponseType type, Completion& on_complete);
  template <class T>
  ControlOutcome FinishStruct(const virtio::DescriptorChain& chain, const CtrlHdr& request,
                              const T& response, Completion& on_complete) {
    return Finish(chain, request,
                  std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&response), sizeof(T)),
                  on_complete);
  }

  // Display and EDID, possibly answered by the VMM.
  ControlOutcome GetDisplayInfo(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                                Completion& on_complete);
  ControlOutcome GetEdid(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                         Completion& on_complete);
  RespDisplayInfo LocalDisplayInfo() const;
  RespEdid LocalEdid(uint32_t scanout_id) const;
  void RecordDisplayInfo(const RespDisplayInfo& info);

  // 2D commands (command_processor.cc).
  ResponseType ResourceCreate2d(const virtio::DescriptorChain& chain);
  ResponseType ResourceUnref(const virtio::DescriptorChain& chain);
  ResponseType SetScanout(const virtio::DescriptorChain& chain);
  ControlOutcome ResourceFlush(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                               Completion& on_complete);
  ResponseType TransferToHost2d(const virtio::DescriptorChain& chain);
  ResponseType AttachBacking(const virtio::DescriptorChain& chain);
  ResponseType DetachBacking(const virtio::DescriptorChain& chain);
  ControlOutcome AssignUuid(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                            Completion& on_complete);

  // 3D commands (command_processor_3d.cc); each needs the renderer.
  ControlOutcome GetCapsetInfo(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                               Completion& on_complete);
  ControlOutcome GetCapset(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                           Completion& on_complete);
  ResponseType ContextCreate(const virtio::DescriptorChain& chain, const CtrlHdr& header);
  ResponseType ContextDestroy(const CtrlHdr& header);
  ResponseType ContextResource(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                               bool attach);
  ResponseType ResourceCreate3d(const virtio::DescriptorChain& chain);
  ResponseType Transfer3d(const virtio::DescriptorChain& chain, const CtrlHdr& header,
                          bool to_host);
  ResponseType Submit3d(const virtio::DescriptorChain& chain, const CtrlHdr& header);
  ResponseType TransferToRenderer2d(Resource& resource, const gpu::TransferToHost2d& request);
  ResponseType AttachRendererBacking(Resource& resource, BackingStore backing);

  void DisableScanout(uint32_t scanout_id);
  // Sends the part of `resource` inside `rect` (resource coordinates) to every scanout showing
  // it. DMABUF_UPDATEs answer flush `flush` (0: none) when their replies come.
  void SendToScanouts(Resource& resource, const Rect& rect, uint64_t flush = 0);
  bool ShowsDmabuf(const Resource& resource, const Rect& rect) const;

  // The dmabuf path (command_processor_dmabuf.cc). SET_SCANOUT of a 3D resource: true when the
  // scanout is now shown through a dmabuf (or needs nothing more), false to read it back.
  bool ShowThroughDmabuf(uint32_t scanout_id, const Resource& resource, bool changed);
  Result<renderer::ScanoutExport> ExportFor(uint32_t scanout_id, ResourceId resource);
  Result<void> AnnounceDmabuf(uint32_t scanout_id);
  // What becomes of a scanout's dmabuf that it stops showing.
  enum class DmabufEnd {
    kDisable,           // DMABUF_SCANOUT without an fd; our fd closed (SET_SCANOUT 0, UNREF).
    kDisableKeepSpare,  // The same, our fd kept for a flip back (the scanout is read back now).
    kReplaceKeepSpare,  // No message (a new DMABUF_SCANOUT follows); our fd kept.
  };
  void StopDmabuf(uint32_t scanout_id, DmabufEnd end);
  void QueueDmabufUpdate(uint32_t scanout_id, const Rect& damage, uint64_t flush);
  void SendDmabufUpdate(uint32_t scanout_id, const Rect& damage, std::vector<uint64_t> flushes);
  void OnDmabufUpdateDone(uint32_t scanout_id, bool drawn);
  // One reply a flush waited for has come (or never will); answers it after the last.
  void ReleaseFlush(uint64_t flush);
  void LogScanoutPath(uint32_t scanout_id, ScanoutPath path, const char* format, ...)
      __attribute__((format(printf, 4, 5)));
  void SendUpdate(uint32_t scanout_id, Resource& resource, const Rect& resource_rect);
  void DestroyResource(Resource& resource);
  bool CursorImage(uint32_t resource_id, std::array<uint32_t, kCursorSize * kCursorSize>& pixels);
  ResponseType Reject(ResponseType type, const char* format, ...)
      __attribute__((format(printf, 3, 4)));

  const CommandProcessorConfig config_;
  DisplayChannel* const display_;
  renderer::Renderer* const renderer_;
  uint64_t acked_features_ = 0;
  ResourceTable resources_;
  std::array<Scanout, kMaxScanouts> scanouts_{};
  std::vector<uint32_t> contexts_;  // Live 3D context ids.
  std::deque<HeldCommand> held_;    // Fenced commands waiting for the renderer, in order.
  std::map<uint64_t, FlushWait> flush_waits_;  // By id; ids are never reused.
  uint64_t next_flush_id_ = 1;
  // Exports of 3D resources that no scanout shows any more, newest last, kept for a flip back
  // (a double-buffered guest alternates between two resources on every frame). Few, so that a
  // guest cannot make the daemon hold an fd per resource.
  std::deque<std::pair<ResourceId, renderer::ScanoutExport>> spare_exports_;
  std::set<uint32_t> unexportable_;  // 3D resources whose export failed: not tried again.
  // Changes with Reset(): a DMABUF_UPDATE reply from before it finds nothing to answer.
  uint64_t display_epoch_ = 0;
  // Display callbacks hold a weak_ptr to it: one that outlives the processor does nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<uint8_t> staging_;  // Display conversion and read-back, reused.
  std::vector<uint8_t> submit_buffer_;
  CommandStatistics statistics_;
  RateLimitedLog guest_errors_;
  // Debug: 3D commands appended to $VHOST_DEVICE_GPU_RECORD_3D when set (command_recorder.h).
  CommandRecorder recorder_ = CommandRecorder::FromEnvironment();
  CommandRecorder control_recorder_ =
      CommandRecorder::FromEnvironment(kRecordControlEnvironmentVariable);
};

}  // namespace vgpu::gpu
