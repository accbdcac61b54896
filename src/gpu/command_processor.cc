#include "gpu/command_processor.h"

#include <pixman.h>
#include <sys/random.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>

#include "gpu/edid.h"
#include "gpu/request_decoding.h"
#include "gpu/response.h"
#include "renderer/software2d/pixel_conversion.h"
#include "renderer/software2d/pixel_format.h"
#include "virtio/chain_io.h"

namespace vgpu::gpu {
namespace {

using renderer::software2d::HostImage;
using renderer::software2d::kBytesPerPixel;

}  // namespace

CommandProcessor::CommandProcessor(const CommandProcessorConfig& config, DisplayChannel* display,
                                   renderer::Renderer* renderer)
    : config_(config), display_(display), renderer_(renderer), resources_(config.max_host_memory) {
  scanouts_[0].display_enabled = true;
  scanouts_[0].display_width = kDefaultDisplayWidth;
  scanouts_[0].display_height = kDefaultDisplayHeight;
}

void CommandProcessor::Reset() {
  held_.clear();
  flush_waits_.clear();
  ++display_epoch_;
  for (uint32_t i = 0; i < kMaxScanouts; ++i) StopDmabuf(i, DmabufEnd::kDisable);
  spare_exports_.clear();
  unexportable_.clear();
  resources_.ForEach([this](Resource& resource) {
    if (resource.in_renderer && renderer_ != nullptr)
      (void)renderer_->UnrefResource(resource.id.value());
  });
  if (renderer_ != nullptr) {
    for (uint32_t context : contexts_) (void)renderer_->DestroyContext(context);
  }
  contexts_.clear();
  resources_.Clear();
  scanouts_ = {};
  scanouts_[0].display_enabled = true;
  scanouts_[0].display_width = kDefaultDisplayWidth;
  scanouts_[0].display_height = kDefaultDisplayHeight;
  acked_features_ = 0;
}

ResponseType CommandProcessor::Reject(ResponseType type, const char* format, ...) {
  ++statistics_.errors;
  if (LogEnabled(LogLevel::kWarning)) {
    char message[256];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof(message), format, arguments);
    va_end(arguments);
    guest_errors_.Log(LogLevel::kWarning, "guest: %s -> %s", message, ResponseName(type));
  }
  return type;
}

ControlOutcome CommandProcessor::Finish(const virtio::DescriptorChain& chain,
                                        const CtrlHdr& request, std::span<const uint8_t> response,
                                        Completion& on_complete) {
  if (renderer_ != nullptr && (request.flags & kFlagFence)) {
    // §5.7.6.7: a fenced command is answered once the work before it is done. Every fenced
    // command goes through the renderer's timeline, so answers keep the fence order.
    renderer::FenceSignal fence{request.ctx_id, request.ring_idx, request.fence_id,
                                (request.flags & kFlagInfoRingIdx) != 0};
    if (!fence.per_context) {
      fence.context_id = 0;
      fence.ring_index = 0;
    }
    Result<void> created = renderer_->CreateFence(fence);
    if (created) {
      held_.push_back(HeldCommand{fence, chain,
                                  std::vector<uint8_t>(response.begin(), response.end()),
                                  std::move(on_complete)});
      return ControlOutcome{ControlOutcome::State::kWaitingForFence, 0};
    }
    guest_errors_.Log(LogLevel::kWarning, "fence %llu: %s; answering at once",
                      static_cast<unsigned long long>(request.fence_id),
                      created.error().message.c_str());
  }
  const uint32_t written = WriteResponseBytes(chain, response);
  if (written == 0) {
    guest_errors_.Log(LogLevel::kWarning, "guest: %s without room for its response",
                      CommandName(request.type));
  }
  return ControlOutcome{ControlOutcome::State::kDone, written};
}

ControlOutcome CommandProcessor::FinishHeader(const virtio::DescriptorChain& chain,
                                              const CtrlHdr& request, ResponseType type,
                                              Completion& on_complete) {
  return FinishStruct(chain, request, ResponseHeader(request, type), on_complete);
}

void CommandProcessor::OnFenceSignalled(const renderer::FenceSignal& fence) {
  // Answer in submission order every held command on this timeline up to the fence.
  for (auto it = held_.begin(); it != held_.end();) {
    const renderer::FenceSignal& held = it->fence;
    const bool same_timeline = held.per_context == fence.per_context &&
                               (!fence.per_context || (held.context_id == fence.context_id &&
                                                       held.ring_index == fence.ring_index));
    if (!same_timeline || held.fence_id > fence.fence_id) {
      ++it;
      continue;
    }
    HeldCommand command = std::move(*it);
    it = held_.erase(it);
    ++statistics_.fences_completed;
    command.on_complete(WriteResponseBytes(command.chain, command.response));
  }
}

