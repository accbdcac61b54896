// DaemonTest: the fixture of the vhost-user integration tests. Each test gets its own daemon
// (`--gpu-mode null`) in a temporary directory; the daemon's output is printed when a test fails.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/sanitizer_build.h"
#include "support/daemon_process.h"
#include "support/driver_queue.h"
#include "support/vhost_user_frontend.h"

namespace vgpu::test {

// Spec: struct virtio_gpu_ctrl_hdr (virtio 1.2 §5.7.6.7).
struct GpuControlHeader {
  uint32_t type;
  uint32_t flags;
  uint64_t fence_id;
  uint32_t ctx_id;
  uint8_t ring_idx;
  uint8_t padding[3];
} __attribute__((packed));
static_assert(sizeof(GpuControlHeader) == 24);

inline constexpr uint32_t kCommandGetDisplayInfo = 0x0100;
inline constexpr uint32_t kResponseOkNoData = 0x1100;
inline constexpr uint32_t kResponseOkDisplayInfo = 0x1101;
// sizeof(struct virtio_gpu_resp_display_info) with VIRTIO_GPU_MAX_SCANOUTS = 16.
inline constexpr uint32_t kDisplayInfoResponseSize = 408;

// True for VIRTIO_GPU_RESP_OK_* 0x1100..0x1106 and VIRTIO_GPU_RESP_ERR_* 0x1200..0x1205
// (virtio 1.2 §5.7.6.7).
bool IsDefinedResponseType(uint32_t type);

// kSanitizerBuild (base/sanitizer_build.h): the daemon these tests run has the same sanitizer.
// Its allocator keeps freed memory in quarantine, so resident memory grows by design and says
// nothing about leaks (LeakSanitizer checks those at the daemon's exit instead).

inline constexpr std::chrono::milliseconds kCommandTimeout{3000};
inline constexpr std::chrono::milliseconds kConnectTimeout{5000};

// Where a command went and what came back.
struct CommandBuffers {
  uint16_t head = 0;
  uint64_t request_address = 0;
  uint64_t response_address = 0;
};
struct CommandOutcome {
  UsedElement used;
  GpuControlHeader response{};
  // Bytes after `used.length` in the response buffer that still hold the fill pattern.
  bool rest_untouched = false;
  std::vector<UsedElement> other_used;  // Used elements for other heads seen while waiting.
};

// Puts GET_DISPLAY_INFO (a 24-byte request, a 408-byte writable response buffer pre-filled with
// 0xa5) on `queue` without kicking.
Result<CommandBuffers> QueueGetDisplayInfo(Session& session, DriverQueue& queue,
                                           ChainLayout layout = ChainLayout::kDirect);
// Waits for the command's used element and reads the response.
std::optional<CommandOutcome> AwaitCommand(Session& session, DriverQueue& queue,
                                           const CommandBuffers& buffers,
                                           std::chrono::milliseconds timeout = kCommandTimeout);
// Queue, kick, await.
std::optional<CommandOutcome> RunGetDisplayInfo(Session& session,
                                                ChainLayout layout = ChainLayout::kDirect);

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A new connection to the daemon (asserts through the returned optional being empty).
  std::optional<VhostUserFrontend> Connect();
  // Connects and runs the QEMU 10 sequence; fails the test and returns nullopt on error.
  struct Connected {
    VhostUserFrontend frontend;
    Session session;
  };
  std::optional<Connected> ConnectAndNegotiate(const NegotiationOptions& options = {});
  // The daemon still runs and serves a fresh frontend end to end: negotiation, one command, stop.
  void ExpectDaemonServesNewFrontend();

  std::unique_ptr<DaemonProcess> daemon_;
};

}  // namespace vgpu::test
