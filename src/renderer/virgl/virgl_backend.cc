#include "renderer/virgl/virgl_backend.h"

namespace vgpu::renderer::virgl {

Result<std::unique_ptr<Renderer>> VirglBackend::Create(VirglOptions options,
                                                       size_t max_submit_bytes) {
  Result<std::unique_ptr<VirglRenderer>> virgl = VirglRenderer::Create(std::move(options));
  if (!virgl) return tl::unexpected(virgl.error());
  return std::unique_ptr<Renderer>(new VirglBackend(std::move(*virgl), max_submit_bytes));
}

uint32_t VirglBackend::CapsetCount() const { return static_cast<uint32_t>(virgl_->CapsetCount()); }

Result<renderer::CapsetInfo> VirglBackend::CapsetInfoAt(uint32_t index) const {
  return virgl_->CapsetInfoAt(index);
}

Result<std::vector<uint8_t>> VirglBackend::Capset(uint32_t capset_id, uint32_t version) const {
  return virgl_->Capset(capset_id, version);
}

Result<void> VirglBackend::CreateContext(const ContextParams& params) {
  return virgl_->CreateContext(
      gpu::ContextId{params.context_id}, params.capset_id,
      std::span<const char>(params.debug_name.data(), params.debug_name.size()));
}

Result<void> VirglBackend::DestroyContext(uint32_t context_id) {
  return virgl_->DestroyContext(gpu::ContextId{context_id});
}

Result<void> VirglBackend::AttachResource(uint32_t context_id, uint32_t resource_id) {
  return virgl_->AttachResource(gpu::ContextId{context_id}, gpu::ResourceId{resource_id});
}

Result<void> VirglBackend::DetachResource(uint32_t context_id, uint32_t resource_id) {
  return virgl_->DetachResource(gpu::ContextId{context_id}, gpu::ResourceId{resource_id});
}

Result<void> VirglBackend::CreateResource(const ResourceParams& params) {
  ResourceCreateArgs args;
  args.id = gpu::ResourceId{params.resource_id};
  args.target = params.target;
  args.format = params.format;
  args.bind = params.bind;
  args.width = params.width;
  args.height = params.height;
  args.depth = params.depth;
  args.array_size = params.array_size;
  args.last_level = params.last_level;
  args.nr_samples = params.nr_samples;
  args.flags = params.flags;
  return virgl_->CreateResource(args);
}

Result<void> VirglBackend::UnrefResource(uint32_t resource_id) {
  return virgl_->Unref(gpu::ResourceId{resource_id});
}

Result<void> VirglBackend::AttachBacking(uint32_t resource_id, std::vector<iovec> backing) {
  return virgl_->AttachBacking(gpu::ResourceId{resource_id}, std::move(backing));
}

Result<void> VirglBackend::DetachBacking(uint32_t resource_id) {
  return virgl_->DetachBacking(gpu::ResourceId{resource_id});
}

TransferArgs VirglBackend::ToTransferArgs(const TransferParams& params) {
  TransferArgs args;
  args.resource = gpu::ResourceId{params.resource_id};
  args.context = gpu::ContextId{params.context_id};
  args.level = params.level;
  args.stride = params.stride;
  args.layer_stride = params.layer_stride;
  args.box = params.box;
  args.offset = params.offset;
  return args;
}

Result<void> VirglBackend::TransferToHost(const TransferParams& params) {
  return virgl_->TransferToHost(ToTransferArgs(params));
}

Result<void> VirglBackend::TransferFromHost(const TransferParams& params) {
  return virgl_->TransferFromHost(ToTransferArgs(params));
}

Result<void> VirglBackend::Submit(uint32_t context_id, std::span<const uint8_t> commands) {
  return virgl_->Submit(gpu::ContextId{context_id}, commands, max_submit_bytes_);
}

Result<void> VirglBackend::CreateFence(const renderer::FenceSignal& fence) {
  return virgl_->CreateFence(fence.fence_id, gpu::ContextId{fence.context_id}, fence.ring_index,
                             fence.per_context ? FenceScope::kContext : FenceScope::kGlobal);
}

void VirglBackend::SetFenceHandler(std::function<void(const renderer::FenceSignal&)> handler) {
  virgl_->SetFenceHandler([handler = std::move(handler)](const FenceSignal& signal) {
    handler(renderer::FenceSignal{signal.context.value(), signal.ring_index, signal.fence_id,
                                  signal.scope == FenceScope::kContext});
  });
}

Result<void> VirglBackend::ReadRect(uint32_t resource_id, uint32_t x, uint32_t y, uint32_t width,
                                    uint32_t height, std::span<uint8_t> destination,
                                    uint32_t stride) {
  return virgl_->ReadRect(gpu::ResourceId{resource_id}, software2d::PixelRect{x, y, width, height},
                          destination, stride);
}

Result<std::array<uint32_t, kCursorPixels>> VirglBackend::CursorImage(uint32_t resource_id) {
  Result<virgl::CursorImage> image = virgl_->CursorData(gpu::ResourceId{resource_id});
  if (!image) return tl::unexpected(image.error());
  std::array<uint32_t, kCursorPixels> pixels;
  std::copy(image->begin(), image->end(), pixels.begin());
  return pixels;
}

}  // namespace vgpu::renderer::virgl
