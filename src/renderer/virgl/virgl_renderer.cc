#include "renderer/virgl/virgl_renderer.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/log.h"
#include "renderer/virgl/egl_probe.h"
#include "renderer/virgl/exported_memory.h"
#include "renderer/virgl/virgl_api.h"
#include "renderer/virgl/virgl_errors.h"

namespace vgpu::renderer::virgl {
namespace {

// The poll set's key of wakeup_ (context ids are 32-bit, 0 is virgl's own fd).
constexpr uint64_t kWakeupKey = ~uint64_t{0};

// virglrenderer's state is process-global: one initialised instance at a time.
std::atomic<bool> instance_alive{false};

// Spec: struct virtio_gpu_ctx_create.debug_name is char[64].
constexpr size_t kMaxDebugNameBytes = 64;

std::string FlagNames(int flags) {
  std::string names;
  const auto add = [&](int flag, const char* name) {
    if ((flags & flag) == 0) return;
    if (!names.empty()) names += '|';
    names += name;
  };
  add(VIRGL_RENDERER_USE_EGL, "EGL");
  add(VIRGL_RENDERER_USE_GLX, "GLX");
  add(VIRGL_RENDERER_USE_SURFACELESS, "SURFACELESS");
  add(VIRGL_RENDERER_USE_GLES, "GLES");
  add(VIRGL_RENDERER_THREAD_SYNC, "THREAD_SYNC");
  add(VIRGL_RENDERER_VENUS, "VENUS");
  add(VIRGL_RENDERER_RENDER_SERVER, "RENDER_SERVER");
  return names;
}

// virglrenderer's own messages: its start-up notes ("gl_version 45 - core profile enabled") and
// the errors a guest provokes ("context error reported ..."). Errors become rate-limited
// warnings, the rest debug output. Runs on the device thread, inside our calls into virgl.
void ForwardVirglMessage(const char* format, va_list arguments) {
  static thread_local RateLimitedLog limiter;
  char text[512];
  std::vsnprintf(text, sizeof(text), format, arguments);
  size_t length = std::strlen(text);
  while (length > 0 && (text[length - 1] == '\n' || text[length - 1] == '\r')) --length;
  if (length == 0) return;
  text[length] = '\0';
  const bool is_error = std::strstr(text, "error") != nullptr || std::strstr(text, "Illegal") ||
                        std::strstr(text, "failed");
  limiter.Log(is_error ? LogLevel::kWarning : LogLevel::kDebug, "virglrenderer: %s", text);
}

}  // namespace

Result<std::unique_ptr<VirglRenderer>> VirglRenderer::Create(VirglOptions options) {
  if (options.use_egl == options.use_glx) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "virgl needs exactly one of EGL and GLX (this daemon supplies no GL "
                     "contexts of its own)");
  }
  if (options.use_surfaceless && !options.use_egl) {
    return MakeError(ErrorKind::kInvalidArgument, "virgl: surfaceless needs EGL");
  }
  for (uint32_t id : options.capsets) {
    if (id != kCapsetVirgl && id != kCapsetVirgl2 && id != kCapsetVenus) {
      return MakeError(ErrorKind::kUnsupported, "capset " + std::to_string(id) +
                                                    " is not provided by the virglrenderer "
                                                    "backend (1 = virgl, 2 = virgl2, 4 = venus)");
    }
  }
  const bool venus = std::find(options.capsets.begin(), options.capsets.end(), kCapsetVenus) !=
                     options.capsets.end();

  int flags = VIRGL_RENDERER_THREAD_SYNC;
  if (options.use_egl) flags |= VIRGL_RENDERER_USE_EGL;
  if (options.use_glx) flags |= VIRGL_RENDERER_USE_GLX;
  if (options.use_surfaceless) flags |= VIRGL_RENDERER_USE_SURFACELESS;
  if (options.use_gles) flags |= VIRGL_RENDERER_USE_GLES;
  // Venus runs in virglrenderer's render server (a process it starts, before the sandbox), or
  // in this process where asked to.
  if (venus) {
    flags |= VIRGL_RENDERER_VENUS;
    if (!options.venus_in_process) flags |= VIRGL_RENDERER_RENDER_SERVER;
  }

  bool expected = false;
  if (!instance_alive.compare_exchange_strong(expected, true)) {
    return MakeError(ErrorKind::kUnsupported,
                     "virglrenderer is already initialised in this process (its state is "
                     "global: one renderer per process)");
  }
  std::unique_ptr<VirglRenderer> renderer(new VirglRenderer());
  renderer->drm_fd_ = std::move(options.drm_fd);
  switch (options.display_readback) {
    case VirglOptions::DisplayReadback::kPackBuffer:
      renderer->pack_reader_ = std::make_unique<PixelPackReader>();
      break;
    case VirglOptions::DisplayReadback::kPackBufferMapPerRead:
      renderer->pack_reader_ = std::make_unique<PixelPackReader>(
          PixelPackReader::Route::kAuto, PixelPackReader::Storage::kMapPerRead);
      break;
    case VirglOptions::DisplayReadback::kTransfer:
      break;
  }
  if (Result<void> initialized = renderer->Initialize(flags); !initialized) {
    return ErrorOf(initialized);  // The destructor releases instance_alive.
  }
  renderer->LoadCapsets(options.capsets);
  return renderer;
}

