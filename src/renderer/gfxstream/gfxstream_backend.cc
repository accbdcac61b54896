#include "renderer/gfxstream/gfxstream_backend.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <iterator>

#include "base/checked_math.h"
#include "base/log.h"
#include "renderer/gfxstream/gfxstream_layout.h"

namespace vgpu::renderer::gfxstream {
namespace {

// gfxstream's state is process-global (one sFrontend()): one initialised instance at a time.
std::atomic<bool> instance_alive{false};
// True while stream_renderer_init runs (OnDebugMessage).
std::atomic<bool> initialising{false};

// Spec: struct virtio_gpu_ctx_create.debug_name is char[64].
constexpr size_t kMaxDebugNameBytes = 64;
// Host bytes gfxstream may allocate for a backing beyond what it copies: it keeps a copy of the
// whole backing, so a guest could make it allocate any size it can map. A real backing holds the
// resource plus row and size alignment; twice the resource plus 1 MiB leaves room for every
// layout a driver picks.
constexpr uint64_t kBackingSlackBytes = 1ull << 20;

// Zero bytes after a copied command stream (Submit): more than gfxstream's largest command struct.
constexpr size_t kSubmitReadSlackBytes = 64;

std::string FlagNames(uint32_t flags) {
  std::string names;
  const auto add = [&](uint32_t flag, const char* name) {
    if ((flags & flag) == 0) return;
    if (!names.empty()) names += '|';
    names += name;
  };
  add(STREAM_RENDERER_FLAGS_USE_EGL_BIT, "EGL");
  add(STREAM_RENDERER_FLAGS_USE_SURFACELESS_BIT, "SURFACELESS");
  add(STREAM_RENDERER_FLAGS_USE_GLES_BIT, "GLES");
  add(STREAM_RENDERER_FLAGS_USE_VK_BIT, "VK");
  add(STREAM_RENDERER_FLAGS_USE_EXTERNAL_BLOB, "EXTERNAL_BLOB");
  add(STREAM_RENDERER_FLAGS_USE_SYSTEM_BLOB, "SYSTEM_BLOB");
  return names.empty() ? "none" : names;
}

tl::unexpected<Error> LibraryFailure(const std::string& what, int code) {
  // gfxstream returns negative errno values from some entry points and positive ones from others
  // (transfers of an unknown resource return EINVAL): any non-zero is a failure.
  return MakeError(ErrorKind::kInvalidArgument,
                   what + " failed (gfxstream returned " + std::to_string(code) + ")");
}

bool BoxInside(const Box& box, const ResourceParams& params) {
  const std::optional<uint32_t> right = CheckedAdd<uint32_t>(box.x, box.w);
  const std::optional<uint32_t> bottom = CheckedAdd<uint32_t>(box.y, box.h);
  const std::optional<uint32_t> back = CheckedAdd<uint32_t>(box.z, box.d);
  return right && bottom && back && *right <= params.width &&
         *bottom <= std::max<uint32_t>(params.height, 1) &&
         *back <= std::max<uint32_t>(std::max(params.depth, params.array_size), 1);
}

}  // namespace

Result<std::unique_ptr<Renderer>> GfxstreamBackend::Create(GfxstreamOptions options) {
  for (uint32_t id : options.capsets) {
    if (id != kCapsetGfxstreamVulkan && id != kCapsetGfxstreamGles) {
      return MakeError(ErrorKind::kUnsupported,
                       "capset " + std::to_string(id) +
                           " is not provided by the gfxstream backend (3 = gfxstream-vulkan, "
                           "8 = gfxstream-gles)");
    }
  }
  Result<std::unique_ptr<GfxstreamLibrary>> library = GfxstreamLibrary::Load(options.library_path);
  if (!library) return ErrorOf(library);
  Result<std::unique_ptr<FenceHandoff>> handoff = FenceHandoff::Create();
  if (!handoff) return ErrorOf(handoff);

  bool expected = false;
  if (!instance_alive.compare_exchange_strong(expected, true)) {
    return MakeError(ErrorKind::kUnsupported,
                     "gfxstream is already initialised in this process (its state is global: one "
                     "renderer per process)");
  }
  std::unique_ptr<GfxstreamBackend> backend(
      new GfxstreamBackend(std::move(*library), std::move(*handoff), options.max_image_dimension));
  if (Result<void> initialized = backend->Initialize(options); !initialized) {
    return ErrorOf(initialized);  // The destructor releases instance_alive.
  }
  backend->LoadCapsets(options.capsets);
  return std::unique_ptr<Renderer>(std::move(backend));
}

Result<void> GfxstreamBackend::Initialize(const GfxstreamOptions& options) {
  const auto wants = [&](uint32_t capset) {
    return std::find(options.capsets.begin(), options.capsets.end(), capset) !=
           options.capsets.end();
  };
  // As rutabaga does: GLES and Vulkan follow the enabled capsets (VK without GLES is gfxstream's
  // GuestVulkanOnly). The option parser already requires --use-gles for gfxstream-gles.
  uint32_t flags = 0;
  if (options.use_egl) flags |= STREAM_RENDERER_FLAGS_USE_EGL_BIT;
  if (options.use_surfaceless) flags |= STREAM_RENDERER_FLAGS_USE_SURFACELESS_BIT;
  if (options.use_gles && wants(kCapsetGfxstreamGles)) flags |= STREAM_RENDERER_FLAGS_USE_GLES_BIT;
  if (wants(kCapsetGfxstreamVulkan)) flags |= STREAM_RENDERER_FLAGS_USE_VK_BIT;
  if (options.use_glx) LogDebug("gfxstream ignores GLX; --use-glx has no effect in this mode");
  // Blob memory as fds a VMM in another process can map (gfxstream_backend.h, "Blobs").
  flags |= STREAM_RENDERER_FLAGS_USE_EXTERNAL_BLOB | STREAM_RENDERER_FLAGS_USE_SYSTEM_BLOB;

  stream_renderer_param params[] = {
      {STREAM_RENDERER_PARAM_USER_DATA, reinterpret_cast<uintptr_t>(handoff_.get())},
      {STREAM_RENDERER_PARAM_RENDERER_FLAGS, flags},
      {STREAM_RENDERER_PARAM_FENCE_CALLBACK,
       reinterpret_cast<uintptr_t>(&GfxstreamBackend::OnFence)},
      {STREAM_RENDERER_PARAM_WIN0_WIDTH, options.window_width},
      {STREAM_RENDERER_PARAM_WIN0_HEIGHT, options.window_height},
      {STREAM_RENDERER_PARAM_DEBUG_CALLBACK,
       reinterpret_cast<uintptr_t>(&GfxstreamBackend::OnDebugMessage)},
  };
  initialising.store(true);
  const int result = api_.init(params, std::size(params));
  initialising.store(false);
  if (result != 0) {
    return MakeError(ErrorKind::kUnsupported, "gfxstream initialisation failed with flags " +
                                                  FlagNames(flags) + " (stream_renderer_init in '" +
                                                  library_->path() + "' returned " +
                                                  std::to_string(result) + ")");
  }
  initialized_ = true;
  LogInfo("gfxstream from '%s' initialised with flags %s", library_->path().c_str(),
          FlagNames(flags).c_str());
  return {};
}

void GfxstreamBackend::LoadCapsets(const std::vector<uint32_t>& requested) {
  for (uint32_t id : requested) {
    const bool duplicate = std::any_of(capsets_.begin(), capsets_.end(),
                                       [id](const CapsetInfo& info) { return info.id == id; });
    if (duplicate) continue;
    // gfxstream leaves both outputs untouched for a capset it does not know, and never writes
    // the version: both start at 0, and 0 is the version the guest then asks for (as rutabaga).
    CapsetInfo info{.id = id};
    api_.get_cap_set(id, &info.max_version, &info.max_size);
    if (info.max_size == 0) {
      LogWarning("gfxstream offers no capset %u (size 0): not offered", id);
      continue;
    }
    capsets_.push_back(info);
  }
}

GfxstreamBackend::~GfxstreamBackend() {
  // After teardown gfxstream's threads are gone and no callback can touch handoff_.
  if (initialized_) api_.teardown();
  instance_alive.store(false);
}

void GfxstreamBackend::OnFence(void* user_data, stream_renderer_fence* fence) {
  if (user_data == nullptr || fence == nullptr) return;
  const bool per_context = (fence->flags & STREAM_RENDERER_FLAG_FENCE_RING_IDX) != 0;
  static_cast<FenceHandoff*>(user_data)->Push(FenceSignal{
      .context = ContextId{per_context ? fence->ctx_id : 0},
      .ring_index = per_context ? fence->ring_idx : 0u,
      .fence_id = fence->fence_id,
      .per_context = per_context,
  });
}

void GfxstreamBackend::OnDebugMessage(void*, stream_renderer_debug* debug) {
  // Any thread. While stream_renderer_init runs, every line is the host's own start-up (what
  // explains a failure to start among them): none is dropped. Later, errors are mostly
  // guest-provoked: rate-limited warnings, with a budget of their own so that chatty debug lines
  // cannot use it up.
  static thread_local RateLimitedLog error_limiter;
  static thread_local RateLimitedLog debug_limiter;
  if (debug == nullptr || debug->message == nullptr) return;
  const bool is_error = debug->debug_type == STREAM_RENDERER_DEBUG_ERROR ||
                        debug->debug_type == STREAM_RENDERER_DEBUG_WARN;
  const LogLevel level = is_error ? LogLevel::kWarning : LogLevel::kDebug;
  if (initialising.load()) {
    LogMessage(level, "gfxstream: %s", debug->message);
    return;
  }
  (is_error ? error_limiter : debug_limiter).Log(level, "gfxstream: %s", debug->message);
}

void GfxstreamBackend::Poll() {
  for (const FenceSignal& fence : handoff_->Take()) {
    if (fence_handler_) fence_handler_(fence);
  }
}

Result<CapsetInfo> GfxstreamBackend::CapsetInfoAt(uint32_t index) const {
  if (index >= capsets_.size()) {
    return MakeError(ErrorKind::kOutOfRange, "capset index " + std::to_string(index) +
                                                 " out of range (" +
                                                 std::to_string(capsets_.size()) + " capsets)");
  }
  return capsets_[index];
}

Result<std::vector<uint8_t>> GfxstreamBackend::Capset(uint32_t capset_id, uint32_t version) const {
  auto info = std::find_if(capsets_.begin(), capsets_.end(),
                           [capset_id](const CapsetInfo& info) { return info.id == capset_id; });
  if (info == capsets_.end()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "capset " + std::to_string(capset_id) + " not enabled");
  }
  if (version > info->max_version) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "capset " + std::to_string(capset_id) + " version " + std::to_string(version) +
                         " above the maximum " + std::to_string(info->max_version));
  }
  if (info->max_size == 0) {  // Filtered when loading; checked again where it would be fatal.
    return MakeError(ErrorKind::kInvalidArgument, "capset of size 0");
  }
  // Bounds: gfxstream writes the capset's struct, whose size is the max_size it reported.
  std::vector<uint8_t> bytes(info->max_size, 0);
  api_.fill_caps(capset_id, version, bytes.data());
  return bytes;
}

