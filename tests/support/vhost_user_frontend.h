// VhostUserFrontend: the QEMU side of a vhost-user socket, for tests that drive the daemon the way
// QEMU 10's vhost-user-gpu-pci / vhost-user-vga do.
//
//   Result<VhostUserFrontend> frontend = VhostUserFrontend::Connect(path, std::chrono::seconds(5));
//   Result<Session> session = frontend->NegotiateLikeQemu10({});
//   Result<uint16_t> head = session->control_queue->AddChain({{request, 24}}, {{response, 408}});
//   session->control_queue->Kick();
//   ...
//   Result<std::vector<uint16_t>> bases = frontend->StopLikeQemu10(*session);
//
// Replies are checked as QEMU's vhost_user_read_header()/process_message_reply() check them:
// flags exactly 0x5, the request id echoed, the payload size as the request defines it. A reply
// that breaks any of these is an error (ErrorKind::kInvalidArgument, "bad reply: ..."); a socket
// the daemon closed is ErrorKind::kClosed; a daemon that does not answer within the reply timeout
// is ErrorKind::kTimedOut; a failure ack (REPLY_ACK) is ErrorKind::kInvalidArgument with a
// message starting "nack". Use IsNack()/IsClosed() to tell them apart.
//
// With REPLY_ACK negotiated (SetProtocolFeatures records it) NEED_REPLY is set on the requests
// QEMU 10 sets it on: SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG, SET_VRING_ENABLE, SET_CONFIG.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "support/driver_queue.h"
#include "support/fake_display.h"
#include "support/guest_ram.h"
#include "support/shmem_window.h"
#include "vhost_user/message.h"

namespace vgpu::test {

struct ReceivedReply {
  vhost_user::MessageHeader header{};
  std::vector<uint8_t> payload;
  std::vector<UniqueFd> fds;
};

// What the peer did while the frontend waited for it (WaitForClose).
enum class PeerActivity { kClosed, kSentData, kTimedOut };

bool IsNack(const Error& error);
bool IsClosed(const Error& error);

// virtio-gpu device feature bits a Linux guest acks (virtio 1.2 §5.7.3): VIRGL, EDID,
// RESOURCE_UUID, RESOURCE_BLOB, CONTEXT_INIT.
inline constexpr uint64_t kGpuDeviceFeatureMask = 0x1f;

// Protocol features QEMU 10 knows ((1 << VHOST_USER_PROTOCOL_F_MAX) - 1 with F_MAX = 21), less
// the ones this test frontend does not implement: BACKEND_REQ (no backend channel), LOG_SHMFD (no
// migration) and STATUS (QEMU would add SET_STATUS messages).
inline constexpr uint64_t kQemu10ProtocolFeatureMask =
    ((1ull << 21) - 1) & ~(vhost_user::kProtocolBackendReq | vhost_user::kProtocolLogShmfd |
                           vhost_user::kProtocolStatus);

// How far NegotiateLikeQemu10 goes.
enum class NegotiationStage {
  kMemory,    // Through SET_FEATURES and the memory table; the queues exist only in guest RAM.
  kComplete,  // Both rings configured, started and enabled: the guest driver is running.
};

struct NegotiationOptions {
  GuestRamLayout memory_layout = GuestRamLayout::kSingleRegion;
  uint64_t memory_size = 64ull << 20;
  uint16_t control_queue_size = 64;  // What QEMU 10 uses (docs/ARCHITECTURE.md).
  uint16_t cursor_queue_size = 16;
  uint64_t protocol_feature_mask = kQemu10ProtocolFeatureMask;
  // Use SET_MEM_TABLE even when CONFIGURE_MEM_SLOTS is offered.
  bool force_set_mem_table = false;
  // The guest's acked features; by default offered & (VERSION_1 | INDIRECT_DESC | EVENT_IDX |
  // device bits), plus bit 30 and bit 40 (RING_RESET), which QEMU forwards even though the
  // backend never offered it (docs/ARCHITECTURE.md).
  std::optional<uint64_t> guest_features;
  // QEMU reads config space twice when the driver loads.
  int config_reads = 2;
  NegotiationStage stop_after = NegotiationStage::kComplete;
  // Serve QEMU's end of the GPU socket with a FakeDisplay (otherwise the test gets the raw fd in
  // Session::gpu_socket and must answer the daemon itself).
  bool serve_display = true;
  FakeDisplayOptions display_options;
  // Negotiate SHMEM as a VMM that maps blobs would (not QEMU 10): BACKEND_REQ and SHMEM acked,
  // GET_SHMEM_CONFIG read, SET_BACKEND_REQ_FD with a ShmemWindow serving the requests.
  bool shmem = false;
  ShmemWindowOptions shmem_options;
};

// What NegotiateLikeQemu10 set up. Owns the guest RAM, both queues and QEMU's end of the GPU
// socket.
struct Session {
  std::unique_ptr<GuestRam> ram;
  std::unique_ptr<DriverQueue> control_queue;
  std::unique_ptr<DriverQueue> cursor_queue;
  // QEMU's end of the VHOST_USER_GPU_SET_SOCKET socketpair: served by `display`, or left to the
  // test in `gpu_socket` when NegotiationOptions::serve_display is false.
  std::unique_ptr<FakeDisplay> display;
  UniqueFd gpu_socket;
  uint64_t offered_features = 0;
  uint64_t acked_features = 0;  // As sent with SET_FEATURES (bit 30 included).
  uint64_t offered_protocol_features = 0;
  uint64_t protocol_features = 0;
  uint64_t queue_count = 0;
  uint64_t max_memory_slots = 0;
  std::vector<uint8_t> config;                          // The last GET_CONFIG(0, 16).
  std::optional<vhost_user::ShmemConfig> shmem_config;  // With NegotiationOptions::shmem.
  std::unique_ptr<ShmemWindow> shmem;                   // Region 1's window, if it has one.
  // The masked call notifiers and error notifiers QEMU registers at realize.
  std::vector<EventFd> initial_notifiers;