void CommandProcessor::DropHeldCommands() {
  held_.clear();
  // Their DMABUF_UPDATEs stay in flight; the replies find no flush to answer.
  flush_waits_.clear();
}

ControlOutcome CommandProcessor::HandleControl(const virtio::DescriptorChain& chain,
                                               Completion on_complete) {
  ++statistics_.commands;
  if (control_recorder_.enabled()) RecordControlRequest(chain);
  std::optional<CtrlHdr> header = ReadRequest<CtrlHdr>(chain);
  if (!header) {
    // Nothing of the request can be trusted; answer with a zeroed, unfenced header if there is
    // room (QEMU's VIRTIO_GPU_FILL_CMD answers ERR_UNSPEC too).
    Reject(ResponseType::kErrUnspec, "request shorter than a header");
    return FinishHeader(chain, CtrlHdr{}, ResponseType::kErrUnspec, on_complete);
  }
  LogTrace("command %s", CommandName(header->type));
  return Dispatch(chain, *header, on_complete);
}

void CommandProcessor::RecordControlRequest(const virtio::DescriptorChain& chain) {
  virtio::ChainReader reader(chain);
  std::vector<uint8_t> bytes(std::min<uint64_t>(reader.remaining(), kMaxRecordedRequest));
  (void)reader.Read(bytes);
  control_recorder_.RecordBytes(bytes);
}

ControlOutcome CommandProcessor::Dispatch(const virtio::DescriptorChain& chain,
                                          const CtrlHdr& header, Completion& on_complete) {
  auto finish = [&](ResponseType type) { return FinishHeader(chain, header, type, on_complete); };
  switch (static_cast<CommandType>(header.type)) {
    case CommandType::kGetDisplayInfo:
      return GetDisplayInfo(chain, header, on_complete);
    case CommandType::kGetEdid:
      return GetEdid(chain, header, on_complete);
    case CommandType::kResourceCreate2d:
      return finish(ResourceCreate2d(chain));
    case CommandType::kResourceUnref:
      return finish(ResourceUnref(chain));
    case CommandType::kSetScanout:
      return finish(SetScanout(chain));
    case CommandType::kResourceFlush:
      return ResourceFlush(chain, header, on_complete);
    case CommandType::kTransferToHost2d:
      return finish(TransferToHost2d(chain));
    case CommandType::kResourceAttachBacking:
      return finish(AttachBacking(chain));
    case CommandType::kResourceDetachBacking:
      return finish(DetachBacking(chain));
    case CommandType::kGetCapsetInfo:
      return GetCapsetInfo(chain, header, on_complete);
    case CommandType::kGetCapset:
      return GetCapset(chain, header, on_complete);
    case CommandType::kResourceAssignUuid:
      return AssignUuid(chain, header, on_complete);
    default:
      break;
  }
  if (renderer_ != nullptr) {
    switch (static_cast<CommandType>(header.type)) {
      case CommandType::kCtxCreate:
        return finish(ContextCreate(chain, header));
      case CommandType::kCtxDestroy:
        return finish(ContextDestroy(header));
      case CommandType::kCtxAttachResource:
        return finish(ContextResource(chain, header, /*attach=*/true));
      case CommandType::kCtxDetachResource:
        return finish(ContextResource(chain, header, /*attach=*/false));
      case CommandType::kResourceCreate3d:
        return finish(ResourceCreate3d(chain));
      case CommandType::kTransferToHost3d:
        return finish(Transfer3d(chain, header, /*to_host=*/true));
      case CommandType::kTransferFromHost3d:
        return finish(Transfer3d(chain, header, /*to_host=*/false));
      case CommandType::kSubmit3d:
        return finish(Submit3d(chain, header));
      default:
        break;
    }
  }
  return finish(Reject(ResponseType::kErrUnspec, "%s (0x%x) not supported in this mode",
                       CommandName(header.type), header.type));
}

RespDisplayInfo CommandProcessor::LocalDisplayInfo() const {
  RespDisplayInfo info{};
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    if (!scanouts_[i].display_enabled) continue;
    info.pmodes[i].r = Rect{0, 0, scanouts_[i].display_width, scanouts_[i].display_height};
    info.pmodes[i].enabled = 1;
  }
  return info;
}