Result<void> VirglRenderer::Initialize(int flags) {
  callbacks_ = std::make_unique<virgl_renderer_callbacks>();
  std::memset(callbacks_.get(), 0, sizeof(virgl_renderer_callbacks));
  // Version 3: write_context_fence (per-context rings, 64-bit ids). Version 4 only adds
  // get_egl_display, which needs caller-made GL contexts.
  callbacks_->version = 3;
  callbacks_->write_fence = &VirglRenderer::WriteFence;
  callbacks_->write_context_fence = &VirglRenderer::WriteContextFence;
  if (drm_fd_.valid()) callbacks_->get_drm_fd = &VirglRenderer::GetDrmFd;

  if ((flags & VIRGL_RENDERER_USE_SURFACELESS) != 0) {
    if (Result<void> egl = ProbeSurfacelessEgl(); !egl) {
      return MakeError(ErrorKind::kUnsupported, "virglrenderer cannot start with flags " +
                                                    FlagNames(flags) + ": " + egl.error().message);
    }
  }
  virgl_set_debug_callback(&ForwardVirglMessage);
  // The cookie must be non-NULL (virgl_renderer_init treats NULL as "not initialised").
  const int result = virgl_renderer_init(this, flags, callbacks_.get());
  if (result != 0) {
    virgl_set_debug_callback(nullptr);
    return MakeError(
        ErrorKind::kUnsupported,
        "virglrenderer initialisation failed with flags " + FlagNames(flags) +
            " (virgl_renderer_init returned " + std::to_string(result) +
            "): no usable GL for this winsys; try --use-egl true --use-surfaceless true, or "
            "check the GL drivers (Mesa's libegl-mesa0 and libgl1-mesa-dri)");
  }
  initialized_ = true;
  poll_fd_ = virgl_renderer_get_poll_fd();
  if (poll_fd_ < 0) {
    LogWarning("virglrenderer runs without THREAD_SYNC: fences retire only when polled");
  }
  poll_set_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!poll_set_) return MakeSystemError("epoll_create1(renderer fences)", errno);
  wakeup_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  epoll_event wakeup{.events = EPOLLIN, .data = {.u64 = kWakeupKey}};
  if (!wakeup_ || epoll_ctl(poll_set_.get(), EPOLL_CTL_ADD, wakeup_.get(), &wakeup) != 0) {
    return MakeSystemError("eventfd(renderer wakeup)", errno);
  }
  if (poll_fd_ >= 0) {
    epoll_event global{.events = EPOLLIN, .data = {.u64 = 0}};  // Context 0: virgl's own.
    if (epoll_ctl(poll_set_.get(), EPOLL_CTL_ADD, poll_fd_, &global) != 0) {
      return MakeSystemError("epoll_ctl(virgl poll fd)", errno);
    }
  }
  return {};
}

