#include "gpu/dmabuf_scanouts.h"

#include <algorithm>
#include <string>

namespace vgpu::gpu {
namespace {

// Exports kept for flips back to a resource no scanout shows any more.
constexpr size_t kMaxSpareExports = 4;

std::string FourccName(uint32_t fourcc) {
  std::string name;
  for (int shift = 0; shift < 32; shift += 8) {
    const char c = static_cast<char>((fourcc >> shift) & 0xff);
    name += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return name;
}

}  // namespace

bool DmabufScanouts::Show(uint32_t scanout_id, const Resource& resource, bool changed) {
  Scanout& scanout = scanouts_[scanout_id];
  const bool same_resource = scanout.dmabuf.active() && scanout.dmabuf.resource == resource.id;
  if (same_resource && !changed && scanout.dmabuf.display_generation == display_.generation()) {
    return true;  // Shown already, on this socket.
  }
  if (scanout.rect.x != 0 || scanout.rect.y != 0) {
    LogScanoutPath(scanout, ScanoutPath::kReadBack,
                   "%s: scanout path: read-back for scanout %u (it starts at %u,%u inside resource "
                   "%u, and QEMU shows a dmabuf from its top-left corner)",
                   renderer_.name(), scanout_id, scanout.rect.x, scanout.rect.y,
                   resource.id.value());
    return false;
  }
  if (!same_resource) {
    Result<renderer::ScanoutExport> exported = ExportFor(scanout_id, resource.id);
    if (!exported) {
      LogScanoutPath(scanout, ScanoutPath::kReadBack,
                     "%s: scanout path: read-back for scanout %u (resource %u has no dmabuf: %s)",
                     renderer_.name(), scanout_id, resource.id.value(),
                     exported.error().message.c_str());
      return false;
    }
    // The old dmabuf is replaced by the new DMABUF_SCANOUT; ours is kept for a flip back.
    Stop(scanout_id, End::kReplaceKeepSpare);
    scanout.dmabuf.resource = resource.id;
    scanout.dmabuf.exported = std::move(*exported);
  }
  if (!Announce(scanout_id)) return true;  // The display is gone.
  // The scanout has no SCANOUT surface now: a later read-back announces its own again.
  scanout.announced_width = 0;
  scanout.announced_height = 0;
  const renderer::ScanoutExport& exported = scanout.dmabuf.exported;
  LogScanoutPath(scanout, ScanoutPath::kDmabuf,
                 "%s: scanout path: dmabuf (scanout %u shows resource %u from a %ux%u dmabuf, "
                 "stride %u, fourcc %s, through %s; each flush is a DMABUF_UPDATE, answered once "
                 "the VMM has drawn it)",
                 renderer_.name(), scanout_id, resource.id.value(), exported.width, exported.height,
                 exported.stride, FourccName(exported.fourcc).c_str(),
                 display_.supports_dmabuf2() ? "DMABUF_SCANOUT2" : "DMABUF_SCANOUT");
  // QEMU shows a new scanout with its first update, as it does for SCANOUT.
  Update(scanout_id, Rect{0, 0, scanout.rect.width, scanout.rect.height}, 0);
  return true;
}

Result<renderer::ScanoutExport> DmabufScanouts::ExportFor(uint32_t scanout_id,
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
  if (unexportable_.contains(resource)) {
    return MakeError(ErrorKind::kUnsupported, "its export failed before");
  }
  Result<renderer::ScanoutExport> exported = renderer_.ExportScanout(resource);
  if (!exported) unexportable_.insert(resource);
  return exported;
}

bool DmabufScanouts::Announce(uint32_t scanout_id) {
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
  if (Result<void> sent = display_.SendDmabufScanout(message, exported.dmabuf.get()); !sent) {
    // The send detached the display; the scanout is read back if a new one comes.
    Stop(scanout_id, End::kReplaceKeepSpare);
    return false;
  }
  scanout.dmabuf.display_generation = display_.generation();
  return true;
}

void DmabufScanouts::Stop(uint32_t scanout_id, End end) {
  ScanoutDmabuf& dmabuf = scanouts_[scanout_id].dmabuf;
  if (!dmabuf.active()) return;
  if (end != End::kReplaceKeepSpare && display_.attached() &&
      dmabuf.display_generation == display_.generation()) {
    // The VMM drops its import. A failed send detaches: nothing to undo.
    (void)display_.SendDmabufScanoutDisable(scanout_id);
  }
  // A pending update has nothing to show any more; its flushes are answered with the reply to
  // the one in flight (OnUpdateDone).
  dmabuf.pending_damage.reset();
  const ResourceId resource = dmabuf.resource;
  renderer::ScanoutExport exported = std::move(dmabuf.exported);
  dmabuf.exported = renderer::ScanoutExport{};
  dmabuf.resource = ResourceId{0};
  const bool shown_elsewhere =
      std::any_of(scanouts_.begin(), scanouts_.end(), [&](const Scanout& other) {
        return other.dmabuf.active() && other.dmabuf.resource == resource;
      });
  if (end == End::kDisable || shown_elsewhere) return;  // `exported` closes our fd here.
  spare_exports_.emplace_back(resource, std::move(exported));
  if (spare_exports_.size() > kMaxSpareExports) spare_exports_.pop_front();
}

void DmabufScanouts::ForgetResource(ResourceId resource) {
  std::erase_if(spare_exports_, [&](const auto& spare) { return spare.first == resource; });
  unexportable_.erase(resource);
}

void DmabufScanouts::Update(uint32_t scanout_id, const Rect& damage, uint64_t flush) {
  ScanoutDmabuf& dmabuf = scanouts_[scanout_id].dmabuf;
  // A new display socket has not seen the dmabuf yet.
  if (dmabuf.display_generation != display_.generation() && !Announce(scanout_id)) return;
  if (flush != 0) ++flush_waits_.at(flush).outstanding;
  if (dmabuf.update_in_flight) {
    // QEMU is not reading until it answers the one in flight: merge, send with its reply.
    dmabuf.pending_damage = dmabuf.pending_damage ? Union(*dmabuf.pending_damage, damage) : damage;
    if (flush != 0) dmabuf.pending_flushes.push_back(flush);
    return;
  }
  std::vector<uint64_t> flushes;
  if (flush != 0) flushes.push_back(flush);
  Send(scanout_id, damage, std::move(flushes));
}

void DmabufScanouts::Send(uint32_t scanout_id, const Rect& damage, std::vector<uint64_t> flushes) {
  ScanoutDmabuf& dmabuf = scanouts_[scanout_id].dmabuf;
  // In flight before the send: a reply that will never come is reported from inside it.
  dmabuf.update_in_flight = true;
  dmabuf.in_flight_flushes = std::move(flushes);
  renderer_.FlushForScanout();
  ++diagnostics_.statistics.display_updates;
  const display::Update update{scanout_id, damage.x, damage.y, damage.width, damage.height};
  display_.SendDmabufUpdate(
      update, [this, alive = std::weak_ptr<bool>(alive_), epoch = epoch_, scanout_id](bool drawn) {
        // After a reset (or with this object gone) the flushes it carried were dropped.
        if (alive.expired() || epoch != epoch_) return;
        OnUpdateDone(scanout_id, drawn);
      });
}

void DmabufScanouts::OnUpdateDone(uint32_t scanout_id, bool drawn) {
  ScanoutDmabuf& dmabuf = scanouts_[scanout_id].dmabuf;
  dmabuf.update_in_flight = false;
  std::vector<uint64_t> answered = std::exchange(dmabuf.in_flight_flushes, {});
  std::optional<Rect> next_damage = std::exchange(dmabuf.pending_damage, std::nullopt);
  std::vector<uint64_t> next_flushes = std::exchange(dmabuf.pending_flushes, {});
  // Without a reply (timeout, detach) the channel answers no more requests: neither will the
  // next one be, so its flushes are answered now too.
  const bool send_next = drawn && next_damage && dmabuf.active() && display_.attached();
  if (!send_next) answered.insert(answered.end(), next_flushes.begin(), next_flushes.end());
  for (uint64_t flush : answered) ReleaseFlush(flush);
  if (send_next) Send(scanout_id, *next_damage, std::move(next_flushes));
}

uint64_t DmabufScanouts::BeginFlush(Reply reply) {
  // One count for the flush itself, because a reply that will never come is reported at once,
  // from inside the send.
  const uint64_t flush = next_flush_id_++;
  flush_waits_.emplace(flush, FlushWait{std::move(reply), 1});
  return flush;
}

void DmabufScanouts::EndFlush(uint64_t flush) { ReleaseFlush(flush); }

void DmabufScanouts::ReleaseFlush(uint64_t flush) {
  auto it = flush_waits_.find(flush);
  if (it == flush_waits_.end()) return;  // Dropped: its queue stopped.
  if (--it->second.outstanding > 0) return;
  Reply reply = std::move(it->second.reply);
  flush_waits_.erase(it);
  // A fenced flush now waits for its fence like any other fenced command.
  completions_.Finish(std::move(reply), Response::Ok());
}

void DmabufScanouts::Reset() {
  flush_waits_.clear();
  ++epoch_;
  for (uint32_t i = 0; i < kMaxScanouts; ++i) Stop(i, End::kDisable);
  spare_exports_.clear();
  unexportable_.clear();
}

}  // namespace vgpu::gpu
