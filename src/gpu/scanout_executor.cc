#include "gpu/scanout_executor.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "renderer/software2d/pixel_format.h"

namespace vgpu::gpu {
namespace {

using renderer::software2d::kBytesPerPixel;

std::string Id(uint32_t id) { return std::to_string(id); }

}  // namespace

ScanoutExecutor::ScanoutExecutor(ScanoutArray& scanouts, ResourceTable& resources,
                                 DisplayChannel* display, DmabufScanouts* dmabuf,
                                 Completions& completions, Diagnostics& diagnostics,
                                 std::chrono::nanoseconds readback_interval)
    : scanouts_(scanouts),
      resources_(resources),
      display_(display),
      dmabuf_(dmabuf),
      completions_(completions),
      diagnostics_(diagnostics),
      pacer_(display != nullptr ? &display->loop() : nullptr, readback_interval,
             [this](uint32_t scanout_id, const Rect& damage) { SendPaced(scanout_id, damage); }) {}

void ScanoutExecutor::Disable(uint32_t scanout_id) {
  Scanout& scanout = scanouts_[scanout_id];
  scanout.resource = ResourceId{0};
  scanout.rect = Rect{};
  pacer_.Forget(scanout_id);
  if (dmabuf_ != nullptr) dmabuf_->Stop(scanout_id, DmabufScanouts::End::kDisable);
  if (scanout.announced_width != 0 && attached()) {
    (void)display_->SendScanout(scanout_id, 0, 0);  // A failed send detaches: nothing to undo.
  }
  scanout.announced_width = 0;
  scanout.announced_height = 0;
}

void ScanoutExecutor::ForgetResource(ResourceId resource) {
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    if (scanouts_[i].resource == resource) Disable(i);
  }
  // Its export goes before the texture does.
  if (dmabuf_ != nullptr) dmabuf_->ForgetResource(resource);
}

CommandResult<Response> ScanoutExecutor::Set(const SetScanout& request) {
  const uint32_t scanout_id = request.scanout_id;
  if (scanout_id >= kMaxScanouts) {
    return Fail(Failure::kUnknownScanout, "SET_SCANOUT scanout " + Id(scanout_id));
  }
  const ResourceId id{request.resource_id};
  if (id.value() == 0) {
    Disable(scanout_id);
    return Response::Ok();
  }
  Resource* resource = resources_.Find(id);
  if (resource == nullptr) {
    return Fail(Failure::kUnknownResource, "SET_SCANOUT resource " + Id(id.value()));
  }
  const Rect rect = request.r;
  if (rect.width < kMinScanoutSize || rect.height < kMinScanoutSize ||
      !RectInside(rect, resource->width, resource->height)) {
    return Fail(Failure::kInvalidParameter,
                "SET_SCANOUT rect " + Id(rect.width) + "x" + Id(rect.height) + "+" + Id(rect.x) +
                    "+" + Id(rect.y) + " outside resource " + Id(id.value()) + " (" +
                    Id(resource->width) + "x" + Id(resource->height) + ")");
  }
  Scanout& scanout = scanouts_[scanout_id];
  const bool changed = scanout.resource != id || std::memcmp(&scanout.rect, &rect, sizeof(rect));
  scanout.resource = id;
  scanout.rect = rect;
  if (!attached()) return Response::Ok();
  if (resource->three_d && dmabuf_ != nullptr && dmabuf_->Show(scanout_id, *resource, changed)) {
    return Response::Ok();
  }
  // A 2D resource, or a 3D one read back: a dmabuf shown so far is disabled (ours is kept for a
  // flip back).
  if (dmabuf_ != nullptr) dmabuf_->Stop(scanout_id, DmabufScanouts::End::kDisableKeepSpare);
  if (scanout.announced_width != rect.width || scanout.announced_height != rect.height) {
    (void)display_->SendScanout(scanout_id, rect.width, rect.height);  // Failure detaches.
    scanout.announced_width = rect.width;
    scanout.announced_height = rect.height;
  }
  // Show the new content at once; QEMU displays a new surface only with its first UPDATE.
  if (changed) {
    SendUpdate(scanout_id, *resource, rect);
    if (resource->three_d) pacer_.SentWhole(scanout_id);
  }
  return Response::Ok();
}