void CommandProcessor::RecordDisplayInfo(const RespDisplayInfo& info) {
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    const DisplayOne& mode = info.pmodes[i];
    scanouts_[i].display_enabled = mode.enabled != 0 && mode.r.width > 0 && mode.r.height > 0;
    scanouts_[i].display_width = mode.r.width;
    scanouts_[i].display_height = mode.r.height;
  }
}

ControlOutcome CommandProcessor::GetDisplayInfo(const virtio::DescriptorChain& chain,
                                                const CtrlHdr& header, Completion& on_complete) {
  if (display_ == nullptr || !display_->attached()) {
    RespDisplayInfo info = LocalDisplayInfo();
    info.hdr = ResponseHeader(header, ResponseType::kOkDisplayInfo);
    return FinishStruct(chain, header, info, on_complete);
  }
  // QEMU knows the window sizes; ask it, without blocking (the reply may never come).
  display_->RequestDisplayInfo([this, chain, header, on_complete = std::move(on_complete)](
                                   std::optional<RespDisplayInfo> reply) {
    RespDisplayInfo info{};
    if (reply) {
      // Copy field by field: only what the spec defines goes to the guest.
      for (uint32_t i = 0; i < kMaxScanouts; ++i) {
        info.pmodes[i].r = reply->pmodes[i].r;
        info.pmodes[i].enabled = reply->pmodes[i].enabled ? 1 : 0;
        info.pmodes[i].flags = reply->pmodes[i].flags;
      }
      RecordDisplayInfo(info);
    } else {
      info = LocalDisplayInfo();
    }
    info.hdr = ResponseHeader(header, ResponseType::kOkDisplayInfo);
    on_complete(WriteResponse(chain, info));
  });
  return ControlOutcome{ControlOutcome::State::kWaitingForVmm, 0};
}

RespEdid CommandProcessor::LocalEdid(uint32_t scanout_id) const {
  const Scanout& scanout = scanouts_[scanout_id];
  const bool known = scanout.display_width > 0 && scanout.display_height > 0;
  const EdidBlock block = GenerateEdid(known ? scanout.display_width : kDefaultDisplayWidth,
                                       known ? scanout.display_height : kDefaultDisplayHeight);
  RespEdid edid{};
  edid.size = static_cast<uint32_t>(block.size());
  std::memcpy(edid.edid, block.data(), block.size());
  return edid;
}

ControlOutcome CommandProcessor::GetEdid(const virtio::DescriptorChain& chain,
                                         const CtrlHdr& header, Completion& on_complete) {
  auto reject = [&](ResponseType type, const char* what) {
    return FinishHeader(chain, header, Reject(type, "GET_EDID: %s", what), on_complete);
  };
  std::optional<gpu::GetEdid> request = ReadRequest<gpu::GetEdid>(chain);
  if (!request) return reject(ResponseType::kErrUnspec, "truncated");
  if (!config_.edid_offered || !FeatureAcked(acked_features_, kFeatureEdid)) {
    return reject(ResponseType::kErrUnspec, "VIRTIO_GPU_F_EDID not negotiated");
  }
  const uint32_t scanout_id = request->scanout;
  if (scanout_id >= kMaxScanouts) return reject(ResponseType::kErrInvalidParameter, "scanout id");
  if (display_ == nullptr || !display_->attached()) {
    RespEdid edid = LocalEdid(scanout_id);
    edid.hdr = ResponseHeader(header, ResponseType::kOkEdid);
    return FinishStruct(chain, header, edid, on_complete);
  }
  display_->RequestEdid(scanout_id,
                        [this, chain, header, scanout_id,
                         on_complete = std::move(on_complete)](std::optional<RespEdid> reply) {
                          RespEdid edid{};
                          if (reply && reply->size > 0 && reply->size <= sizeof(edid.edid)) {
                            edid.size = reply->size;
                            std::memcpy(edid.edid, reply->edid, reply->size);
                          } else {
                            // Old QEMU (no EDID support) or no reply: an EDID of our own for the
                            // head's size.
                            edid = LocalEdid(scanout_id);
                          }
                          edid.hdr = ResponseHeader(header, ResponseType::kOkEdid);
                          on_complete(WriteResponse(chain, edid));
                        });
  return ControlOutcome{ControlOutcome::State::kWaitingForVmm, 0};
}

