#include "gpu/scanout_executor.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/checked_math.h"
#include "renderer/software2d/pixel_conversion.h"
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
  scanout.framebuffer.reset();
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
  if (resource->blob) {
    return Fail(Failure::kInvalidParameter, "SET_SCANOUT resource " + Id(id.value()) +
                                                " is a blob (SET_SCANOUT_BLOB shows it)");
  }
  Scanout& scanout = scanouts_[scanout_id];
  const bool changed = scanout.resource != id || scanout.framebuffer ||
                       std::memcmp(&scanout.rect, &rect, sizeof(rect));
  scanout.resource = id;
  scanout.rect = rect;
  scanout.framebuffer.reset();
  if (!attached()) return Response::Ok();
  if (resource->three_d && dmabuf_ != nullptr && dmabuf_->Show(scanout_id, *resource, changed)) {
    return Response::Ok();
  }
  // A 2D resource, or a 3D one read back: a dmabuf shown so far is disabled (ours is kept for a
  // flip back).
  if (dmabuf_ != nullptr) dmabuf_->Stop(scanout_id, DmabufScanouts::End::kDisableKeepSpare);
  Announce(scanout_id, rect.width, rect.height);
  // Show the new content at once; QEMU displays a new surface only with its first UPDATE.
  if (changed) {
    SendUpdate(scanout_id, *resource, rect);
    if (resource->three_d) pacer_.SentWhole(scanout_id);
  }
  return Response::Ok();
}

void ScanoutExecutor::Announce(uint32_t scanout_id, uint32_t width, uint32_t height) {
  Scanout& scanout = scanouts_[scanout_id];
  if (scanout.announced_width != width || scanout.announced_height != height) {
    (void)display_->SendScanout(scanout_id, width, height);  // Failure detaches.
    scanout.announced_width = width;
    scanout.announced_height = height;
  }
}

CommandResult<Response> ScanoutExecutor::SetBlob(const SetScanoutBlob& request) {
  const uint32_t scanout_id = request.scanout_id;
  if (scanout_id >= kMaxScanouts) {
    return Fail(Failure::kUnknownScanout, "SET_SCANOUT_BLOB scanout " + Id(scanout_id));
  }
  const ResourceId id{request.resource_id};
  if (id.value() == 0) {
    Disable(scanout_id);
    return Response::Ok();
  }
  Resource* resource = resources_.Find(id);
  if (resource == nullptr || !resource->blob) {
    return Fail(Failure::kUnknownResource, "SET_SCANOUT_BLOB resource " + Id(id.value()) +
                                               (resource == nullptr ? "" : " is not a blob"));
  }
  if (!resource->guest_memory_blob() || !resource->backing) {
    // A host blob would be shown through a dmabuf of it, which no renderer here exports.
    return Fail(Failure::kInvalidParameter,
                "SET_SCANOUT_BLOB resource " + Id(id.value()) + " is not in guest memory");
  }
  if (!renderer::software2d::PixmanFormatFor(request.format)) {
    return Fail(Failure::kInvalidParameter, "SET_SCANOUT_BLOB format " + Id(request.format));
  }
  const BlobFramebuffer framebuffer{.format = request.format,
                                    .width = request.width,
                                    .height = request.height,
                                    .stride = request.strides[0],
                                    .offset = request.offsets[0]};
  // Every 2D format is one plane of 4-byte pixels: the last row ends inside the blob, rows do not
  // overlap (u64 arithmetic: each term is below 2^32 * 2^32).
  const uint64_t row_bytes = uint64_t{framebuffer.width} * kBytesPerPixel;
  const uint64_t end = framebuffer.offset +
                       uint64_t{framebuffer.stride} * (std::max(framebuffer.height, 1u) - 1) +
                       row_bytes;
  if (framebuffer.width == 0 || framebuffer.height == 0 || framebuffer.stride < row_bytes ||
      framebuffer.stride % kBytesPerPixel != 0 || end > resource->blob->size) {
    return Fail(Failure::kInvalidParameter,
                "SET_SCANOUT_BLOB " + Id(framebuffer.width) + "x" + Id(framebuffer.height) +
                    " stride " + Id(framebuffer.stride) + " offset " +
                    std::to_string(framebuffer.offset) + " outside blob " + Id(id.value()) +
                    " of " + std::to_string(resource->blob->size) + " bytes");
  }
  const Rect rect = request.r;
  if (rect.width < kMinScanoutSize || rect.height < kMinScanoutSize ||
      !RectInside(rect, framebuffer.width, framebuffer.height)) {
    return Fail(Failure::kInvalidParameter, "SET_SCANOUT_BLOB rect " + Id(rect.width) + "x" +
                                                Id(rect.height) + "+" + Id(rect.x) + "+" +
                                                Id(rect.y) + " outside its framebuffer");
  }
  Scanout& scanout = scanouts_[scanout_id];
  // A dmabuf shown so far goes (ours is kept for a flip back), as for a 2D resource.
  if (dmabuf_ != nullptr && attached()) {
    dmabuf_->Stop(scanout_id, DmabufScanouts::End::kDisableKeepSpare);
  }
  pacer_.Forget(scanout_id);
  scanout.resource = id;
  scanout.rect = rect;
  scanout.framebuffer = framebuffer;
  if (!attached()) return Response::Ok();
  Announce(scanout_id, rect.width, rect.height);
  // Linux flushes after every SET_SCANOUT_BLOB; the picture goes with the flush.
  return Response::Ok();
}