void VirglRenderer::LoadCapsets(const std::vector<uint32_t>& requested) {
  for (uint32_t id : requested) {
    const bool duplicate = std::any_of(capsets_.begin(), capsets_.end(),
                                       [id](const CapsetInfo& info) { return info.id == id; });
    if (duplicate) continue;
    CapsetInfo info{.id = id};
    virgl_renderer_get_cap_set(id, &info.max_version, &info.max_size);
    // Venus's capset has version 0 (its versions are in the capset's own fields): only a size of
    // 0 means "not there".
    if (info.max_size == 0 || (info.max_version == 0 && id != kCapsetVenus)) {
      LogWarning("virglrenderer offers no capset %u (version %u, size %u): not offered", id,
                 info.max_version, info.max_size);
      continue;
    }
    capsets_.push_back(info);
  }
}

VirglRenderer::~VirglRenderer() {
  if (initialized_) {
    virgl_renderer_force_ctx_0();
    pack_reader_.reset();  // Its GL objects live in ctx0.
    virgl_renderer_cleanup(this);
    virgl_set_debug_callback(nullptr);
  }
  // The backing arrays (backings_) are freed after cleanup, when virgl holds no pointer to them.
  instance_alive.store(false);
}

void VirglRenderer::WriteFence(void* cookie, uint32_t fence) {
  auto* self = static_cast<VirglRenderer*>(cookie);
  if (!self->fences_.RetireGlobal(fence)) LogWarning("virgl retired unknown ctx0 fence %u", fence);
}

void VirglRenderer::WriteContextFence(void* cookie, uint32_t context, uint32_t ring_index,
                                      uint64_t fence_id) {
  auto* self = static_cast<VirglRenderer*>(cookie);
  if (!self->fences_.RetireContext(ContextId{context}, ring_index, fence_id)) {
    LogWarning("virgl retired unknown fence %llu on context %u ring %u",
               static_cast<unsigned long long>(fence_id), context, ring_index);
  }
}

int VirglRenderer::GetDrmFd(void* cookie) {
  // virgl takes ownership of what this returns and may ask again: hand the fd over once.
  return static_cast<VirglRenderer*>(cookie)->drm_fd_.release();
}

Result<CapsetInfo> VirglRenderer::CapsetInfoAt(uint32_t index) const {
  if (index >= capsets_.size()) {
    return MakeError(ErrorKind::kOutOfRange, "capset index " + std::to_string(index) +
                                                 " out of range (" +
                                                 std::to_string(capsets_.size()) + " capsets)");
  }
  return capsets_[index];
}

Result<std::vector<uint8_t>> VirglRenderer::Capset(uint32_t id, uint32_t version) const {
  auto info = std::find_if(capsets_.begin(), capsets_.end(),
                           [id](const CapsetInfo& candidate) { return candidate.id == id; });
  if (info == capsets_.end()) {
    return MakeError(ErrorKind::kInvalidArgument, "capset " + std::to_string(id) + " not enabled");
  }
  if (version > info->max_version) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "capset " + std::to_string(id) + " version " + std::to_string(version) +
                         " above the maximum " + std::to_string(info->max_version));
  }
  if (info->max_size == 0) {  // Filtered at Create; checked again where it would be fatal.
    return MakeError(ErrorKind::kInvalidArgument, "capset of size 0");
  }
  // Bounds: virgl writes at most max_size bytes, the size it reported for this capset.
  std::vector<uint8_t> bytes(info->max_size, 0);
  virgl_renderer_fill_caps(id, version, bytes.data());
  return bytes;
}