ResponseType CommandProcessor::ResourceCreate2d(const virtio::DescriptorChain& chain) {
  std::optional<gpu::ResourceCreate2d> request = ReadRequest<gpu::ResourceCreate2d>(chain);
  if (!request) return Reject(ResponseType::kErrUnspec, "RESOURCE_CREATE_2D truncated");
  const ResourceId id{request->resource_id};
  if (id.value() == 0 || resources_.Find(id) != nullptr) {
    return Reject(ResponseType::kErrInvalidResourceId, "RESOURCE_CREATE_2D id %u", id.value());
  }
  if (!renderer::software2d::PixmanFormatFor(request->format)) {
    return Reject(ResponseType::kErrInvalidParameter, "RESOURCE_CREATE_2D format %u",
                  request->format);
  }
  if (request->width == 0 || request->height == 0) {
    return Reject(ResponseType::kErrInvalidParameter, "RESOURCE_CREATE_2D size %ux%u",
                  request->width, request->height);
  }
  // Check the cap before allocating anything (u64: 0xffffffff^2 * 4 fits).
  const uint64_t bytes = uint64_t{request->width} * request->height * kBytesPerPixel;
  if (!resources_.Fits(bytes)) {
    return Reject(ResponseType::kErrOutOfMemory, "RESOURCE_CREATE_2D %ux%u over the memory cap",
                  request->width, request->height);
  }
  Result<HostImage> image = HostImage::Create(request->width, request->height, request->format);
  if (!image) {
    return Reject(image.error().kind == ErrorKind::kResourceExhausted
                      ? ResponseType::kErrOutOfMemory
                      : ResponseType::kErrInvalidParameter,
                  "RESOURCE_CREATE_2D: %s", image.error().message.c_str());
  }
  if (!resources_.Insert(id, std::move(*image))) {
    return Reject(ResponseType::kErrOutOfMemory, "RESOURCE_CREATE_2D over the memory cap");
  }
  return ResponseType::kOkNodata;
}

void CommandProcessor::DisableScanout(uint32_t scanout_id) {
  Scanout& scanout = scanouts_[scanout_id];
  scanout.resource = ResourceId{0};
  scanout.rect = Rect{};
  StopDmabuf(scanout_id, DmabufEnd::kDisable);
  if (scanout.announced_width != 0 && display_ != nullptr && display_->attached()) {
    (void)display_->SendScanout(scanout_id, 0, 0);
  }
  scanout.announced_width = 0;
  scanout.announced_height = 0;
}

void CommandProcessor::DestroyResource(Resource& resource) {
  // A head showing the resource goes dark rather than pointing at freed memory.
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    if (scanouts_[i].resource == resource.id) DisableScanout(i);
  }
  // Its export goes before the texture does.
  std::erase_if(spare_exports_, [&](const auto& spare) { return spare.first == resource.id; });
  unexportable_.erase(resource.id.value());
  // The renderer detaches the backing before destroying (CVE-2021-3544 / CVE-2017-5857 class).
  if (resource.in_renderer) (void)renderer_->UnrefResource(resource.id.value());
  resources_.Erase(resource.id);  // Drops our backing too (CVE-2016-9912 class).
}

