// ScanoutExecutor: what the guest shows and how it reaches the VMM's display: SET_SCANOUT and
// RESOURCE_FLUSH (§5.7.6.8), sent as SCANOUT + UPDATE messages (pixels read from the resource's
// renderer), or, for 3D resources the renderer can export, through DmabufScanouts.
//
//   ScanoutExecutor scanouts(array, resources, display, dmabuf, completions, diagnostics);
//   CommandResult<Response> shown = scanouts.Set(request);
//   scanouts.Flush(request, std::move(reply));    // Answered now, or when the VMM has drawn.
//
// A 2D resource's rows go to the display from where they are when they already are x8r8g8b8,
// converted into a staging buffer otherwise; a 3D resource without a dmabuf is read back
// (Renderer::ReadRect), at most once per `readback_interval` per scanout (ReadbackPacer). The
// choice is made per scanout and logged once.
#pragma once

#include <chrono>
#include <vector>

#include "gpu/command_error.h"
#include "gpu/completions.h"
#include "gpu/diagnostics.h"
#include "gpu/display_channel.h"
#include "gpu/dmabuf_scanouts.h"
#include "gpu/readback_pacer.h"
#include "gpu/reply.h"
#include "gpu/resource_table.h"
#include "gpu/response.h"
#include "gpu/scanout.h"

namespace vgpu::gpu {

class ScanoutExecutor {
 public:
  // `display` is null when headless; `dmabuf` is null without a 3D renderer.
  ScanoutExecutor(ScanoutArray& scanouts, ResourceTable& resources, DisplayChannel* display,
                  DmabufScanouts* dmabuf, Completions& completions, Diagnostics& diagnostics,
                  std::chrono::nanoseconds readback_interval);

  CommandResult<Response> Set(const SetScanout& request);
  // SET_SCANOUT_BLOB (§5.7.6.8): a blob in guest memory shown from where it is, its layout checked
  // against the blob.
  CommandResult<Response> SetBlob(const SetScanoutBlob& request);
  void Flush(const ResourceFlush& request, Reply reply);
  // Before the resource's pixels change (TRANSFER_TO_HOST_2D): where the VMM may still be reading
  // pages of them lent with an UPDATE, the pixels move to new pages, so that it reads what was
  // flushed (display_channel.h, "Lending"). Fails when no memory is left for them.
  Result<void> BeforePixelsChange(Resource& resource);

  // The resource goes away (UNREF): heads showing it go dark, its exports are dropped.
  void ForgetResource(ResourceId resource);
  // The device resets: read-backs kept for later are dropped.
  void Reset() { pacer_.Reset(); }
  const ReadbackPacer& pacer() const { return pacer_; }

 private:
  void Disable(uint32_t scanout_id);
  // Sends the part of `resource` inside `rect` (resource coordinates) to every scanout showing
  // it. DMABUF_UPDATEs answer flush `flush` (0: none) when their replies come.
  void SendToScanouts(Resource& resource, const Rect& rect, uint64_t flush);
  bool ShowsDmabuf(const Resource& resource, const Rect& rect) const;
  // Rows the renderer lets lend are lent (the loan is kept in the resource).
  void SendUpdate(uint32_t scanout_id, Resource& resource, const Rect& resource_rect);
  // The same for a blob scanout: the rows go from the guest's pages in as few UPDATE messages as
  // sendmsg's iovec limit allows (no copy), or converted through staging_ when the format is
  // not the display's.
  void SendBlobUpdate(uint32_t scanout_id, const Resource& resource, const Rect& rect);
  // Announces the scanout's size (SCANOUT) if it changed.
  void Announce(uint32_t scanout_id, uint32_t width, uint32_t height);
  // The pacer's call: `damage` of what the scanout shows now, if it is still read back.
  void SendPaced(uint32_t scanout_id, const Rect& damage);
  bool attached() const { return display_ != nullptr && display_->attached(); }

  ScanoutArray& scanouts_;
  ResourceTable& resources_;
  DisplayChannel* const display_;
  DmabufScanouts* const dmabuf_;
  Completions& completions_;
  Diagnostics& diagnostics_;
  std::vector<uint8_t> staging_;    // Converted and read-back rows, reused.
  std::vector<uint8_t> blob_rows_;  // A blob's rows copied out for conversion, reused.
  std::vector<iovec> iovecs_;       // A blob's rows where they are, reused.
  ReadbackPacer pacer_;
};

}  // namespace vgpu::gpu