GfxstreamBackend::ResourceState& GfxstreamBackend::StateOf(ResourceId resource) {
  return resources_.at(resource);
}

Result<void> GfxstreamBackend::CreateContext(const ContextParams& params) {
  const uint32_t context_id = params.id.value();
  // gfxstream takes context and resource ids as int in places: keep them positive.
  if (context_id == 0 || context_id > static_cast<uint32_t>(INT_MAX)) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "context id " + std::to_string(context_id) + " out of range");
  }
  if (params.capset_id != 0 &&
      std::none_of(capsets_.begin(), capsets_.end(),
                   [&](const CapsetInfo& info) { return info.id == params.capset_id; })) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "context capset " + std::to_string(params.capset_id) + " not enabled");
  }
  // Bounds: at most 64 bytes, stopping at the first NUL; gfxstream copies nlen bytes.
  const std::string_view bounded =
      params.debug_name.substr(0, std::min(params.debug_name.size(), kMaxDebugNameBytes));
  const std::string name(bounded.substr(0, bounded.find('\0')));
  // context_init as VIRTIO_GPU_CMD_CTX_CREATE carries it: the capset id in the low 8 bits.
  const int result = api_.context_create(context_id, static_cast<uint32_t>(name.size()),
                                         name.c_str(), params.capset_id);
  if (result != 0) {
    return LibraryFailure("creating context " + std::to_string(context_id), result);
  }
  return {};
}