ResponseType CommandProcessor::ResourceUnref(const virtio::DescriptorChain& chain) {
  std::optional<gpu::ResourceUnref> request = ReadRequest<gpu::ResourceUnref>(chain);
  if (!request) return Reject(ResponseType::kErrUnspec, "RESOURCE_UNREF truncated");
  Resource* resource = resources_.Find(ResourceId{request->resource_id});
  if (resource == nullptr) {
    return Reject(ResponseType::kErrInvalidResourceId, "RESOURCE_UNREF id %u",
                  request->resource_id);
  }
  DestroyResource(*resource);
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::SetScanout(const virtio::DescriptorChain& chain) {
  std::optional<gpu::SetScanout> request = ReadRequest<gpu::SetScanout>(chain);
  if (!request) return Reject(ResponseType::kErrUnspec, "SET_SCANOUT truncated");
  const uint32_t scanout_id = request->scanout_id;
  if (scanout_id >= kMaxScanouts) {
    return Reject(ResponseType::kErrInvalidScanoutId, "SET_SCANOUT scanout %u", scanout_id);
  }
  const ResourceId id{request->resource_id};
  if (id.value() == 0) {
    DisableScanout(scanout_id);
    return ResponseType::kOkNodata;
  }
  Resource* resource = resources_.Find(id);
  if (resource == nullptr) {
    return Reject(ResponseType::kErrInvalidResourceId, "SET_SCANOUT resource %u", id.value());
  }
  const Rect rect = request->r;
  if (rect.width < kMinScanoutSize || rect.height < kMinScanoutSize ||
      !RectInside(rect, resource->width, resource->height)) {
    return Reject(ResponseType::kErrInvalidParameter,
                  "SET_SCANOUT rect %ux%u+%u+%u outside resource %u (%ux%u)", rect.width,
                  rect.height, rect.x, rect.y, id.value(), resource->width, resource->height);
  }
  Scanout& scanout = scanouts_[scanout_id];
  const bool changed = scanout.resource != id || std::memcmp(&scanout.rect, &rect, sizeof(rect));
  scanout.resource = id;
  scanout.rect = rect;
  if (display_ != nullptr && display_->attached()) {
    if (resource->in_renderer && renderer_ != nullptr &&
        ShowThroughDmabuf(scanout_id, *resource, changed)) {
      return ResponseType::kOkNodata;
    }
    // A 2D resource, or a 3D one read back: a dmabuf shown so far is disabled (ours is kept for
    // a flip back).
    StopDmabuf(scanout_id, DmabufEnd::kDisableKeepSpare);
    if (scanout.announced_width != rect.width || scanout.announced_height != rect.height) {
      (void)display_->SendScanout(scanout_id, rect.width, rect.height);
      scanout.announced_width = rect.width;
      scanout.announced_height = rect.height;
    }
    // Show the new content at once; QEMU displays a new surface only with its first UPDATE.
    if (changed) SendUpdate(scanout_id, *resource, rect);
  }
  return ResponseType::kOkNodata;
}

void CommandProcessor::SendUpdate(uint32_t scanout_id, Resource& resource,
                                  const Rect& resource_rect) {
  const Scanout& scanout = scanouts_[scanout_id];
  // Scanout-relative position of the damaged rectangle.
  const uint32_t x = resource_rect.x - scanout.rect.x;
  const uint32_t y = resource_rect.y - scanout.rect.y;
  const uint32_t row_bytes = resource_rect.width * kBytesPerPixel;
  Result<void> sent;
  if (resource.in_renderer) {
    // 3D results without a dmabuf: read the damaged rectangle back (ARCHITECTURE.md).
    staging_.resize(uint64_t{row_bytes} * resource_rect.height);
    Result<void> read =
        renderer_->ReadRect(resource.id.value(), resource_rect.x, resource_rect.y,
                            resource_rect.width, resource_rect.height, staging_, row_bytes);
    if (!read) {
      guest_errors_.Log(LogLevel::kWarning, "read-back of resource %u failed: %s",
                        resource.id.value(), read.error().message.c_str());
      return;
    }
    sent = display_->SendUpdate(scanout_id, x, y, resource_rect.width, resource_rect.height,
                                staging_.data(), row_bytes);
  } else {
    const HostImage& image = *resource.image;
    const uint64_t row_offset =
        uint64_t{resource_rect.y} * image.stride() + uint64_t{resource_rect.x} * kBytesPerPixel;
    if (renderer::software2d::IsDisplayNative(image.format())) {
      // The rows already are x8r8g8b8: send them straight from the resource (no staging copy).
      sent = display_->SendUpdate(scanout_id, x, y, resource_rect.width, resource_rect.height,
                                  image.bytes().data() + row_offset, image.stride());
    } else {
      staging_.resize(uint64_t{row_bytes} * resource_rect.height);
      Result<void> converted = renderer::software2d::ConvertToXrgb8888(
          image.view(),
          renderer::software2d::PixelRect{resource_rect.x, resource_rect.y, resource_rect.width,
                                          resource_rect.height},
          staging_, row_bytes);
      if (!converted) {
        LogWarning("display update conversion failed: %s", converted.error().message.c_str());
        return;
      }
      sent = display_->SendUpdate(scanout_id, x, y, resource_rect.width, resource_rect.height,
                                  staging_.data(), row_bytes);
    }
  }
  if (sent) ++statistics_.display_updates;
}

void CommandProcessor::SendToScanouts(Resource& resource, const Rect& rect, uint64_t flush) {
  if (display_ == nullptr || !display_->attached()) return;
  for (uint32_t i = 0; i < kMaxScanouts; ++i) {
    const Scanout& scanout = scanouts_[i];
    if (scanout.resource != resource.id) continue;
    std::optional<Rect> damage = Intersect(rect, scanout.rect);
    if (!damage) continue;
    if (!scanout.dmabuf.active()) {
      SendUpdate(i, resource, *damage);
      continue;
    }
    // A new display socket has not seen the dmabuf yet.
    if (scanout.dmabuf.display_generation != display_->generation() && !AnnounceDmabuf(i)) {
      continue;
    }
    const Rect relative{damage->x - scanout.rect.x, damage->y - scanout.rect.y, damage->width,
                        damage->height};
    QueueDmabufUpdate(i, relative, flush);
  }
}

bool CommandProcessor::ShowsDmabuf(const Resource& resource, const Rect& rect) const {
  if (display_ == nullptr || !display_->attached()) return false;
  return std::any_of(scanouts_.begin(), scanouts_.end(), [&](const Scanout& scanout) {
    return scanout.resource == resource.id && scanout.dmabuf.active() &&
           Intersect(rect, scanout.rect).has_value();
  });
}

ControlOutcome CommandProcessor::ResourceFlush(const virtio::DescriptorChain& chain,
                                               const CtrlHdr& header, Completion& on_complete) {
  auto finish = [&](ResponseType type) { return FinishHeader(chain, header, type, on_complete); };
  std::optional<gpu::ResourceFlush> request = ReadRequest<gpu::ResourceFlush>(chain);
  if (!request) return finish(Reject(ResponseType::kErrUnspec, "RESOURCE_FLUSH truncated"));
  Resource* resource = resources_.Find(ResourceId{request->resource_id});
  if (resource == nullptr) {
    return finish(Reject(ResponseType::kErrInvalidResourceId, "RESOURCE_FLUSH resource %u",
                         request->resource_id));
  }
  if (!RectInside(request->r, resource->width, resource->height)) {
    return finish(Reject(ResponseType::kErrInvalidParameter,
                         "RESOURCE_FLUSH rect outside resource %u", request->resource_id));
  }
  if (!ShowsDmabuf(*resource, request->r)) {
    SendToScanouts(*resource, request->r);
    return finish(ResponseType::kOkNodata);
  }
  // Answered when the VMM has drawn it (its DMABUF_UPDATE replies), without holding the queue:
  // later commands go on meanwhile. Registered first, with one count for this call itself,
  // because a reply that will never come is reported at once, from inside the send.
  const uint64_t flush = next_flush_id_++;
  flush_waits_.emplace(flush, FlushWait{chain, header, std::move(on_complete), 1});
  SendToScanouts(*resource, request->r, flush);
  FlushWait& wait = flush_waits_.at(flush);
  if (--wait.outstanding > 0) return ControlOutcome{ControlOutcome::State::kWaitingForFence, 0};
  // Every reply came (or failed) during the sends: answer now.
  on_complete = std::move(wait.on_complete);
  flush_waits_.erase(flush);
  return finish(ResponseType::kOkNodata);
}

ResponseType CommandProcessor::TransferToHost2d(const virtio::DescriptorChain& chain) {
  std::optional<gpu::TransferToHost2d> request = ReadRequest<gpu::TransferToHost2d>(chain);
  if (!request) return Reject(ResponseType::kErrUnspec, "TRANSFER_TO_HOST_2D truncated");
  Resource* resource = resources_.Find(ResourceId{request->resource_id});
  if (resource == nullptr) {
    return Reject(ResponseType::kErrInvalidResourceId, "TRANSFER_TO_HOST_2D resource %u",
                  request->resource_id);
  }
  if (!resource->backing) {
    return Reject(ResponseType::kErrUnspec, "TRANSFER_TO_HOST_2D resource %u has no backing",
                  request->resource_id);
  }
  const Rect rect = request->r;
  if (!RectInside(rect, resource->width, resource->height)) {
    return Reject(ResponseType::kErrInvalidParameter, "TRANSFER_TO_HOST_2D rect outside resource");
  }
  if (resource->in_renderer) return TransferToRenderer2d(*resource, *request);
  if (rect.width == 0 || rect.height == 0) return ResponseType::kOkNodata;
  HostImage& image = *resource->image;
  const uint64_t stride = image.stride();
  const uint64_t row_bytes = uint64_t{rect.width} * kBytesPerPixel;
  // The backing's row r starts at offset + r * stride (QEMU's layout); the last row must end
  // inside the backing. Checked once, before any byte moves.
  std::optional<uint64_t> last_row = CheckedMul<uint64_t>(stride, rect.height - 1);
  std::optional<uint64_t> last_row_start =
      last_row ? CheckedAdd<uint64_t>(request->offset, *last_row) : std::nullopt;
  std::optional<uint64_t> end =
      last_row_start ? CheckedAdd<uint64_t>(*last_row_start, row_bytes) : std::nullopt;
  if (!end || *end > resource->backing->size()) {
    return Reject(ResponseType::kErrInvalidParameter,
                  "TRANSFER_TO_HOST_2D reads past the backing of resource %u",
                  request->resource_id);
  }
  uint8_t* destination = image.bytes().data();
  const uint64_t first = uint64_t{rect.y} * stride + uint64_t{rect.x} * kBytesPerPixel;
  if (rect.x == 0 && rect.width == image.width()) {
    // Whole rows: one contiguous copy.
    (void)resource->backing->CopyOut(request->offset,
                                     std::span<uint8_t>(destination + first, stride * rect.height));
  } else {
    for (uint32_t row = 0; row < rect.height; ++row) {
      (void)resource->backing->CopyOut(
          request->offset + row * stride,
          std::span<uint8_t>(destination + first + row * stride, row_bytes));
    }
  }
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::AttachBacking(const virtio::DescriptorChain& chain) {
  virtio::ChainReader reader(chain);
  std::optional<ResourceAttachBacking> request = reader.ReadObject<ResourceAttachBacking>();
  if (!request) return Reject(ResponseType::kErrUnspec, "RESOURCE_ATTACH_BACKING truncated");
  Resource* resource = resources_.Find(ResourceId{request->resource_id});
  if (resource == nullptr) {
    return Reject(ResponseType::kErrInvalidResourceId, "RESOURCE_ATTACH_BACKING resource %u",
                  request->resource_id);
  }
  if (resource->backing) {
    // A second attach would leak the first (CVE-2017-5578 class): refuse it.
    return Reject(ResponseType::kErrUnspec, "RESOURCE_ATTACH_BACKING resource %u already backed",
                  request->resource_id);
  }
  if (request->nr_entries == 0 || request->nr_entries > kMaxBackingEntries) {
    return Reject(ResponseType::kErrInvalidParameter, "RESOURCE_ATTACH_BACKING %u entries",
                  request->nr_entries);
  }
  if (reader.remaining() < uint64_t{request->nr_entries} * sizeof(MemEntry)) {
    return Reject(ResponseType::kErrUnspec, "RESOURCE_ATTACH_BACKING entry list truncated");
  }
  std::vector<MemEntry> entries(request->nr_entries);
  (void)reader.Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(entries.data()),
                                       entries.size() * sizeof(MemEntry)));
  Result<BackingStore> backing = BackingStore::Create(chain.memory, entries);
  if (!backing) {
    return Reject(ResponseType::kErrUnspec, "RESOURCE_ATTACH_BACKING: %s",
                  backing.error().message.c_str());
  }
  if (!resources_.BackingFits(backing->spans().size())) {
    return Reject(ResponseType::kErrOutOfMemory,
                  "RESOURCE_ATTACH_BACKING resource %u: entry table over the memory cap",
                  request->resource_id);
  }
  if (resource->in_renderer) return AttachRendererBacking(*resource, std::move(*backing));
  (void)resources_.SetBacking(*resource, std::move(*backing));  // Fits: checked above.
  return ResponseType::kOkNodata;
}

