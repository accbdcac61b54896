// VirglBackend: the device model's Renderer interface over VirglRenderer.
//
//   Result<std::unique_ptr<Renderer>> renderer = VirglBackend::Create(std::move(options));
//
// A thin translation layer: ids become strong types, fences map to virgl's scopes, and the
// device's cap on SUBMIT_3D sizes is passed on. Create it on the device thread.
#pragma once

#include <memory>

#include "renderer/renderer.h"
#include "renderer/virgl/virgl_renderer.h"

namespace vgpu::renderer::virgl {

class VirglBackend final : public Renderer {
 public:
  static Result<std::unique_ptr<Renderer>> Create(VirglOptions options, size_t max_submit_bytes);

  const char* name() const override { return "virglrenderer"; }
  uint32_t CapsetCount() const override;
  Result<renderer::CapsetInfo> CapsetInfoAt(uint32_t index) const override;
  Result<std::vector<uint8_t>> Capset(uint32_t capset_id, uint32_t version) const override;

  Result<void> CreateContext(const ContextParams& params) override;
  Result<void> DestroyContext(uint32_t context_id) override;
  Result<void> AttachResource(uint32_t context_id, uint32_t resource_id) override;
  Result<void> DetachResource(uint32_t context_id, uint32_t resource_id) override;

  Result<void> CreateResource(const ResourceParams& params) override;
  Result<void> UnrefResource(uint32_t resource_id) override;
  Result<void> AttachBacking(uint32_t resource_id, std::vector<iovec> backing) override;
  Result<void> DetachBacking(uint32_t resource_id) override;
  Result<void> TransferToHost(const TransferParams& params) override;
  Result<void> TransferFromHost(const TransferParams& params) override;
  Result<void> Submit(uint32_t context_id, std::span<const uint8_t> commands) override;

  Result<void> CreateFence(const renderer::FenceSignal& fence) override;
  void SetFenceHandler(std::function<void(const renderer::FenceSignal&)> handler) override;
  int PollFd() const override { return virgl_->PollFd(); }
  void Poll() override { virgl_->Poll(); }

  Result<void> ReadRect(uint32_t resource_id, uint32_t x, uint32_t y, uint32_t width,
                        uint32_t height, std::span<uint8_t> destination, uint32_t stride) override;
  Result<std::array<uint32_t, kCursorPixels>> CursorImage(uint32_t resource_id) override;
  Result<ScanoutExport> ExportScanout(uint32_t resource_id) override {
    return virgl_->ExportScanout(gpu::ResourceId{resource_id});
  }
  void FlushForScanout() override { virgl_->FlushForScanout(); }

 private:
  VirglBackend(std::unique_ptr<VirglRenderer> virgl, size_t max_submit_bytes)
      : virgl_(std::move(virgl)), max_submit_bytes_(max_submit_bytes) {}
  static TransferArgs ToTransferArgs(const TransferParams& params);

  std::unique_ptr<VirglRenderer> virgl_;
  const size_t max_submit_bytes_;
};

}  // namespace vgpu::renderer::virgl