void GfxstreamBackend::DestroyContext(ContextId context) {
  api_.context_destroy(context.value());
  // gfxstream stops the context's rings with it.
  for (auto& [id, state] : resources_) {
    state.contexts.erase(context);
    if (state.blob && state.blob->ring_of == context) state.blob->ring_of.reset();
  }
  // gfxstream drops the context's recorded shapes with it.
  pending_shapes_.erase(context);
}

Result<void> GfxstreamBackend::AttachResource(ContextId context, ResourceId resource) {
  api_.ctx_attach_resource(static_cast<int>(context.value()), static_cast<int>(resource.value()));
  if (auto found = resources_.find(resource); found != resources_.end()) {
    found->second.contexts.insert(context);
  }
  return {};
}

Result<void> GfxstreamBackend::DetachResource(ContextId context, ResourceId resource) {
  api_.ctx_detach_resource(static_cast<int>(context.value()), static_cast<int>(resource.value()));
  if (auto found = resources_.find(resource); found != resources_.end()) {
    found->second.contexts.erase(context);
    // gfxstream stops a ring's reader when its blob leaves the ring's context.
    if (found->second.blob && found->second.blob->ring_of == context) {
      found->second.blob->ring_of.reset();
    }
  }
  return {};
}

Result<void> GfxstreamBackend::CheckShape(const ResourceParams& params) const {
  if (!ResourceBytes(params)) {
    return MakeError(ErrorKind::kInvalidArgument, "resource size overflows");
  }
  // gfxstream makes an image of width x height for every colour buffer and a buffer of width x
  // height bytes, without checking either: an empty image crashes its Vulkan path.
  if (params.width == 0 ||
      (params.height == 0 && GfxstreamKindOf(params) != GfxstreamResourceKind::kPipe)) {
    return MakeError(ErrorKind::kInvalidArgument, "resource of " + std::to_string(params.width) +
                                                      "x" + std::to_string(params.height) +
                                                      " texels: gfxstream needs at least one");
  }
  if (GfxstreamKindOf(params) == GfxstreamResourceKind::kColorBuffer &&
      (params.width > max_image_dimension_ || params.height > max_image_dimension_)) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource of " + std::to_string(params.width) + "x" +
                         std::to_string(params.height) + " texels: over the host's " +
                         std::to_string(max_image_dimension_) + " per side");
  }
  return {};
}