ResponseType CommandProcessor::DetachBacking(const virtio::DescriptorChain& chain) {
  std::optional<ResourceDetachBacking> request = ReadRequest<ResourceDetachBacking>(chain);
  if (!request) return Reject(ResponseType::kErrUnspec, "RESOURCE_DETACH_BACKING truncated");
  Resource* resource = resources_.Find(ResourceId{request->resource_id});
  if (resource == nullptr) {
    return Reject(ResponseType::kErrInvalidResourceId, "RESOURCE_DETACH_BACKING resource %u",
                  request->resource_id);
  }
  if (!resource->backing) {
    return Reject(ResponseType::kErrUnspec, "RESOURCE_DETACH_BACKING resource %u has none",
                  request->resource_id);
  }
  // The renderer lets go of the guest pages before we unmap our view of them.
  if (resource->in_renderer) (void)renderer_->DetachBacking(resource->id.value());
  resources_.ClearBacking(*resource);
  return ResponseType::kOkNodata;
}

ControlOutcome CommandProcessor::AssignUuid(const virtio::DescriptorChain& chain,
                                            const CtrlHdr& header, Completion& on_complete) {
  auto reject = [&](ResponseType type, const char* what) {
    return FinishHeader(chain, header, Reject(type, "RESOURCE_ASSIGN_UUID: %s", what), on_complete);
  };
  std::optional<ResourceAssignUuid> request = ReadRequest<ResourceAssignUuid>(chain);
  if (!request) return reject(ResponseType::kErrUnspec, "truncated");
  Resource* resource = resources_.Find(ResourceId{request->resource_id});
  if (resource == nullptr) return reject(ResponseType::kErrInvalidResourceId, "no such resource");
  if (!resource->uuid) {
    std::array<uint8_t, 16> uuid{};
    if (getrandom(uuid.data(), uuid.size(), 0) != static_cast<ssize_t>(uuid.size())) {
      return reject(ResponseType::kErrUnspec, "no randomness for a UUID");
    }
    uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0f) | 0x40);  // RFC 4122 version 4.
    uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3f) | 0x80);  // RFC 4122 variant.
    resource->uuid = uuid;
  }
  RespResourceUuid response{};
  response.hdr = ResponseHeader(header, ResponseType::kOkResourceUuid);
  std::memcpy(response.uuid, resource->uuid->data(), 16);
  return FinishStruct(chain, header, response, on_complete);
}