Result<void> VirglRenderer::CreateContext(const ContextParams& params) {
  if (params.capset_id != 0 &&
      std::none_of(capsets_.begin(), capsets_.end(),
                   [&](const CapsetInfo& info) { return info.id == params.capset_id; })) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "context capset " + std::to_string(params.capset_id) + " not enabled");
  }
  // Bounds: at most 64 bytes, stopping at the first NUL; virgl copies name_length bytes.
  const std::string_view bounded =
      params.debug_name.substr(0, std::min(params.debug_name.size(), kMaxDebugNameBytes));
  const std::string name(bounded.substr(0, bounded.find('\0')));

  virgl_renderer_force_ctx_0();
  const uint32_t id = params.id.value();
  const int result =
      params.capset_id == 0
          ? virgl_renderer_context_create(id, static_cast<uint32_t>(name.size()), name.c_str())
          : virgl_renderer_context_create_with_flags(
                id, params.capset_id & VIRGL_RENDERER_CONTEXT_FLAG_CAPSET_ID_MASK,
                static_cast<uint32_t>(name.size()), name.c_str());
  if (result != 0) return VirglFailure("creating context " + std::to_string(id), result);
  // A context with fences of its own (Venus) signals them on its own fd.
  const int context_fd = virgl_renderer_context_get_poll_fd(id);
  if (context_fd >= 0 && context_fd != poll_fd_) {
    epoll_event event{.events = EPOLLIN, .data = {.u64 = id}};
    if (epoll_ctl(poll_set_.get(), EPOLL_CTL_ADD, context_fd, &event) != 0) {
      const int error = errno;
      virgl_renderer_context_destroy(id);
      return MakeSystemError("epoll_ctl(context " + std::to_string(id) + " poll fd)", error);
    }
    context_poll_fds_[params.id] = context_fd;
  }
  return {};
}

void VirglRenderer::DestroyContext(ContextId context) {
  if (auto polled = context_poll_fds_.find(context); polled != context_poll_fds_.end()) {
    (void)epoll_ctl(poll_set_.get(), EPOLL_CTL_DEL, polled->second, nullptr);  // Closed next.
    context_poll_fds_.erase(polled);
  }
  virgl_renderer_force_ctx_0();
  virgl_renderer_context_destroy(context.value());
  if (const size_t dropped = fences_.DropContext(context); dropped > 0) {
    LogDebug("context %u destroyed with %zu fences pending", context.value(), dropped);
  }
}

Result<void> VirglRenderer::AttachResource(ContextId context, ResourceId resource) {
  virgl_renderer_force_ctx_0();
  virgl_renderer_ctx_attach_resource(static_cast<int>(context.value()),
                                     static_cast<int>(resource.value()));
  return {};
}

Result<void> VirglRenderer::DetachResource(ContextId context, ResourceId resource) {
  virgl_renderer_force_ctx_0();
  virgl_renderer_ctx_detach_resource(static_cast<int>(context.value()),
                                     static_cast<int>(resource.value()));
  return {};
}

Result<void> VirglRenderer::CreateResource(const ResourceParams& params) {
  virgl_renderer_resource_create_args create{
      .handle = params.id.value(),
      .target = params.target,
      .format = params.format,
      .bind = params.bind,
      .width = params.width,
      .height = params.height,
      .depth = params.depth,
      .array_size = params.array_size,
      .last_level = params.last_level,
      .nr_samples = params.nr_samples,
      .flags = params.flags,
  };
  virgl_renderer_force_ctx_0();
  const int result = virgl_renderer_resource_create(&create, nullptr, 0);
  if (result != 0) {
    return VirglFailure("creating resource " + std::to_string(params.id.value()), result);
  }
  return {};
}

Result<void> VirglRenderer::CreateBlob(const BlobParams& params, const GuestBacking* backing) {
  std::vector<iovec> entries;
  if (backing != nullptr) {
    entries = backing->Iovecs();
    if (entries.empty() || entries.size() > static_cast<size_t>(INT32_MAX)) {
      return MakeError(ErrorKind::kInvalidArgument, "blob entry count out of range");
    }
  }
  const virgl_renderer_resource_create_blob_args args{
      .res_handle = params.id.value(),
      .ctx_id = params.context.value(),
      .blob_mem = params.blob_mem,
      .blob_flags = params.blob_flags,
      .blob_id = params.blob_id,
      .size = params.size,
      .iovecs = entries.empty() ? nullptr : entries.data(),
      .num_iovs = static_cast<uint32_t>(entries.size())};
  const int result = virgl_renderer_resource_create_blob(&args);
  if (result != 0) {
    // A blob_id the context never prepared, a size that does not match it: the guest's values.
    return MakeError(ErrorKind::kInvalidArgument,
                     "virglrenderer refused blob " + std::to_string(params.id.value()) +
                         " (blob_id " + std::to_string(params.blob_id) +
                         "): " + std::strerror(result < 0 ? -result : result));
  }
  if (!entries.empty()) {
    // virgl keeps entries.data(), as for an attached backing; DestroyResource detaches it.
    backings_.insert_or_assign(params.id, std::move(entries));
    ++live_backings_;
  }
  return {};
}

