// A scripted renderer::Renderer for unit tests of the device model's 3D path: it records every
// call, keeps the contexts and resources it was given, and signals fences only when the test
// says so. The real backend (virglrenderer) is exercised by its own tests and the integration
// tests; this fake lets the device's rules (id checks, fence order) be tested one by one.
//
// Dmabufs: with `exportable` set, each 3D resource's "texture" is a memfd of width x height
// x8r8g8b8 pixels holding ExportedPixel(id, x, y), and ExportScanout hands out a new fd of it,
// so a display that reads through the fd sees whose pixels it got.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gpu/protocol.h"
#include "renderer/renderer.h"

namespace vgpu::gpu::testing {

class FakeRenderer final : public renderer::Renderer {
 public:
  const char* name() const override { return "fake"; }
  uint32_t CapsetCount() const override { return static_cast<uint32_t>(capsets.size()); }
  Result<renderer::CapsetInfo> CapsetInfoAt(uint32_t index) const override {
    if (index >= capsets.size()) return MakeError(ErrorKind::kOutOfRange, "index");
    return capsets[index];
  }
  Result<std::vector<uint8_t>> Capset(uint32_t id, uint32_t version) const override {
    for (const renderer::CapsetInfo& info : capsets) {
      if (info.id == id && version <= info.max_version) {
        return std::vector<uint8_t>(info.max_size, static_cast<uint8_t>(id));
      }
    }
    return MakeError(ErrorKind::kNotFound, "capset");
  }
  Result<void> CreateContext(const renderer::ContextParams& params) override {
    contexts[params.id.value()] = std::string(params.debug_name);
    context_capsets[params.id.value()] = params.capset_id;
    return {};
  }
  void DestroyContext(ContextId id) override { contexts.erase(id.value()); }
  Result<void> AttachResource(ContextId context, ResourceId resource) override {
    attached.insert({context.value(), resource.value()});
    return {};
  }
  Result<void> DetachResource(ContextId context, ResourceId resource) override {
    attached.erase({context.value(), resource.value()});
    return {};
  }
  Result<void> CreateResource(const renderer::ResourceParams& params) override {
    resources[params.id.value()] = params;
    return {};
  }
  void DestroyResource(ResourceId id) override {
    resources.erase(id.value());
    backings.erase(id.value());
    textures.erase(id.value());
  }
  Result<void> AttachBacking(ResourceId id, const renderer::GuestBacking& backing) override {
    backings[id.value()] = backing;
    return {};
  }
  void DetachBacking(ResourceId id) override { backings.erase(id.value()); }
  Result<void> TransferToHost(const renderer::TransferParams& params) override {
    transfers.push_back(params);
    return {};
  }
  Result<void> TransferFromHost(const renderer::TransferParams& params) override {
    transfers.push_back(params);
    return {};
  }
  Result<void> Submit(ContextId context, std::span<const uint8_t> commands) override {
    submitted.emplace_back(context.value(), std::vector<uint8_t>(commands.begin(), commands.end()));
    return {};
  }
  Result<void> CreateFence(const renderer::FenceSignal& fence) override {
    created_fences.push_back(fence);
    return {};
  }
  void SetFenceHandler(std::function<void(const renderer::FenceSignal&)> handler) override {
    fence_handler = std::move(handler);
  }
  Result<void> ReadRect(ResourceId, const Rect&, std::span<uint8_t> out, uint32_t) override {
    ++read_backs;
    std::fill(out.begin(), out.end(), read_back_byte);
    return {};
  }
  Result<CursorImage> ReadCursor(ResourceId) override { return CursorImage{}; }
  Result<renderer::ScanoutExport> ExportScanout(ResourceId resource) override {
    ++export_calls;
    const uint32_t id = resource.value();
    if (!exportable) return MakeError(ErrorKind::kUnsupported, "fake: no dmabuf export here");
    auto found = resources.find(id);
    if (found == resources.end()) return MakeError(ErrorKind::kNotFound, "fake: no resource");
    const renderer::ResourceParams& params = found->second;
    if (!textures.contains(id)) {
      UniqueFd texture(memfd_create("fake-texture", MFD_CLOEXEC));
      std::vector<uint32_t> pixels(size_t{params.width} * params.height);
      for (uint32_t y = 0; y < params.height; ++y) {
        for (uint32_t x = 0; x < params.width; ++x) {
          pixels[size_t{y} * params.width + x] = ExportedPixel(id, x, y);
        }
      }
      const auto bytes = static_cast<ssize_t>(pixels.size() * 4);
      if (!texture || write(texture.get(), pixels.data(), bytes) != bytes) {
        return MakeError(ErrorKind::kInternal, "fake: memfd");
      }
      textures[id] = std::move(texture);
    }
    UniqueFd dmabuf(dup(textures[id].get()));
    return renderer::ScanoutExport{.dmabuf = std::move(dmabuf),
                                   .width = params.width,
                                   .height = params.height,
                                   .stride = params.width * 4,
                                   .fourcc = kFourccXrgb8888,
                                   .modifier = modifier,
                                   .y0_top = true};
  }
  void FlushForScanout() override { ++scanout_flushes; }

  // A pixel of resource `id`'s exported texture: the id in the top byte (not shown: x8r8g8b8),
  // the id again in red, then x and y.
  static uint32_t ExportedPixel(uint32_t id, uint32_t x, uint32_t y) {
    return (id & 0xff) << 24 | (id & 0xff) << 16 | (x & 0xff) << 8 | (y & 0xff);
  }
  static constexpr uint32_t kFourccXrgb8888 = 0x34325258;  // DRM_FORMAT_XRGB8888, "XR24".

  std::vector<renderer::CapsetInfo> capsets = {{1, 1, 308}, {2, 2, 1376}};
  std::map<uint32_t, std::string> contexts;
  std::map<uint32_t, uint32_t> context_capsets;
  std::set<std::pair<uint32_t, uint32_t>> attached;
  std::map<uint32_t, renderer::ResourceParams> resources;
  std::map<uint32_t, renderer::GuestBacking> backings;
  std::vector<renderer::TransferParams> transfers;
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> submitted;
  std::vector<renderer::FenceSignal> created_fences;
  std::function<void(const renderer::FenceSignal&)> fence_handler;

  bool exportable = false;
  uint64_t modifier = renderer::kDrmFormatModInvalid;
  std::map<uint32_t, UniqueFd> textures;  // By resource, once exported.
  int export_calls = 0;
  int read_backs = 0;
  uint8_t read_back_byte = 0x42;  // What ReadRect fills with.
  int scanout_flushes = 0;
};

}  // namespace vgpu::gpu::testing
