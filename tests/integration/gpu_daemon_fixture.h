// GpuDaemonTest: the daemon process driven with virtio-gpu commands on its real control queue,
// display output seen in QEMU's end of the GPU socket (FakeDisplay).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "gpu/protocol.h"
#include "integration/daemon_fixture.h"
#include "support/fake_display.h"

namespace vgpu::test {

using gpu::CommandType;
using gpu::ResponseType;

// The daemon's open fds and resident memory at one point.
struct ResourceSample {
  size_t open_fds = 0;
  uint64_t resident_kb = 0;
};

class GpuDaemonTest : public DaemonTest {
 protected:
  // Replaces the fixture's null-mode daemon with one in virglrenderer mode; skips the test (with
  // the reason) where virglrenderer cannot start.
  void StartVirglDaemonOrSkip() {
    Result<std::unique_ptr<DaemonProcess>> daemon =
        DaemonProcess::Start({.arguments = {"--gpu-mode", "virglrenderer"}});
    if (!daemon) GTEST_SKIP() << "virglrenderer does not start here: " << daemon.error().message;
    daemon_ = std::move(*daemon);
  }
  ResourceSample SampleDaemon() const {
    return ResourceSample{daemon_->OpenFdCount().value_or(0), daemon_->ResidentSetKb().value_or(0)};
  }
  void Connect(NegotiationOptions options = {}) {
    std::optional<Connected> connected = ConnectAndNegotiate(options);
    ASSERT_TRUE(connected);
    connected_.emplace(std::move(*connected));
  }
  Session& session() { return connected_->session; }
  FakeDisplay& display() { return *connected_->session.display; }