Result<ExportedBlob> VirglRenderer::ExportBlob(ResourceId resource) {
  uint32_t fd_type = 0;
  int fd = -1;
  const int result = virgl_renderer_resource_export_blob(resource.value(), &fd_type, &fd);
  UniqueFd exported(fd);
  if (result != 0 || !exported) {
    return MakeError(ErrorKind::kUnsupported,
                     "virglrenderer cannot export blob " + std::to_string(resource.value()) +
                         " as an fd (" + std::strerror(result < 0 ? -result : result) + ")");
  }
  uint32_t map_info = 0;
  if (virgl_renderer_resource_get_map_info(resource.value(), &map_info) != 0) {
    return MakeError(ErrorKind::kUnsupported,
                     "blob " + std::to_string(resource.value()) + " has no map info");
  }
  // Where in the fd the blob's bytes are (exported_memory.h).
  Result<MemoryFdLayout> layout = LayoutOfExportedFd(exported.get(), fd_type);
  if (!layout) return ErrorOf(layout);
  LogDebug("blob %u exported as fd type %u, bytes at %llu (%llu of them), map_info 0x%x",
           resource.value(), fd_type, static_cast<unsigned long long>(layout->offset),
           static_cast<unsigned long long>(layout->size), map_info);
  return ExportedBlob{.fd = std::move(exported),
                      .offset = layout->offset,
                      .size = layout->size,
                      .map_info = map_info};
}

void VirglRenderer::DestroyResource(ResourceId resource) {
  virgl_renderer_force_ctx_0();
  if (backings_.contains(resource)) DetachBacking(resource);
  virgl_renderer_resource_unref(resource.value());
}

Result<void> VirglRenderer::AttachBacking(ResourceId resource, const GuestBacking& backing) {
  std::vector<iovec> entries = backing.Iovecs();
  if (entries.empty() || entries.size() > static_cast<size_t>(INT_MAX)) {
    return MakeError(ErrorKind::kInvalidArgument, "backing entry count out of range");
  }
  const int result = virgl_renderer_resource_attach_iov(
      static_cast<int>(resource.value()), entries.data(), static_cast<int>(entries.size()));
  if (result != 0) {
    // `entries` is freed on return: nothing leaks on failure (CVE-2017-5552 class).
    return VirglFailure("attaching backing to resource " + std::to_string(resource.value()),
                        result);
  }
  // Moving the vector keeps its heap array, the one virgl now points at.
  backings_.insert_or_assign(resource, std::move(entries));
  ++live_backings_;
  return {};
}

void VirglRenderer::DetachBacking(ResourceId resource) {
  auto backing = backings_.find(resource);
  if (backing == backings_.end()) return;
  iovec* detached = nullptr;
  int detached_count = 0;
  virgl_renderer_force_ctx_0();
  virgl_renderer_resource_detach_iov(static_cast<int>(resource.value()), &detached,
                                     &detached_count);
  if (detached != backing->second.data()) {
    LogWarning("virgl detached an unexpected backing from resource %u", resource.value());
  }
  backings_.erase(backing);
  --live_backings_;
}

Result<void> VirglRenderer::Transfer(const TransferParams& params, bool to_host) {
  virgl_box box{.x = params.box.x,
                .y = params.box.y,
                .z = params.box.z,
                .w = params.box.w,
                .h = params.box.h,
                .d = params.box.d};
  virgl_renderer_force_ctx_0();
  // iov NULL / 0: virgl uses the attached backing and checks box and offset against it.
  const uint32_t resource = params.resource.value();
  const uint32_t context = params.context.value();
  const int result = to_host ? virgl_renderer_transfer_write_iov(
                                   resource, context, static_cast<int>(params.level), params.stride,
                                   params.layer_stride, &box, params.offset, nullptr, 0)
                             : virgl_renderer_transfer_read_iov(resource, context, params.level,
                                                                params.stride, params.layer_stride,
                                                                &box, params.offset, nullptr, 0);
  if (result != 0) {
    return VirglFailure(std::string(to_host ? "transfer to" : "transfer from") + " resource " +
                            std::to_string(resource),
                        result);
  }
  return {};
}

