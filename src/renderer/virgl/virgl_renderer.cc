#include "renderer/virgl/virgl_renderer.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/log.h"
#include "renderer/virgl/egl_probe.h"
#include "renderer/virgl/virgl_api.h"
#include "renderer/virgl/virgl_errors.h"

namespace vgpu::renderer::virgl {
namespace {

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

bool VirglRenderer::IsUnknownContext(const Error& error) {
  return error.kind == ErrorKind::kNotFound && error.message.starts_with(kUnknownContextPrefix);
}

bool VirglRenderer::IsUnknownResource(const Error& error) {
  return error.kind == ErrorKind::kNotFound && error.message.starts_with(kUnknownResourcePrefix);
}

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
    if (id != kCapsetVirgl && id != kCapsetVirgl2) {
      return MakeError(ErrorKind::kUnsupported, "capset " + std::to_string(id) +
                                                    " is not provided by the virglrenderer "
                                                    "backend (1 = virgl, 2 = virgl2)");
    }
  }

  int flags = VIRGL_RENDERER_THREAD_SYNC;
  if (options.use_egl) flags |= VIRGL_RENDERER_USE_EGL;
  if (options.use_glx) flags |= VIRGL_RENDERER_USE_GLX;
  if (options.use_surfaceless) flags |= VIRGL_RENDERER_USE_SURFACELESS;
  if (options.use_gles) flags |= VIRGL_RENDERER_USE_GLES;

  bool expected = false;
  if (!instance_alive.compare_exchange_strong(expected, true)) {
    return MakeError(ErrorKind::kUnsupported,
                     "virglrenderer is already initialised in this process (its state is "
                     "global: one renderer per process)");
  }
  std::unique_ptr<VirglRenderer> renderer(new VirglRenderer());
  renderer->drm_fd_ = std::move(options.drm_fd);
  if (Result<void> initialized = renderer->Initialize(flags); !initialized) {
    return tl::unexpected(initialized.error());  // The destructor releases instance_alive.
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
  return {};
}

void VirglRenderer::LoadCapsets(const std::vector<uint32_t>& requested) {
  for (uint32_t id : requested) {
    const bool duplicate = std::any_of(capsets_.begin(), capsets_.end(),
                                       [id](const CapsetInfo& info) { return info.id == id; });
    if (duplicate) continue;
    CapsetInfo info{.id = id};
    virgl_renderer_get_cap_set(id, &info.max_version, &info.max_size);
    if (info.max_version == 0 || info.max_size == 0) {
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
    virgl_renderer_cleanup(this);
    virgl_set_debug_callback(nullptr);
  }
  // The backing arrays (resources_) are freed after cleanup, when virgl holds no pointer to them.
  instance_alive.store(false);
}

void VirglRenderer::WriteFence(void* cookie, uint32_t fence) {
  auto* self = static_cast<VirglRenderer*>(cookie);
  if (!self->fences_.RetireGlobal(fence)) LogWarning("virgl retired unknown ctx0 fence %u", fence);
}

void VirglRenderer::WriteContextFence(void* cookie, uint32_t context, uint32_t ring_index,
                                      uint64_t fence_id) {
  auto* self = static_cast<VirglRenderer*>(cookie);
  if (!self->fences_.RetireContext(gpu::ContextId{context}, ring_index, fence_id)) {
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

Result<void> VirglRenderer::CheckContext(gpu::ContextId context) const {
  if (!contexts_.contains(context.value())) return UnknownContext(context);
  return {};
}

Result<VirglRenderer::ResourceState*> VirglRenderer::FindResource(gpu::ResourceId resource) {
  auto found = resources_.find(resource.value());
  if (found == resources_.end()) return UnknownResource(resource);
  return &found->second;
}

Result<void> VirglRenderer::CreateContext(gpu::ContextId context, uint32_t capset_id,
                                          std::span<const char> debug_name) {
  if (context.value() == 0) {
    return MakeError(ErrorKind::kInvalidArgument, "context id 0 is reserved");
  }
  if (contexts_.contains(context.value())) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "context " + std::to_string(context.value()) + " exists");
  }
  if (capset_id != 0 &&
      std::none_of(capsets_.begin(), capsets_.end(),
                   [capset_id](const CapsetInfo& info) { return info.id == capset_id; })) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "context capset " + std::to_string(capset_id) + " not enabled");
  }
  // Bounds: at most 64 bytes, stopping at the first NUL; virgl copies name_length bytes.
  const std::span<const char> bounded =
      debug_name.first(std::min(debug_name.size(), kMaxDebugNameBytes));
  const auto nul = std::find(bounded.begin(), bounded.end(), '\0');
  const std::string name(bounded.begin(), nul);