void ScanoutExecutor::SendBlobUpdate(uint32_t scanout_id, const Resource& resource,
                                     const Rect& rect) {
  const Scanout& scanout = scanouts_[scanout_id];
  const BlobFramebuffer& framebuffer = *scanout.framebuffer;
  const renderer::GuestBacking& pages = resource.backing->view();
  const uint32_t x = rect.x - scanout.rect.x;  // Scanout-relative.
  const uint32_t y = rect.y - scanout.rect.y;
  const uint64_t row_bytes = uint64_t{rect.width} * kBytesPerPixel;
  // Inside the blob: SetBlob checked the framebuffer, and rect is inside it.
  auto row_offset = [&](uint32_t row) {
    return framebuffer.offset + uint64_t{rect.y + row} * framebuffer.stride +
           uint64_t{rect.x} * kBytesPerPixel;
  };
  uint32_t rect_copied_from = 0;  // Rows before this one went from where they are.
  if (renderer::software2d::IsDisplayNative(framebuffer.format)) {
    // Bands of whole rows, each as many as one message's iovecs hold.
    auto send_band = [&](uint32_t first_row, uint32_t end_row) {
      Result<void> sent = display_->SendUpdateGathered(scanout_id, x, y + first_row, rect.width,
                                                       end_row - first_row, iovecs_);
      if (sent) ++diagnostics_.statistics.display_updates;
      return sent.has_value();  // False: the display detached.
    };
    iovecs_.clear();
    uint32_t band_start = 0;
    uint32_t row = 0;
    for (; row < rect.height; ++row) {
      const size_t count_before = iovecs_.size();
      const size_t last_length_before = iovecs_.empty() ? 0 : iovecs_.back().iov_len;
      (void)pages.AppendIovecs(row_offset(row), row_bytes, iovecs_);  // Inside: see above.
      if (iovecs_.size() <= DisplayChannel::kMaxUpdateIovecs) continue;
      if (row == band_start) break;  // One row in more pieces than a message takes: copied.
      // This row starts the next band.
      iovecs_.resize(count_before);
      if (count_before != 0) iovecs_.back().iov_len = last_length_before;
      if (!send_band(band_start, row)) return;
      band_start = row;
      iovecs_.clear();
      --row;
    }
    if (row == rect.height) {
      (void)send_band(band_start, rect.height);
      return;
    }
    rect_copied_from = band_start;
  }
  // Rows copied out of the guest's pages (and converted where the format is not the display's).
  const Rect rest{rect.x, rect.y + rect_copied_from, rect.width, rect.height - rect_copied_from};
  blob_rows_.resize(row_bytes * rest.height);
  for (uint32_t row = 0; row < rest.height; ++row) {
    (void)pages.CopyOut(row_offset(rect_copied_from + row),  // Inside: see above.
                        std::span<uint8_t>(blob_rows_.data() + row * row_bytes, row_bytes));
  }
  const uint8_t* pixels = blob_rows_.data();
  if (!renderer::software2d::IsDisplayNative(framebuffer.format)) {
    staging_.resize(blob_rows_.size());
    const renderer::software2d::ImageView view{.bytes = blob_rows_,
                                               .width = rest.width,
                                               .height = rest.height,
                                               .stride = static_cast<uint32_t>(row_bytes),
                                               .format = framebuffer.format};
    Result<void> converted = renderer::software2d::ConvertToXrgb8888(
        view, Rect{0, 0, rest.width, rest.height}, staging_, static_cast<uint32_t>(row_bytes));
    if (!converted) {
      diagnostics_.GuestWarning("blob scanout %u: %s", scanout_id,
                                converted.error().message.c_str());
      return;
    }
    pixels = staging_.data();
  }
  if (display_->SendUpdate(scanout_id, x, y + rect_copied_from, rest.width, rest.height, pixels,
                           row_bytes)) {
    ++diagnostics_.statistics.display_updates;
  }
}

