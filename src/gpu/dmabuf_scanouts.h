// DmabufScanouts: 3D scanouts that the VMM shows from a dmabuf of the resource's texture, with
// no pixel leaving the GPU.
//
//   SET_SCANOUT (3D resource)   -> Show: ExportScanout, DMABUF_SCANOUT(2) with the fd, an update
//   RESOURCE_FLUSH              -> Update per scanout: DMABUF_UPDATE of the damage; the flush is
//                                  answered (BeginFlush's Reply) on the updates' replies
//   SET_SCANOUT 0, UNREF, reset -> Stop: DMABUF_SCANOUT without an fd; our fd closed
//
// QEMU shows a dmabuf from its top-left corner (DMABUF_SCANOUT's x and y are ignored) and stops
// reading the socket until it has answered a DMABUF_UPDATE (docs/ARCHITECTURE.md, "Display
// output"). So one update is in flight per scanout; the damage of flushes that come meanwhile is
// merged and goes in the next one. Where the renderer cannot
// export (software GL, no render node), or the scanout starts inside its resource, Show returns
// false and the scanout is read back instead (ScanoutExecutor).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "gpu/completions.h"
#include "gpu/diagnostics.h"
#include "gpu/display_channel.h"
#include "gpu/reply.h"
#include "gpu/resource_table.h"
#include "gpu/scanout.h"
#include "renderer/renderer.h"

namespace vgpu::gpu {

class DmabufScanouts {
 public:
  // What becomes of a scanout's dmabuf that it stops showing.
  enum class End {
    kDisable,           // DMABUF_SCANOUT without an fd; our fd closed (SET_SCANOUT 0, UNREF).
    kDisableKeepSpare,  // The same, our fd kept for a flip back (the scanout is read back now).
    kReplaceKeepSpare,  // No message (a new DMABUF_SCANOUT follows); our fd kept.
  };

  DmabufScanouts(ScanoutArray& scanouts, DisplayChannel& display, renderer::Renderer& renderer,
                 Completions& completions, Diagnostics& diagnostics)
      : scanouts_(scanouts),
        display_(display),
        renderer_(renderer),
        completions_(completions),
        diagnostics_(diagnostics) {}
  DmabufScanouts(const DmabufScanouts&) = delete;
  DmabufScanouts& operator=(const DmabufScanouts&) = delete;

  // SET_SCANOUT of a 3D resource: true when the scanout is now shown through a dmabuf (or needs
  // nothing more), false to read it back.
  bool Show(uint32_t scanout_id, const Resource& resource, bool changed);
  void Stop(uint32_t scanout_id, End end);
  // The resource goes away: no spare export of it is kept, and a new one may be tried.
  void ForgetResource(ResourceId resource);
  // DMABUF_UPDATE of `damage` (scanout-relative) for flush `flush` (0: none); a display socket
  // that has not seen the scanout's dmabuf gets it announced first.
  void Update(uint32_t scanout_id, const Rect& damage, uint64_t flush);

  // A flush whose damage goes out as DMABUF_UPDATEs: the Reply is held until every reply came
  // (or never will). Begin, one Update per scanout, End.
  uint64_t BeginFlush(Reply reply);
  void EndFlush(uint64_t flush);

  // Device reset: every dmabuf scanout ends, exports and held flushes are dropped, and replies
  // still on their way find nothing.
  void Reset();
  // The queue stopped: held flushes are forgotten (their chains went back); their updates stay in
  // flight and the replies find no flush.
  void DropHeld() { flush_waits_.clear(); }
  size_t held() const { return flush_waits_.size(); }

 private:
  struct FlushWait {
    Reply reply;
    uint32_t outstanding = 0;  // Replies still to come (+1 while the flush is being sent).
  };

  Result<renderer::ScanoutExport> ExportFor(uint32_t scanout_id, ResourceId resource);
  bool Announce(uint32_t scanout_id);
  void Send(uint32_t scanout_id, const Rect& damage, std::vector<uint64_t> flushes);
  void OnUpdateDone(uint32_t scanout_id, bool drawn);
  // One reply a flush waited for has come (or never will); answers it after the last.
  void ReleaseFlush(uint64_t flush);

  ScanoutArray& scanouts_;
  DisplayChannel& display_;
  renderer::Renderer& renderer_;
  Completions& completions_;
  Diagnostics& diagnostics_;
  std::map<uint64_t, FlushWait> flush_waits_;  // By id; ids are never reused.
  uint64_t next_flush_id_ = 1;
  // Exports of resources that no scanout shows any more, newest last, kept for a flip back (a
  // double-buffered guest alternates between two resources on every frame). Few, so that a guest
  // cannot make the daemon hold an fd per resource.
  std::deque<std::pair<ResourceId, renderer::ScanoutExport>> spare_exports_;
  std::set<ResourceId> unexportable_;  // Whose export failed: not tried again.
  // Changes with Reset(): a DMABUF_UPDATE reply from before it finds nothing to answer.
  uint64_t epoch_ = 0;
  // Display callbacks hold a weak_ptr to it: one that outlives this object does nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vgpu::gpu