  DriverQueue& queue(uint32_t index) { return index == 0 ? *control_queue : *cursor_queue; }
};

class VhostUserFrontend {
 public:
  // Connects to `path`, retrying while the socket does not exist or refuses, until `timeout`.
  static Result<VhostUserFrontend> Connect(const std::string& path,
                                           std::chrono::milliseconds timeout);
  explicit VhostUserFrontend(UniqueFd socket) : socket_(std::move(socket)) {}

  int fd() const { return socket_.get(); }
  void Close() { socket_.reset(); }
  // Replies not received within this are ErrorKind::kTimedOut (default 5 s).
  void set_reply_timeout(std::chrono::milliseconds timeout) { reply_timeout_ = timeout; }
  // Whether requests carry NEED_REPLY (set by SetProtocolFeatures when REPLY_ACK is in it).
  bool reply_ack() const { return reply_ack_; }
  void set_reply_ack(bool reply_ack) { reply_ack_ = reply_ack; }

  // Raw access for malformed-message tests. SendRaw sends the header and payload bytes with one
  // sendmsg, attaching `fds`; it never raises SIGPIPE.
  Result<void> SendRaw(const vhost_user::MessageHeader& header, std::span<const uint8_t> payload,
                       std::span<const int> fds = {});
  Result<void> SendBytes(std::span<const uint8_t> bytes, std::span<const int> fds = {});
  Result<ReceivedReply> ReceiveRaw(std::chrono::milliseconds timeout);
  // Waits until the daemon closes the connection (EOF or ECONNRESET), sends something, or
  // `timeout` passes. Data that arrives is read and dropped.
  PeerActivity WaitForClose(std::chrono::milliseconds timeout);

