// GfxstreamBackend in this process against the stand-in library (standin.h): the fixture the
// backend's unit tests share, and helpers for their commands and backings.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>

#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "renderer/gfxstream/gfxstream_backend.h"
#include "standin.h"

namespace vgpu::renderer::gfxstream {

using test::StandinHooks;

inline constexpr uint32_t kOpFill = 0x4c4c4946;
// gfxstream's PLACEHOLDER_COMMAND_VK (opcode, pad, padding): its own no-op.
inline const std::vector<uint32_t> kPlaceholder = {0xf002, 0, 0};
inline constexpr uint32_t kFormatB8G8R8X8 = 2;
// Always set: blob memory exported as fds a VMM can map.
inline constexpr uint32_t kBlobFlags =
    STREAM_RENDERER_FLAGS_USE_EXTERNAL_BLOB | STREAM_RENDERER_FLAGS_USE_SYSTEM_BLOB;

inline bool Readable(int fd, int timeout_ms) {
  pollfd entry{fd, POLLIN, 0};
  return poll(&entry, 1, timeout_ms) == 1 && (entry.revents & POLLIN) != 0;
}

inline std::span<const uint8_t> Bytes(const std::vector<uint32_t>& words) {
  return {reinterpret_cast<const uint8_t*>(words.data()), words.size() * 4};
}

// Host memory standing in for a guest backing.
template <class T>
inline GuestBacking Backing(std::vector<T>& memory) {
  return GuestBacking(
      {std::span(reinterpret_cast<uint8_t*>(memory.data()), memory.size() * sizeof(T))});
}

class GfxstreamBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::ClearStandinEnvironment();
    ASSERT_TRUE(hooks_.loaded()) << "stand-in hooks missing in " << test::StandinPath();
  }
  void TearDown() override {
    backend_.reset();
    test::ClearStandinEnvironment();
  }

  void Start(GfxstreamOptions options = {}) {
    options.library_path = test::StandinPath();
    Result<std::unique_ptr<Renderer>> backend = GfxstreamBackend::Create(options);
    ASSERT_TRUE(backend) << backend.error().message;
    backend_ = std::move(*backend);
    backend_->SetFenceHandler([this](const FenceSignal& fence) {
      signalled_.push_back(fence);
      handler_threads_.push_back(std::this_thread::get_id());
    });
  }
  // Polls until `count` fences in all were delivered or 5 s passed.
  void PollUntil(size_t count) {
    while (signalled_.size() < count && Readable(backend_->PollFd(), 5000)) backend_->Poll();
  }
  // A 32-bit 2D render target with a host backing of its exact size.
  void CreateTarget(uint32_t id, uint32_t width, uint32_t height) {
    ResourceParams params;
    params.id = ResourceId{id};
    params.target = 2;
    params.format = kFormatB8G8R8X8;
    params.bind = 1u << 1;
    params.width = width;
    params.height = height;
    params.depth = 1;
    params.array_size = 1;
    ASSERT_TRUE(backend_->CreateResource(params));
    backing_.assign(size_t{width} * height, 0);
    ASSERT_TRUE(backend_->AttachBacking(ResourceId{id}, Backing(backing_)));
  }
  void Fill(uint32_t context, uint32_t id, uint32_t x, uint32_t y, uint32_t width, uint32_t height,
            uint32_t colour) {
    const std::vector<uint32_t> command = {kOpFill, id, x, y, width, height, colour};
    Result<void> submitted = backend_->Submit(ContextId{context}, Bytes(command));
    ASSERT_TRUE(submitted) << submitted.error().message;
  }

  StandinHooks hooks_;
  std::unique_ptr<Renderer> backend_;
  std::vector<FenceSignal> signalled_;
  std::vector<std::thread::id> handler_threads_;
  std::vector<uint32_t> backing_;
};

}  // namespace vgpu::renderer::gfxstream
