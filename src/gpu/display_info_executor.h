// DisplayInfoExecutor: GET_DISPLAY_INFO and GET_EDID (§5.7.6.8), which the VMM answers: it
// knows the size of each window. Asked over the display channel without blocking the thread; the
// command holds the control queue until the answer (or the channel's timeout) comes, so that
// responses keep their order. Without a display (headless, or not attached yet) the answer is
// made here, from what the VMM last said or QEMU's defaults.
//
//   info.QueryDisplayInfo(std::move(reply));           // Answered later, through Completions.
//   info.QueryEdid(request, std::move(reply), acked_features);
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "gpu/completions.h"
#include "gpu/display_channel.h"
#include "gpu/reply.h"
#include "gpu/scanout.h"

namespace vgpu::gpu {

class DisplayInfoExecutor {
 public:
  DisplayInfoExecutor(ScanoutArray& scanouts, DisplayChannel* display, Completions& completions,
                      bool edid_offered)
      : scanouts_(scanouts),
        display_(display),
        completions_(completions),
        edid_offered_(edid_offered) {}
  DisplayInfoExecutor(const DisplayInfoExecutor&) = delete;
  DisplayInfoExecutor& operator=(const DisplayInfoExecutor&) = delete;

  void QueryDisplayInfo(Reply reply);
  void QueryEdid(const GetEdid& request, Reply reply, uint64_t acked_features);

  // Replies waiting for the VMM are forgotten (their queue stopped or the device reset); a late
  // answer finds nothing.
  void DropHeld() { waiting_.clear(); }
  size_t held() const { return waiting_.size(); }

 private:
  RespDisplayInfo LocalDisplayInfo() const;
  RespEdid LocalEdid(uint32_t scanout_id) const;
  void RecordDisplayInfo(const RespDisplayInfo& info);
  // Holds `reply` (and the queue) until Take(id).
  uint64_t Hold(Reply reply);
  std::optional<Reply> Take(uint64_t id);

  ScanoutArray& scanouts_;
  DisplayChannel* const display_;
  Completions& completions_;
  const bool edid_offered_;
  std::map<uint64_t, Reply> waiting_;
  uint64_t next_id_ = 1;
  // Display callbacks hold a weak_ptr to it: one that outlives this object does nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vgpu::gpu