void ScanoutExecutor::SendUpdate(uint32_t scanout_id, const Resource& resource,
                                 const Rect& resource_rect) {
  const Scanout& scanout = scanouts_[scanout_id];
  // Scanout-relative position of the damaged rectangle.
  const uint32_t x = resource_rect.x - scanout.rect.x;
  const uint32_t y = resource_rect.y - scanout.rect.y;
  const uint32_t row_bytes = resource_rect.width * kBytesPerPixel;
  Result<void> sent;
  if (std::optional<renderer::DisplayRows> rows =
          resource.renderer->DirectRows(resource.id, resource_rect)) {
    // The rows already are x8r8g8b8: sent straight from the resource (no staging copy).
    sent = display_->SendUpdate(scanout_id, x, y, resource_rect.width, resource_rect.height,
                                rows->first_pixel, rows->stride);
    resource.renderer->ReleaseRows();
  } else {
    // Converted, or for 3D results without a dmabuf read back (docs/ARCHITECTURE.md).
    staging_.resize(uint64_t{row_bytes} * resource_rect.height);
    Result<void> read =
        resource.renderer->ReadRect(resource.id, resource_rect, staging_, row_bytes);
    if (!read) {
      diagnostics_.GuestWarning("read-back of resource %u failed: %s", resource.id.value(),
                                read.error().message.c_str());
      return;
    }
    sent = display_->SendUpdate(scanout_id, x, y, resource_rect.width, resource_rect.height,
                                staging_.data(), row_bytes);
  }
  if (sent) ++diagnostics_.statistics.display_updates;
}

void ScanoutExecutor::SendToScanouts(const Resource& resource, const Rect& rect, uint64_t flush) {
  if (!attached()) return;
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    const Scanout& scanout = scanouts_[i];
    if (scanout.resource != resource.id) continue;
    std::optional<Rect> damage = Intersect(rect, scanout.rect);
    if (!damage) continue;
    if (!scanout.dmabuf.active()) {
      // Read-backs are paced (ReadbackPacer); 2D rows are at hand and go at once.
      if (resource.three_d) {
        pacer_.Flushed(i, resource.id, *damage);
      } else {
        SendUpdate(i, resource, *damage);
      }
      continue;
    }
    dmabuf_->Update(
        i,
        Rect{damage->x - scanout.rect.x, damage->y - scanout.rect.y, damage->width, damage->height},
        flush);
  }
}

void ScanoutExecutor::SendPaced(uint32_t scanout_id, const Rect& damage) {
  const Scanout& scanout = scanouts_[scanout_id];
  const Resource* resource = resources_.Find(scanout.resource);
  if (resource == nullptr || !attached() || scanout.dmabuf.active()) return;
  if (std::optional<Rect> visible = Intersect(damage, scanout.rect)) {
    SendUpdate(scanout_id, *resource, *visible);
  }
}

bool ScanoutExecutor::ShowsDmabuf(const Resource& resource, const Rect& rect) const {
  if (dmabuf_ == nullptr || !attached()) return false;
  return std::any_of(scanouts_.begin(), scanouts_.end(), [&](const Scanout& scanout) {
    return scanout.resource == resource.id && scanout.dmabuf.active() &&
           Intersect(rect, scanout.rect).has_value();
  });
}

void ScanoutExecutor::Flush(const ResourceFlush& request, Reply reply) {
  Resource* resource = resources_.Find(ResourceId{request.resource_id});
  if (resource == nullptr) {
    completions_.Finish(
        std::move(reply),
        Fail(Failure::kUnknownResource, "RESOURCE_FLUSH resource " + Id(request.resource_id)));
    return;
  }
  if (!RectInside(request.r, resource->width, resource->height)) {
    completions_.Finish(std::move(reply),
                        Fail(Failure::kInvalidParameter,
                             "RESOURCE_FLUSH rect outside resource " + Id(request.resource_id)));
    return;
  }
  if (!ShowsDmabuf(*resource, request.r)) {
    SendToScanouts(*resource, request.r, 0);
    completions_.Finish(std::move(reply), Response::Ok());
    return;
  }
  // Answered when the VMM has drawn it (its DMABUF_UPDATE replies), without holding the queue:
  // later commands go on meanwhile.
  const uint64_t flush = dmabuf_->BeginFlush(std::move(reply));
  SendToScanouts(*resource, request.r, flush);
  dmabuf_->EndFlush(flush);
}

}  // namespace vgpu::gpu