void ScanoutExecutor::SendUpdate(uint32_t scanout_id, Resource& resource,
                                 const Rect& resource_rect) {
  const Scanout& scanout = scanouts_[scanout_id];
  // Scanout-relative position of the damaged rectangle.
  const uint32_t x = resource_rect.x - scanout.rect.x;
  const uint32_t y = resource_rect.y - scanout.rect.y;
  const uint32_t row_bytes = resource_rect.width * kBytesPerPixel;
  Result<void> sent;
  if (std::optional<renderer::DisplayRows> rows =
          resource.renderer->DirectRows(resource.id, resource_rect)) {
    // The rows already are x8r8g8b8: sent straight from the resource (no staging copy), their
    // pages lent where the renderer allows it.
    if (rows->lendable) {
      Result<uint64_t> loan =
          display_->SendUpdateLending(scanout_id, x, y, resource_rect.width, resource_rect.height,
                                      rows->first_pixel, rows->stride);
      if (loan && *loan != 0) resource.display_loan = *loan;
      sent = loan ? Result<void>() : ErrorOf(loan);
    } else {
      sent = display_->SendUpdate(scanout_id, x, y, resource_rect.width, resource_rect.height,
                                  rows->first_pixel, rows->stride);
    }
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

void ScanoutExecutor::SendToScanouts(Resource& resource, const Rect& rect, uint64_t flush) {
  if (!attached()) return;
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    const Scanout& scanout = scanouts_[i];
    if (scanout.resource != resource.id) continue;
    std::optional<Rect> damage = Intersect(rect, scanout.rect);
    if (!damage) continue;
    if (scanout.framebuffer) {
      SendBlobUpdate(i, resource, *damage);
      continue;
    }
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
  Resource* resource = resources_.Find(scanout.resource);
  if (resource == nullptr || !attached() || scanout.dmabuf.active()) return;
  if (std::optional<Rect> visible = Intersect(damage, scanout.rect)) {
    SendUpdate(scanout_id, *resource, *visible);
  }
}

Result<void> ScanoutExecutor::BeforePixelsChange(Resource& resource) {
  if (resource.display_loan == 0) return {};
  if (display_ != nullptr && display_->MayStillRead(resource.display_loan)) {
    if (Result<void> moved = resource.renderer->MovePixelsToNewPages(resource.id); !moved) {
      return moved;
    }
    ++diagnostics_.statistics.pixels_moved_from_loans;
  }
  resource.display_loan = 0;
  return {};
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
  // A blob has no size of its own: the flush is clipped to what each scanout shows of it.
  const bool inside = resource->blob ? CheckedAdd<uint32_t>(request.r.x, request.r.width) &&
                                           CheckedAdd<uint32_t>(request.r.y, request.r.height)
                                     : RectInside(request.r, resource->width, resource->height);
  if (!inside) {
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