Result<void> GfxstreamBackend::CreateResource(const ResourceParams& params) {
  const uint32_t id = params.id.value();
  if (id == 0 || id > static_cast<uint32_t>(INT_MAX)) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource id " + std::to_string(id) + " out of range");
  }
  if (Result<void> shape = CheckShape(params); !shape) return shape;
  stream_renderer_resource_create_args args{
      .handle = id,
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
  // No iovecs here: the backing comes with RESOURCE_ATTACH_BACKING.
  const int result = api_.resource_create(&args, nullptr, 0);
  if (result != 0) return LibraryFailure("creating resource " + std::to_string(id), result);
  resources_.insert_or_assign(params.id, ResourceState{.params = params, .backing = {}});
  return {};
}

void GfxstreamBackend::DestroyResource(ResourceId resource) {
  if (!StateOf(resource).backing.empty()) DetachBacking(resource);
  api_.resource_unref(resource.value());
  resources_.erase(resource);
}

Result<void> GfxstreamBackend::AttachBacking(ResourceId resource, const GuestBacking& backing) {
  ResourceState& state = StateOf(resource);
  std::vector<iovec> entries = backing.Iovecs();
  if (entries.empty() || entries.size() > static_cast<size_t>(INT_MAX)) {
    return MakeError(ErrorKind::kInvalidArgument, "backing entry count out of range");
  }
  const uint64_t total = backing.size();
  const std::string name = "resource " + std::to_string(resource.value());
  // gfxstream moves the whole resource through a copy the size of the backing on every transfer
  // (gfxstream_layout.h): a shorter backing would be written and read past its end.
  const std::optional<uint64_t> needed = GfxstreamCopyBytes(state.params);
  if (!needed || total < *needed) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "backing of " + std::to_string(total) + " bytes for " + name +
                         " is shorter than the " +
                         (needed ? std::to_string(*needed) : std::string("2^64")) +
                         " bytes gfxstream copies for it");
  }
  // And not much longer: gfxstream allocates a host copy of all of it. (A guest may lay out the
  // depth and layers that gfxstream ignores, hence the larger of the two sizes.)
  std::optional<uint64_t> limit =
      CheckedMul<uint64_t>(std::max(*needed, *ResourceBytes(state.params)), 2);
  if (limit) limit = CheckedAdd<uint64_t>(*limit, kBackingSlackBytes);
  if (limit && total > *limit) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "backing of " + std::to_string(total) + " bytes for " + name +
                         " exceeds the " + std::to_string(*limit) +
                         " its size allows (gfxstream would allocate a copy of it)");
  }
  const int result = api_.resource_attach_iov(static_cast<int>(resource.value()), entries.data(),
                                              static_cast<int>(entries.size()));
  if (result != 0) return LibraryFailure("attaching backing to " + name, result);
  state.backing = std::move(entries);
  return {};
}

void GfxstreamBackend::DetachBacking(ResourceId resource) {
  ResourceState& state = StateOf(resource);
  if (state.backing.empty()) return;
  // gfxstream copied the entries at attach and hands nothing back here; the outputs are given
  // anyway, for builds that write them.
  iovec* detached = nullptr;
  int detached_count = 0;
  api_.resource_detach_iov(static_cast<int>(resource.value()), &detached, &detached_count);
  state.backing = {};
}