Result<void> VirglRenderer::TransferToHost(const TransferParams& params) {
  return Transfer(params, /*to_host=*/true);
}

Result<void> VirglRenderer::TransferFromHost(const TransferParams& params) {
  return Transfer(params, /*to_host=*/false);
}

Result<void> VirglRenderer::Submit(ContextId context, std::span<const uint8_t> commands) {
  if (commands.size() % sizeof(uint32_t) != 0) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        "command stream of " + std::to_string(commands.size()) + " bytes is not whole dwords");
  }
  const size_t dwords = commands.size() / sizeof(uint32_t);
  if (dwords == 0) return {};
  if (dwords > static_cast<size_t>(INT_MAX)) {
    return MakeError(ErrorKind::kInvalidArgument, "command stream too long");
  }
  // A private, aligned copy: virgl decodes dwords in place.
  submit_buffer_.resize(dwords);
  std::memcpy(submit_buffer_.data(), commands.data(), commands.size());
  virgl_renderer_force_ctx_0();
  const int result = virgl_renderer_submit_cmd(
      submit_buffer_.data(), static_cast<int>(context.value()), static_cast<int>(dwords));
  if (result != 0) {
    return VirglFailure("submitting to context " + std::to_string(context.value()), result);
  }
  return {};
}

Result<void> VirglRenderer::CreateFence(const FenceSignal& fence) {
  virgl_renderer_force_ctx_0();
  if (!fence.per_context) {
    // Registered before virgl sees it, so a callback can never find it missing.
    const uint32_t virgl_id = fences_.AddGlobal(fence.fence_id, fence.context, fence.ring_index);
    const int result = virgl_renderer_create_fence(static_cast<int>(virgl_id), 0);
    if (result != 0) {
      fences_.RemoveLastGlobal();
      return VirglFailure("creating ctx0 fence", result);
    }
    return {};
  }
  fences_.AddContext(fence.context, fence.ring_index, fence.fence_id);
  // virglrenderer assumes all fences of one timeline are mergeable (as rutabaga does).
  const int result = virgl_renderer_context_create_fence(
      fence.context.value(), VIRGL_RENDERER_FENCE_FLAG_MERGEABLE, fence.ring_index, fence.fence_id);
  if (result != 0) {
    fences_.RemoveLastContext(fence.context, fence.ring_index);
    return VirglFailure("creating a fence on context " + std::to_string(fence.context.value()) +
                            " ring " + std::to_string(fence.ring_index),
                        result);
  }
  // A context with its own fences may have signalled this one already (in-process Venus signals
  // ring 0, its CPU timeline, at submission, and writes its fd only for queue fences): retire
  // what is signalled now, and have the event loop call Poll() to deliver it.
  if (context_poll_fds_.contains(fence.context)) {
    const size_t pending = fences_.pending_count();
    virgl_renderer_context_poll(fence.context.value());
    if (fences_.pending_count() < pending) {
      const uint64_t one = 1;
      (void)!write(wakeup_.get(), &one, sizeof(one));
    }
  }
  return {};
}

void VirglRenderer::Poll() {
  virgl_renderer_poll();
  std::array<epoll_event, 16> ready;
  const int count = epoll_wait(poll_set_.get(), ready.data(), static_cast<int>(ready.size()), 0);
  for (int i = 0; i < count; ++i) {
    if (ready[i].data.u64 == kWakeupKey) {
      uint64_t value;
      (void)!read(wakeup_.get(), &value, sizeof(value));
    } else if (ready[i].data.u64 != 0) {
      virgl_renderer_context_poll(static_cast<uint32_t>(ready[i].data.u64));
    }
  }
  // Delivered after virgl returns, so the handler may call back into this class.
  for (const FenceSignal& signal : fences_.TakeSignalled()) {
    if (fence_handler_) fence_handler_(signal);
  }
}

}  // namespace vgpu::renderer::virgl