bool CommandProcessor::CursorImage(uint32_t resource_id,
                                   std::array<uint32_t, kCursorSize * kCursorSize>& pixels) {
  Resource* resource = resources_.Find(ResourceId{resource_id});
  if (resource == nullptr) {
    Reject(ResponseType::kErrInvalidResourceId, "UPDATE_CURSOR resource %u", resource_id);
    return false;
  }
  // §5.7.6.10: the cursor is a 64x64 resource. Anything else shows an empty cursor rather than
  // reading past a smaller image (CVE-2016-9846 class).
  if (resource->width != kCursorSize || resource->height != kCursorSize) {
    Reject(ResponseType::kErrInvalidParameter, "UPDATE_CURSOR resource %u is %ux%u", resource_id,
           resource->width, resource->height);
    return false;
  }
  if (resource->in_renderer) {
    Result<std::array<uint32_t, renderer::kCursorPixels>> image =
        renderer_->CursorImage(resource_id);
    if (!image) {
      Reject(ResponseType::kErrUnspec, "UPDATE_CURSOR: %s", image.error().message.c_str());
      return false;
    }
    std::copy(image->begin(), image->end(), pixels.begin());
    return true;
  }
  // CURSOR_UPDATE carries a8r8g8b8: convert with pixman, keeping alpha.
  HostImage& image = *resource->image;
  std::optional<pixman_format_code_t> format =
      renderer::software2d::PixmanFormatFor(image.format());
  pixman_image_t* source = pixman_image_create_bits(
      *format, kCursorSize, kCursorSize, reinterpret_cast<uint32_t*>(image.bytes().data()),
      static_cast<int>(image.stride()));
  pixman_image_t* destination = pixman_image_create_bits(PIXMAN_a8r8g8b8, kCursorSize, kCursorSize,
                                                         pixels.data(), kCursorSize * 4);
  if (source != nullptr && destination != nullptr) {
    pixman_image_composite32(PIXMAN_OP_SRC, source, nullptr, destination, 0, 0, 0, 0, 0, 0,
                             kCursorSize, kCursorSize);
  }
  if (source != nullptr) pixman_image_unref(source);
  if (destination != nullptr) pixman_image_unref(destination);
  return true;
}