Result<void> GfxstreamBackend::Transfer(const TransferParams& params, bool to_host) {
  ResourceState& state = StateOf(params.resource);
  const uint32_t resource = params.resource.value();
  if (state.blob) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource " + std::to_string(resource) +
                         " is a blob: gfxstream transfers only resources made by "
                         "RESOURCE_CREATE_3D");
  }
  // gfxstream transfers through its copy of the backing: without one there is nothing to copy.
  if (state.backing.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "resource " + std::to_string(resource) + " has no backing");
  }
  if (!BoxInside(params.box, state.params)) {
    return MakeError(ErrorKind::kOutOfRange,
                     "transfer box outside resource " + std::to_string(resource));
  }
  stream_renderer_box box{.x = params.box.x,
                          .y = params.box.y,
                          .z = params.box.z,
                          .w = params.box.w,
                          .h = params.box.h,
                          .d = params.box.d};
  // No iovecs: gfxstream uses the attached backing, addressed as the whole resource; it ignores
  // ctx_id, level, stride and layer_stride, and checks the box's byte range against the backing.
  const int result =
      to_host
          ? api_.transfer_write_iov(resource, params.context.value(),
                                    static_cast<int>(params.level), params.stride,
                                    params.layer_stride, &box, params.offset, nullptr, 0)
          : api_.transfer_read_iov(resource, params.context.value(), params.level, params.stride,
                                   params.layer_stride, &box, params.offset, nullptr, 0);
  if (result != 0) {
    return LibraryFailure(std::string(to_host ? "transfer to" : "transfer from") + " resource " +
                              std::to_string(resource),
                          result);
  }
  return {};
}

Result<void> GfxstreamBackend::TransferToHost(const TransferParams& params) {
  return Transfer(params, /*to_host=*/true);
}

Result<void> GfxstreamBackend::TransferFromHost(const TransferParams& params) {
  return Transfer(params, /*to_host=*/false);
}

Result<void> GfxstreamBackend::Submit(ContextId context, std::span<const uint8_t> commands) {
  const uint32_t context_id = context.value();
  if (commands.size() > UINT32_MAX) {
    return MakeError(ErrorKind::kInvalidArgument, "command stream too long");
  }
  // Empty is accepted and does nothing (crosvm does the same, for benchmarking guests).
  if (commands.empty()) return {};
  // Decoded once: checked before gfxstream runs it, recorded after.
  const GfxstreamCommand command = DecodeGfxstreamCommand(commands);
  if (Result<void> checked = CheckCommand(context, command); !checked) return checked;
  // A private copy: gfxstream's pointer is not const, and guest memory must not change under it.
  // gfxstream checks only that a stream holds a 4-byte opcode, then copies the opcode's whole
  // struct out of it (up to 56 bytes): zeros after the stream make a short one read as zeros
  // instead of whatever follows on the heap.
  submit_buffer_.assign(commands.size() + kSubmitReadSlackBytes, 0);
  std::copy(commands.begin(), commands.end(), submit_buffer_.begin());
  stream_renderer_command stream{.ctx_id = context_id,
                                 .cmd_size = static_cast<uint32_t>(commands.size()),
                                 .cmd = submit_buffer_.data(),
                                 .num_in_fences = 0,
                                 .fences = nullptr};
  const int result = api_.submit_cmd(&stream);
  if (result != 0) {
    return LibraryFailure("submitting to context " + std::to_string(context_id), result);
  }
  RecordCommand(context, command);
  return {};
}

Result<void> GfxstreamBackend::CreateFence(const FenceSignal& fence) {
  stream_renderer_fence created{
      .flags = STREAM_RENDERER_FLAG_FENCE, .fence_id = fence.fence_id, .ctx_id = 0, .ring_idx = 0};
  if (fence.per_context) {
    // §5.7.6.7: a fence's ring_idx is below 64.
    if (fence.ring_index >= virtio_gpu::kMaxRingIdx) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "fence ring " + std::to_string(fence.ring_index) + " out of range");
    }
    created.flags |= STREAM_RENDERER_FLAG_FENCE_RING_IDX;
    created.ctx_id = fence.context.value();
    created.ring_idx = static_cast<uint8_t>(fence.ring_index);
  }
  // The callback may run before this returns; it only queues (FenceHandoff), so that is safe.
  const int result = api_.create_fence(&created);
  if (result != 0) return LibraryFailure("creating fence", result);
  return {};
}

}  // namespace vgpu::renderer::gfxstream
