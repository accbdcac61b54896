// The dmabuf half of CommandProcessor's display output: 3D scanouts that the VMM shows from a
// dmabuf of the resource's texture, with no pixel leaving the GPU.
//
//   SET_SCANOUT (3D resource)  -> ExportScanout, DMABUF_SCANOUT(2) with the fd, DMABUF_UPDATE
//   RESOURCE_FLUSH             -> DMABUF_UPDATE of the damage; the flush is answered on its reply
//   SET_SCANOUT 0, UNREF, reset -> DMABUF_SCANOUT without an fd; our fd closed
//
// Spec: QEMU docs/interop/vhost-user-gpu.rst; shared/reference/qemu-vhost-user-gpu-and-specs.md
// §2.2 says what QEMU does with each message: it shows the dmabuf from its top-left corner
// (DMABUF_SCANOUT's x and y are ignored) and stops reading the socket until it has answered a
// DMABUF_UPDATE. Where the renderer cannot export (software GL, no render node), or the scanout
// starts inside its resource, flushed rectangles are read back instead (command_processor.cc).
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string>

#include "gpu/command_processor.h"
#include "gpu/request_decoding.h"
#include "gpu/response.h"

namespace vgpu::gpu {
namespace {

// Exports kept for flips back to a resource no scanout shows any more (see spare_exports_).
constexpr size_t kMaxSpareExports = 4;

std::string FourccName(uint32_t fourcc) {
  std::string name;
  for (int shift = 0; shift < 32; shift += 8) {
    const char c = static_cast<char>((fourcc >> shift) & 0xff);
    name += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return name;
}

Rect Union(const Rect& a, const Rect& b) {
  // Both lie inside the same scanout, so no sum overflows.
  const uint32_t left = std::min(a.x, b.x);
  const uint32_t top = std::min(a.y, b.y);
  const uint32_t right = std::max(a.x + a.width, b.x + b.width);
  const uint32_t bottom = std::max(a.y + a.height, b.y + b.height);
  return Rect{left, top, right - left, bottom - top};
}

}  // namespace

bool CommandProcessor::ShowThroughDmabuf(uint32_t scanout_id, const Resource& resource,
                                         bool changed) {
  Scanout& scanout = scanouts_[scanout_id];
  const bool same_resource = scanout.dmabuf.active() && scanout.dmabuf.resource == resource.id;
  if (same_resource && !changed && scanout.dmabuf.display_generation == display_->generation()) {
    return true;  // Shown already, on this socket.
  }
  if (scanout.rect.x != 0 || scanout.rect.y != 0) {
    LogScanoutPath(scanout_id, ScanoutPath::kReadBack,
                   "%s: scanout path: read-back for scanout %u (it starts at %u,%u inside resource "
                   "%u, and QEMU shows a dmabuf from its top-left corner)",
                   renderer_->name(), scanout_id, scanout.rect.x, scanout.rect.y,
                   resource.id.value());
    return false;
  }
  if (!same_resource) {
    Result<renderer::ScanoutExport> exported = ExportFor(scanout_id, resource.id);
    if (!exported) {
      LogScanoutPath(scanout_id, ScanoutPath::kReadBack,
                     "%s: scanout path: read-back for scanout %u (resource %u has no dmabuf: %s)",
                     renderer_->name(), scanout_id, resource.id.value(),
                     exported.error().message.c_str());
      return false;
    }
    // The old dmabuf is replaced by the new DMABUF_SCANOUT; ours is kept for a flip back.
    StopDmabuf(scanout_id, DmabufEnd::kReplaceKeepSpare);
    scanout.dmabuf.resource = resource.id;
    scanout.dmabuf.exported = std::move(*exported);
  }
  if (!AnnounceDmabuf(scanout_id)) return true;  // The display is gone.
  // The scanout has no SCANOUT surface now: a later read-back announces its own again.
  scanout.announced_width = 0;
  scanout.announced_height = 0;
  const renderer::ScanoutExport& exported = scanout.dmabuf.exported;
  LogScanoutPath(scanout_id, ScanoutPath::kDmabuf,
                 "%s: scanout path: dmabuf (scanout %u shows resource %u from a %ux%u dmabuf, "
                 "stride %u, fourcc %s, through %s; each flush is a DMABUF_UPDATE, answered once "
                 "the VMM has drawn it)",
                 renderer_->name(), scanout_id, resource.id.value(), exported.width,
                 exported.height, exported.stride, FourccName(exported.fourcc).c_str(),
                 display_->supports_dmabuf2() ? "DMABUF_SCANOUT2" : "DMABUF_SCANOUT");
  // QEMU shows a new scanout with its first update, as it does for SCANOUT.
  QueueDmabufUpdate(scanout_id, Rect{0, 0, scanout.rect.width, scanout.rect.height}, 0);
  return true;
}

Result<renderer::ScanoutExport> CommandProcessor::ExportFor(uint32_t scanout_id,
                                                            ResourceId resource) {
  // 1. Another scanout shows it: share that export.
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    const ScanoutDmabuf& other = scanouts_[i].dmabuf;
    if (i == scanout_id || !other.active() || other.resource != resource) continue;
    return other.exported.Duplicate();
  }
  // 2. A flip back to a resource shown before.
  auto spare = std::find_if(spare_exports_.begin(), spare_exports_.end(),
                            [&](const auto& entry) { return entry.first == resource; });
  if (spare != spare_exports_.end()) {
    renderer::ScanoutExport exported = std::move(spare->second);
    spare_exports_.erase(spare);
    return exported;
  }
  // 3. A new export, unless this resource failed before (each try costs the renderer an
  //    EGLImage, and the answer does not change).
  if (unexportable_.contains(resource.value())) {
    return MakeError(ErrorKind::kUnsupported, "its export failed before");
  }
  Result<renderer::ScanoutExport> exported = renderer_->ExportScanout(resource.value());
  if (!exported) unexportable_.insert(resource.value());
  return exported;
}

Result<void> CommandProcessor::AnnounceDmabuf(uint32_t scanout_id) {
  Scanout& scanout = scanouts_[scanout_id];
  const renderer::ScanoutExport& exported = scanout.dmabuf.exported;
  display::DmabufScanout2 message{};
  message.dmabuf_scanout = display::DmabufScanout{
      .scanout_id = scanout_id,
      .x = scanout.rect.x,
      .y = scanout.rect.y,
      .width = scanout.rect.width,
      .height = scanout.rect.height,
      .fd_width = exported.width,
      .fd_height = exported.height,
      .fd_stride = exported.stride,
      .fd_flags = exported.y0_top ? display::kDmabufFlagY0Top : 0,
      .fd_drm_fourcc = static_cast<int32_t>(exported.fourcc),
  };
  message.modifier = exported.modifier;
  Result<void> sent = display_->SendDmabufScanout(message, exported.dmabuf.get());
  if (!sent) {
    // The send detached the display; the scanout is read back if a new one comes.
    StopDmabuf(scanout_id, DmabufEnd::kReplaceKeepSpare);
    return sent;
  }
  scanout.dmabuf.display_generation = display_->generation();
  return {};
}

void CommandProcessor::StopDmabuf(uint32_t scanout_id, DmabufEnd end) {
  ScanoutDmabuf& dmabuf = scanouts_[scanout_id].dmabuf;
  if (!dmabuf.active()) return;
  if (end != DmabufEnd::kReplaceKeepSpare && display_ != nullptr && display_->attached() &&
      dmabuf.display_generation == display_->generation()) {
    // The VMM drops its import (dpy_gl_scanout_disable). A failed send detaches: nothing to undo.
    (void)display_->SendDmabufScanoutDisable(scanout_id);
  }
  // A pending update has nothing to show any more; its flushes are answered with the reply to
  // the one in flight (OnDmabufUpdateDone).
  dmabuf.pending_damage.reset();
  const ResourceId resource = dmabuf.resource;
  renderer::ScanoutExport exported = std::move(dmabuf.exported);
  dmabuf.exported = renderer::ScanoutExport{};
  dmabuf.resource = ResourceId{0};
  const bool shown_elsewhere =
      std::any_of(scanouts_.begin(), scanouts_.end(), [&](const Scanout& other) {
        return other.dmabuf.active() && other.dmabuf.resource == resource;
      });
  if (end == DmabufEnd::kDisable || shown_elsewhere) return;  // `exported` closes our fd here.
  spare_exports_.emplace_back(resource, std::move(exported));
  if (spare_exports_.size() > kMaxSpareExports) spare_exports_.pop_front();
}

void CommandProcessor::QueueDmabufUpdate(uint32_t scanout_id, const Rect& damage, uint64_t flush) {
  ScanoutDmabuf& dmabuf = scanouts_[scanout_id].dmabuf;
  if (flush != 0) ++flush_waits_.at(flush).outstanding;
  if (dmabuf.update_in_flight) {
    // QEMU is not reading until it answers the one in flight: merge, send with its reply.
    dmabuf.pending_damage = dmabuf.pending_damage ? Union(*dmabuf.pending_damage, damage) : damage;
    if (flush != 0) dmabuf.pending_flushes.push_back(flush);
    return;
  }
  std::vector<uint64_t> flushes;
  if (flush != 0) flushes.push_back(flush);
  SendDmabufUpdate(scanout_id, damage, std::move(flushes));
}

void CommandProcessor::SendDmabufUpdate(uint32_t scanout_id, const Rect& damage,
                                        std::vector<uint64_t> flushes) {
  ScanoutDmabuf& dmabuf = scanouts_[scanout_id].dmabuf;
  // In flight before the send: a reply that will never come is reported from inside it.
  dmabuf.update_in_flight = true;
  dmabuf.in_flight_flushes = std::move(flushes);
  renderer_->FlushForScanout();
  ++statistics_.display_updates;
  const display::Update update{scanout_id, damage.x, damage.y, damage.width, damage.height};
  display_->SendDmabufUpdate(update, [this, alive = std::weak_ptr<bool>(alive_),
                                      epoch = display_epoch_, scanout_id](bool drawn) {
    // After a reset (or with the processor gone) the flushes it carried were dropped.
    if (alive.expired() || epoch != display_epoch_) return;
    OnDmabufUpdateDone(scanout_id, drawn);
  });
}

void CommandProcessor::OnDmabufUpdateDone(uint32_t scanout_id, bool drawn) {
  ScanoutDmabuf& dmabuf = scanouts_[scanout_id].dmabuf;
  dmabuf.update_in_flight = false;
  std::vector<uint64_t> answered = std::exchange(dmabuf.in_flight_flushes, {});
  std::optional<Rect> next_damage = std::exchange(dmabuf.pending_damage, std::nullopt);
  std::vector<uint64_t> next_flushes = std::exchange(dmabuf.pending_flushes, {});
  // Without a reply (timeout, detach) the channel answers no more requests: neither will the
  // next one be, so its flushes are answered now too.
  const bool send_next = drawn && next_damage && dmabuf.active() && display_->attached();
  if (!send_next) answered.insert(answered.end(), next_flushes.begin(), next_flushes.end());
  for (uint64_t flush : answered) ReleaseFlush(flush);
  if (send_next) SendDmabufUpdate(scanout_id, *next_damage, std::move(next_flushes));
}

void CommandProcessor::ReleaseFlush(uint64_t flush) {
  auto it = flush_waits_.find(flush);
  if (it == flush_waits_.end()) return;  // Dropped: its queue stopped.
  if (--it->second.outstanding > 0) return;
  FlushWait wait = std::move(it->second);
  flush_waits_.erase(it);
  // Fenced flushes now wait for their fence like any other fenced command.
  const ControlOutcome outcome =
      FinishHeader(wait.chain, wait.header, ResponseType::kOkNodata, wait.on_complete);
  if (outcome.state == ControlOutcome::State::kDone) wait.on_complete(outcome.used_length);
}

void CommandProcessor::LogScanoutPath(uint32_t scanout_id, ScanoutPath path, const char* format,
                                      ...) {
  // Once per scanout and path: which way 3D results reach the display is the first thing to
  // know about a setup, but not on every page flip.
  ScanoutPath& logged = scanouts_[scanout_id].logged_path;
  if (logged == path) return;
  logged = path;
  if (!LogEnabled(LogLevel::kInfo)) return;
  va_list arguments;
  va_start(arguments, format);
  LogMessageV(LogLevel::kInfo, format, arguments);
  va_end(arguments);
}

}  // namespace vgpu::gpu