void CommandProcessor::HandleCursor(const virtio::DescriptorChain& chain) {
  ++statistics_.cursor_commands;
  std::optional<UpdateCursor> request = ReadRequest<UpdateCursor>(chain);
  if (!request) {
    Reject(ResponseType::kErrUnspec, "cursor command truncated");
    return;
  }
  const CursorPos& position = request->pos;
  if (position.scanout_id >= kMaxScanouts) {
    Reject(ResponseType::kErrInvalidScanoutId, "cursor on scanout %u", position.scanout_id);
    return;
  }
  if (display_ == nullptr || !display_->attached()) return;
  switch (static_cast<CommandType>(request->hdr.type)) {
    case CommandType::kMoveCursor:
      (void)display_->SendCursorPos(position.scanout_id, position.x, position.y);
      return;
    case CommandType::kUpdateCursor:
      break;
    default:
      Reject(ResponseType::kErrUnspec, "cursor queue command 0x%x", request->hdr.type);
      return;
  }
  if (request->resource_id == 0) {
    (void)display_->SendCursorHide(position.scanout_id, position.x, position.y);
    return;
  }
  std::array<uint32_t, kCursorSize * kCursorSize> pixels{};
  (void)CursorImage(request->resource_id, pixels);  // Transparent when it fails.
  (void)display_->SendCursorUpdate(position.scanout_id, position.x, position.y, request->hot_x,
                                   request->hot_y, pixels.data());
}

}  // namespace vgpu::gpu