  // Typed requests.
  Result<uint64_t> GetFeatures();
  Result<void> SetFeatures(uint64_t features);
  Result<void> SetOwner();
  Result<uint64_t> GetProtocolFeatures();
  Result<void> SetProtocolFeatures(uint64_t features);
  Result<uint64_t> GetQueueNum();
  Result<uint64_t> GetMaxMemSlots();
  // `fd` < 0 sends the NOFD form.
  Result<void> SetVringKick(uint32_t index, int fd);
  Result<void> SetVringCall(uint32_t index, int fd);
  Result<void> SetVringErr(uint32_t index, int fd);
  Result<void> SetMemTable(const GuestRam& ram);
  Result<void> SetMemTable(std::span<const vhost_user::MemoryRegionDescription> regions,
                           std::span<const int> fds);
  Result<void> AddMemReg(const vhost_user::MemoryRegionDescription& region, int fd);
  Result<void> RemMemReg(const vhost_user::MemoryRegionDescription& region);
  Result<void> SetVringNum(uint32_t index, uint32_t size);
  Result<void> SetVringBase(uint32_t index, uint32_t base);
  Result<void> SetVringAddr(const vhost_user::VringAddress& address);
  // The address message for `queue`, as QEMU builds it.
  static vhost_user::VringAddress VringAddressOf(uint32_t index, const DriverQueue& queue);
  Result<void> SetVringEnable(uint32_t index, bool enable);
  Result<uint32_t> GetVringBase(uint32_t index);
  Result<std::vector<uint8_t>> GetConfig(uint32_t offset, uint32_t size);
  Result<void> SetConfig(uint32_t offset, std::span<const uint8_t> bytes);
  Result<void> GpuSetSocket(int fd);
  Result<void> SetBackendReqFd(int fd);
  Result<vhost_user::ShmemConfig> GetShmemConfig();
  Result<void> ResetDevice();
  Result<void> ResetOwner();

  // The observed QEMU 10 boot sequence (docs/ARCHITECTURE.md, "What QEMU does that the daemon
  // relies on").
  Result<Session> NegotiateLikeQemu10(const NegotiationOptions& options);
  // QEMU 10 at quit: SET_VRING_ENABLE 0 and GET_VRING_BASE per queue, then EOF. Returns the
  // bases (control, cursor).
  Result<std::vector<uint32_t>> StopLikeQemu10(Session& session);
  // QEMU starting one ring (vhost_virtqueue_start, then enable and call): SET_VRING_NUM, _BASE
  // (the driver's next avail index), _ADDR, _KICK, _ENABLE 1, _CALL. Also after a stop or a reset.
  Result<void> StartQueue(Session& session, uint32_t index);
  // After RESET_DEVICE or RESET_OWNER, QEMU's way back to a running device when the guest
  // driver loads again: SET_FEATURES (the same), a new GPU socket served by a new FakeDisplay
  // with `display_options`, and both rings started from where the driver is.
  Result<void> RestartAfterReset(Session& session, const FakeDisplayOptions& display_options);

 private:
  // Sends a request; with `want_ack` and REPLY_ACK negotiated it sets NEED_REPLY and checks the
  // u64 ack.
  Result<void> SendRequest(vhost_user::Request request, std::span<const uint8_t> payload,
                           std::span<const int> fds, bool want_ack);
  Result<ReceivedReply> ReceiveReply(vhost_user::Request request);
  Result<uint64_t> ReceiveU64Reply(vhost_user::Request request);
  Result<uint64_t> GetU64(vhost_user::Request request);
  Result<void> SetU64(vhost_user::Request request, uint64_t value, bool want_ack = false);
  Result<void> SetVringFd(vhost_user::Request request, uint32_t index, int fd);
  Result<void> SetVringState(vhost_user::Request request, uint32_t index, uint32_t num,
                             bool want_ack);
  Result<void> ReceiveAck(vhost_user::Request request);

  UniqueFd socket_;
  std::chrono::milliseconds reply_timeout_{5000};
  bool reply_ack_ = false;
};

}  // namespace vgpu::test