  virgl_renderer_force_ctx_0();
  const int result =
      capset_id == 0 ? virgl_renderer_context_create(
                           context.value(), static_cast<uint32_t>(name.size()), name.c_str())
                     : virgl_renderer_context_create_with_flags(
                           context.value(), capset_id & VIRGL_RENDERER_CONTEXT_FLAG_CAPSET_ID_MASK,
                           static_cast<uint32_t>(name.size()), name.c_str());
  if (result != 0)
    return VirglFailure("creating context " + std::to_string(context.value()), result);
  contexts_.insert(context.value());
  return {};
}

Result<void> VirglRenderer::DestroyContext(gpu::ContextId context) {
  if (Result<void> known = CheckContext(context); !known) return known;
  virgl_renderer_force_ctx_0();
  virgl_renderer_context_destroy(context.value());
  contexts_.erase(context.value());
  if (const size_t dropped = fences_.DropContext(context); dropped > 0) {
    LogDebug("context %u destroyed with %zu fences pending", context.value(), dropped);
  }
  return {};
}

Result<void> VirglRenderer::AttachResource(gpu::ContextId context, gpu::ResourceId resource) {
  if (Result<void> known = CheckContext(context); !known) return known;
  if (Result<ResourceState*> found = FindResource(resource); !found) {
    return tl::unexpected(found.error());
  }
  virgl_renderer_force_ctx_0();
  virgl_renderer_ctx_attach_resource(static_cast<int>(context.value()),
                                     static_cast<int>(resource.value()));
  return {};
}

Result<void> VirglRenderer::DetachResource(gpu::ContextId context, gpu::ResourceId resource) {
  if (Result<void> known = CheckContext(context); !known) return known;
  if (Result<ResourceState*> found = FindResource(resource); !found) {
    return tl::unexpected(found.error());
  }
  virgl_renderer_force_ctx_0();
  virgl_renderer_ctx_detach_resource(static_cast<int>(context.value()),
                                     static_cast<int>(resource.value()));
  return {};
}

Result<void> VirglRenderer::CreateResource(const ResourceCreateArgs& args) {
  if (args.id.value() == 0) {
    return MakeError(ErrorKind::kInvalidArgument, "resource id 0 is reserved");
  }
  if (resources_.contains(args.id.value())) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource " + std::to_string(args.id.value()) + " exists");
  }
  virgl_renderer_resource_create_args create{
      .handle = args.id.value(),
      .target = args.target,
      .format = args.format,
      .bind = args.bind,
      .width = args.width,
      .height = args.height,
      .depth = args.depth,
      .array_size = args.array_size,
      .last_level = args.last_level,
      .nr_samples = args.nr_samples,
      .flags = args.flags,
  };
  virgl_renderer_force_ctx_0();
  const int result = virgl_renderer_resource_create(&create, nullptr, 0);
  if (result != 0) {
    return VirglFailure("creating resource " + std::to_string(args.id.value()), result);
  }
  resources_.emplace(args.id.value(), ResourceState{});
  return {};
}

Result<void> VirglRenderer::Create2d(gpu::ResourceId resource, uint32_t format, uint32_t width,
                                     uint32_t height) {
  return CreateResource(ResourceCreateArgs{
      .id = resource,
      .target = kPipeTexture2d,
      .format = format,
      .bind = kBindRenderTarget,
      .width = width,
      .height = height,
      .depth = 1,
      .array_size = 1,
      .last_level = 0,
      .nr_samples = 0,
      .flags = kResourceFlagY0Top,
  });
}

Result<void> VirglRenderer::Unref(gpu::ResourceId resource) {
  Result<ResourceState*> state = FindResource(resource);
  if (!state) return tl::unexpected(state.error());
  virgl_renderer_force_ctx_0();
  if (!(*state)->backing.empty()) {
    if (Result<void> detached = DetachBacking(resource); !detached) return detached;
  }
  virgl_renderer_resource_unref(resource.value());
  resources_.erase(resource.value());
  return {};
}

Result<void> VirglRenderer::AttachBacking(gpu::ResourceId resource, std::vector<iovec> entries) {
  Result<ResourceState*> state = FindResource(resource);
  if (!state) return tl::unexpected(state.error());
  if (!(*state)->backing.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource " + std::to_string(resource.value()) + " already has a backing");
  }
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
  (*state)->backing = std::move(entries);
  ++live_backings_;
  return {};
}

