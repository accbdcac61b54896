#include "gpu/display_info_executor.h"

#include <cstring>
#include <string>

#include "gpu/edid.h"

namespace vgpu::gpu {

uint64_t DisplayInfoExecutor::Hold(Reply reply) {
  reply.HoldQueue();
  const uint64_t id = next_id_++;
  waiting_.emplace(id, std::move(reply));
  return id;
}

std::optional<Reply> DisplayInfoExecutor::Take(uint64_t id) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return std::nullopt;
  Reply reply = std::move(it->second);
  waiting_.erase(it);
  return reply;
}

RespDisplayInfo DisplayInfoExecutor::LocalDisplayInfo() const {
  RespDisplayInfo info{};
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    if (!scanouts_[i].display_enabled) continue;
    info.pmodes[i].r = Rect{0, 0, scanouts_[i].display_width, scanouts_[i].display_height};
    info.pmodes[i].enabled = 1;
  }
  return info;
}

void DisplayInfoExecutor::RecordDisplayInfo(const RespDisplayInfo& info) {
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    const DisplayOne& mode = info.pmodes[i];
    scanouts_[i].display_enabled = mode.enabled != 0 && mode.r.width > 0 && mode.r.height > 0;
    scanouts_[i].display_width = mode.r.width;
    scanouts_[i].display_height = mode.r.height;
  }
}

void DisplayInfoExecutor::QueryDisplayInfo(Reply reply) {
  if (display_ == nullptr || !display_->attached()) {
    completions_.Finish(std::move(reply),
                        Response::Of(ResponseType::kOkDisplayInfo, LocalDisplayInfo()));
    return;
  }
  // The VMM knows the window sizes; ask it, without blocking (the reply may never come).
  const uint64_t id = Hold(std::move(reply));
  display_->RequestDisplayInfo(
      [this, alive = std::weak_ptr<bool>(alive_), id](std::optional<RespDisplayInfo> answer) {
        if (alive.expired()) return;
        RespDisplayInfo info{};
        if (answer) {
          // Copied field by field: only what the spec defines goes to the guest.
          for (uint32_t i = 0; i < kMaxScanouts; ++i) {
            info.pmodes[i].r = answer->pmodes[i].r;
            info.pmodes[i].enabled = answer->pmodes[i].enabled ? 1 : 0;
            info.pmodes[i].flags = answer->pmodes[i].flags;
          }
          RecordDisplayInfo(info);
        } else {
          info = LocalDisplayInfo();
        }
        // After a queue stop or a reset the reply is gone: nothing is written.
        if (std::optional<Reply> held = Take(id)) {
          completions_.Finish(std::move(*held), Response::Of(ResponseType::kOkDisplayInfo, info));
        }
      });
}

RespEdid DisplayInfoExecutor::LocalEdid(uint32_t scanout_id) const {
  const Scanout& scanout = scanouts_[scanout_id];
  const bool known = scanout.display_width > 0 && scanout.display_height > 0;
  const EdidBlock block = GenerateEdid(known ? scanout.display_width : kDefaultDisplayWidth,
                                       known ? scanout.display_height : kDefaultDisplayHeight);
  RespEdid edid{};
  edid.size = static_cast<uint32_t>(block.size());
  std::memcpy(edid.edid, block.data(), block.size());
  return edid;
}

void DisplayInfoExecutor::QueryEdid(const GetEdid& request, Reply reply, uint64_t acked_features) {
  if (!edid_offered_ || ((acked_features >> kFeatureEdid) & 1) == 0) {
    completions_.Finish(std::move(reply),
                        Fail(Failure::kRefused, "GET_EDID: VIRTIO_GPU_F_EDID not negotiated"));
    return;
  }
  const uint32_t scanout_id = request.scanout;
  if (scanout_id >= kMaxScanouts) {
    completions_.Finish(
        std::move(reply),
        Fail(Failure::kInvalidParameter, "GET_EDID: scanout id " + std::to_string(scanout_id)));
    return;
  }
  if (display_ == nullptr || !display_->attached()) {
    completions_.Finish(std::move(reply),
                        Response::Of(ResponseType::kOkEdid, LocalEdid(scanout_id)));
    return;
  }
  const uint64_t id = Hold(std::move(reply));
  display_->RequestEdid(scanout_id, [this, alive = std::weak_ptr<bool>(alive_), id,
                                     scanout_id](std::optional<RespEdid> answer) {
    if (alive.expired()) return;
    RespEdid edid{};
    if (answer && answer->size > 0 && answer->size <= sizeof(edid.edid)) {
      edid.size = answer->size;
      std::memcpy(edid.edid, answer->edid, answer->size);
    } else {
      // An old QEMU (no EDID support) or no answer: an EDID of our own for the head's size.
      edid = LocalEdid(scanout_id);
    }
    if (std::optional<Reply> held = Take(id)) {
      completions_.Finish(std::move(*held), Response::Of(ResponseType::kOkEdid, edid));
    }
  });
}

}  // namespace vgpu::gpu