  // Puts one command on the control queue (without kicking); returns where its response goes.
  template <class Request>
  CommandBuffers Queue(const Request& request, uint32_t response_size = sizeof(gpu::CtrlHdr),
                       const void* extra = nullptr, size_t extra_size = 0) {
    CommandBuffers buffers;
    Result<uint64_t> request_address = session().ram->Allocate(sizeof(Request) + extra_size, 8);
    Result<uint64_t> response_address = session().ram->Allocate(response_size, 8);
    EXPECT_TRUE(request_address && response_address);
    buffers.request_address = *request_address;
    buffers.response_address = *response_address;
    EXPECT_TRUE(session().ram->WriteObject(buffers.request_address, request));
    if (extra_size > 0) {
      EXPECT_TRUE(session().ram->Write(
          buffers.request_address + sizeof(Request),
          std::span<const uint8_t>(static_cast<const uint8_t*>(extra), extra_size)));
    }
    Result<uint16_t> head = session().control_queue->AddChain(
        {{buffers.request_address, static_cast<uint32_t>(sizeof(Request) + extra_size)}},
        {{buffers.response_address, response_size}});
    EXPECT_TRUE(head);
    buffers.head = head.value_or(0);
    return buffers;
  }
  ResponseType ResponseOf(const CommandBuffers& buffers) {
    Result<gpu::CtrlHdr> response =
        session().ram->ReadObject<gpu::CtrlHdr>(buffers.response_address);
    return static_cast<ResponseType>(response ? response->type : 0);
  }
  template <class Request>
  ResponseType Run(const Request& request, const void* extra = nullptr, size_t extra_size = 0) {
    CommandBuffers buffers = Queue(request, sizeof(gpu::CtrlHdr), extra, extra_size);
    session().control_queue->Kick();
    std::optional<UsedElement> used =
        session().control_queue->WaitForUsedHead(buffers.head, kCommandTimeout);
    EXPECT_TRUE(used) << "no response";
    return ResponseOf(buffers);
  }
  static gpu::CtrlHdr Header(CommandType type) {
    gpu::CtrlHdr header{};
    header.type = static_cast<uint32_t>(type);
    return header;
  }
  // A width x height resource with `pixels` (x8r8g8b8 rows) as its backing, shown on `scanout`.
  void ShowResource(uint32_t id, uint32_t width, uint32_t height,
                    const std::vector<uint32_t>& pixels, uint32_t scanout = 0,
                    gpu::Format format = gpu::Format::kB8G8R8X8Unorm) {
    gpu::ResourceCreate2d create{};
    create.hdr = Header(CommandType::kResourceCreate2d);
    create.resource_id = id;
    create.format = static_cast<uint32_t>(format);
    create.width = width;
    create.height = height;
    ASSERT_EQ(Run(create), ResponseType::kOkNodata);
    AttachPixels(id, pixels);
    ASSERT_FALSE(HasFatalFailure());
    Transfer(id, gpu::Rect{0, 0, width, height});
    gpu::SetScanout set{};
    set.hdr = Header(CommandType::kSetScanout);
    set.r = gpu::Rect{0, 0, width, height};
    set.scanout_id = scanout;
    set.resource_id = id;
    ASSERT_EQ(Run(set), ResponseType::kOkNodata);
  }
  // Guest memory holding `pixels` (x8r8g8b8 rows), attached to resource `id` as one entry; its
  // guest address is kept in last_backing_.
  void AttachPixels(uint32_t id, const std::vector<uint32_t>& pixels) {
    const auto bytes = static_cast<uint32_t>(pixels.size() * 4);
    Result<uint64_t> backing = session().ram->Allocate(bytes, 4096);
    ASSERT_TRUE(backing);
    last_backing_ = *backing;
    ASSERT_TRUE(session().ram->Write(
        *backing,
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pixels.data()), bytes)));
    gpu::ResourceAttachBacking attach{};
    attach.hdr = Header(CommandType::kResourceAttachBacking);
    attach.resource_id = id;
    attach.nr_entries = 1;
    gpu::MemEntry entry{*backing, bytes, 0};
    ASSERT_EQ(Run(attach, &entry, sizeof(entry)), ResponseType::kOkNodata);
  }
  // CTX_CREATE of `context_id` (no debug name, no context_init).
  ResponseType CreateContext(uint32_t context_id) {
    gpu::CtxCreate context{};
    context.hdr = Header(CommandType::kCtxCreate);
    context.hdr.ctx_id = context_id;
    return Run(context);
  }
  // GET_CAPSET_INFO for `index`; its response (whatever its type).
  std::optional<gpu::RespCapsetInfo> CapsetInfoAt(uint32_t index) {
    gpu::GetCapsetInfo request{};
    request.hdr = Header(CommandType::kGetCapsetInfo);
    request.capset_index = index;
    CommandBuffers buffers = Queue(request, sizeof(gpu::RespCapsetInfo));
    session().control_queue->Kick();
    if (!session().control_queue->WaitForUsedHead(buffers.head, kCommandTimeout)) return {};
    Result<gpu::RespCapsetInfo> info =
        session().ram->ReadObject<gpu::RespCapsetInfo>(buffers.response_address);
    if (!info) return {};
    return *info;
  }
  // RESOURCE_CREATE_3D of a width x height B8G8R8X8 2D texture bound as a render target.
  ResponseType Create3dTarget(uint32_t id, uint32_t width, uint32_t height) {
    gpu::ResourceCreate3d create{};
    create.hdr = Header(CommandType::kResourceCreate3d);
    create.resource_id = id;
    create.target = 2;  // PIPE_TEXTURE_2D
    create.format = static_cast<uint32_t>(gpu::Format::kB8G8R8X8Unorm);
    create.bind = 1u << 1;  // VIRGL_BIND_RENDER_TARGET
    create.width = width;
    create.height = height;
    create.depth = 1;
    create.array_size = 1;
    return Run(create);
  }
  // A 3D context `context_id`, and a width x height B8G8R8X8 render-target texture `id` in it
  // whose backing holds `pixels`, uploaded with TRANSFER_TO_HOST_3D and shown on scanout 0:
  // what a 3D renderer's read-back must then show.
  void Show3dResource(uint32_t context_id, uint32_t id, uint32_t width, uint32_t height,
                      const std::vector<uint32_t>& pixels) {
    ASSERT_EQ(CreateContext(context_id), ResponseType::kOkNodata);
    ASSERT_EQ(Create3dTarget(id, width, height), ResponseType::kOkNodata);
    AttachPixels(id, pixels);
    ASSERT_FALSE(HasFatalFailure());
    gpu::TransferHost3d transfer{};
    transfer.hdr = Header(CommandType::kTransferToHost3d);
    transfer.box = gpu::Box{0, 0, 0, width, height, 1};
    transfer.resource_id = id;
    transfer.stride = width * 4;
    ASSERT_EQ(Run(transfer), ResponseType::kOkNodata);
    gpu::SetScanout set{};
    set.hdr = Header(CommandType::kSetScanout);
    set.r = gpu::Rect{0, 0, width, height};
    set.resource_id = id;
    ASSERT_EQ(Run(set), ResponseType::kOkNodata);
  }
  void Transfer(uint32_t id, gpu::Rect rect, uint32_t stride_pixels = 0) {
    gpu::TransferToHost2d transfer{};
    transfer.hdr = Header(CommandType::kTransferToHost2d);
    transfer.r = rect;
    transfer.offset =
        (uint64_t{rect.y} * (stride_pixels ? stride_pixels : rect.width) + rect.x) * 4;
    transfer.resource_id = id;
    ASSERT_EQ(Run(transfer), ResponseType::kOkNodata);
  }
  void Flush(uint32_t id, gpu::Rect rect) {
    gpu::ResourceFlush flush{};
    flush.hdr = Header(CommandType::kResourceFlush);
    flush.r = rect;
    flush.resource_id = id;
    ASSERT_EQ(Run(flush), ResponseType::kOkNodata);
  }
  bool WaitForFrame(uint32_t scanout, const std::vector<uint32_t>& expected, uint32_t width) {
    return display().WaitFor(
        [&](const FakeDisplayState& state) {
          if (scanout >= state.framebuffers.size() || !state.framebuffers[scanout]) return false;
          const FakeFramebuffer& frame = *state.framebuffers[scanout];
          if (frame.width != width || frame.pixels.size() != expected.size()) return false;
          for (size_t i = 0; i < expected.size(); ++i) {
            // UPDATE is x8r8g8b8: the top byte carries nothing.
            if ((frame.pixels[i] & 0xffffff) != (expected[i] & 0xffffff)) return false;
          }
          return true;
        },
        std::chrono::seconds(3));
  }
  static std::vector<uint32_t> Pattern(uint32_t width, uint32_t height, uint32_t seed) {
    std::vector<uint32_t> pixels(size_t{width} * height);
    for (uint32_t y = 0; y < height; ++y) {
      for (uint32_t x = 0; x < width; ++x) {
        pixels[size_t{y} * width + x] =
            (x * 7 + seed) << 16 | (y * 3 + seed) << 8 | ((x ^ y) & 0xff);
      }
    }
    return pixels;
  }

  std::optional<Connected> connected_;
  uint64_t last_backing_ = 0;  // Guest address of the last AttachPixels' backing.
};

}  // namespace vgpu::test