Result<void> VirglRenderer::DetachBacking(gpu::ResourceId resource) {
  Result<ResourceState*> state = FindResource(resource);
  if (!state) return tl::unexpected(state.error());
  if ((*state)->backing.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource " + std::to_string(resource.value()) + " has no backing");
  }
  iovec* detached = nullptr;
  int detached_count = 0;
  virgl_renderer_resource_detach_iov(static_cast<int>(resource.value()), &detached,
                                     &detached_count);
  if (detached != (*state)->backing.data()) {
    LogWarning("virgl detached an unexpected backing from resource %u", resource.value());
  }
  (*state)->backing = {};
  --live_backings_;
  return {};
}

Result<void> VirglRenderer::Transfer(const TransferArgs& args, bool to_host) {
  Result<ResourceState*> state = FindResource(args.resource);
  if (!state) return tl::unexpected(state.error());
  if (args.context.value() != 0) {
    if (Result<void> known = CheckContext(args.context); !known) return known;
  }
  if ((*state)->backing.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource " + std::to_string(args.resource.value()) + " has no backing");
  }
  virgl_box box{.x = args.box.x,
                .y = args.box.y,
                .z = args.box.z,
                .w = args.box.width,
                .h = args.box.height,
                .d = args.box.depth};
  virgl_renderer_force_ctx_0();
  // iov NULL / 0: virgl uses the attached backing and checks box and offset against it.
  const int result =
      to_host ? virgl_renderer_transfer_write_iov(args.resource.value(), args.context.value(),
                                                  static_cast<int>(args.level), args.stride,
                                                  args.layer_stride, &box, args.offset, nullptr, 0)
              : virgl_renderer_transfer_read_iov(args.resource.value(), args.context.value(),
                                                 args.level, args.stride, args.layer_stride, &box,
                                                 args.offset, nullptr, 0);
  if (result != 0) {
    return VirglFailure(std::string(to_host ? "transfer to" : "transfer from") + " resource " +
                            std::to_string(args.resource.value()),
                        result);
  }
  return {};
}

Result<void> VirglRenderer::TransferToHost(const TransferArgs& args) {
  return Transfer(args, /*to_host=*/true);
}

Result<void> VirglRenderer::TransferFromHost(const TransferArgs& args) {
  return Transfer(args, /*to_host=*/false);
}

Result<void> VirglRenderer::Submit(gpu::ContextId context, std::span<const uint8_t> commands,
                                   size_t max_bytes) {
  if (Result<void> known = CheckContext(context); !known) return known;
  if (commands.size() % sizeof(uint32_t) != 0) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        "command stream of " + std::to_string(commands.size()) + " bytes is not whole dwords");
  }
  if (commands.size() > max_bytes) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "command stream of " + std::to_string(commands.size()) +
                         " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  const size_t dwords = commands.size() / sizeof(uint32_t);
  if (dwords == 0) return {};
  if (dwords > static_cast<size_t>(INT_MAX)) {
    return MakeError(ErrorKind::kInvalidArgument, "command stream too long");
  }
  // A private, aligned copy: virgl decodes dwords in place, and guest memory could change
  // under it (double fetch).
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

Result<void> VirglRenderer::CreateFence(uint64_t fence_id, gpu::ContextId context,
                                        uint32_t ring_index, FenceScope scope) {
  virgl_renderer_force_ctx_0();
  if (scope == FenceScope::kGlobal) {
    // Registered before virgl sees it, so a callback can never find it missing.
    const uint32_t virgl_id = fences_.AddGlobal(fence_id, context, ring_index);
    const int result = virgl_renderer_create_fence(static_cast<int>(virgl_id), 0);
    if (result != 0) {
      fences_.RemoveLastGlobal();
      return VirglFailure("creating ctx0 fence", result);
    }
    return {};
  }
  if (Result<void> known = CheckContext(context); !known) return known;
  fences_.AddContext(context, ring_index, fence_id);
  // virglrenderer assumes all fences of one timeline are mergeable (as rutabaga does).
  const int result = virgl_renderer_context_create_fence(
      context.value(), VIRGL_RENDERER_FENCE_FLAG_MERGEABLE, ring_index, fence_id);
  if (result != 0) {
    fences_.RemoveLastContext(context, ring_index);
    return VirglFailure("creating a fence on context " + std::to_string(context.value()) +
                            " ring " + std::to_string(ring_index),
                        result);
  }
  return {};
}

void VirglRenderer::Poll() {
  virgl_renderer_poll();
  // Delivered after virgl returns, so the handler may call back into this class.
  for (const FenceSignal& signal : fences_.TakeSignalled()) {
    if (fence_handler_) fence_handler_(signal);
  }
}

}  // namespace vgpu::renderer::virgl
