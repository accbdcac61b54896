// BackendHandler: the vhost-user request state machine for one frontend connection.
//
//   BackendHandler handler(device, device_thread, gpu_socket_receiver);
//   while (Result<ReceivedMessage> message = connection.Receive()) {
//     if (!handler.Handle(*message, connection)) break;   // Protocol error: close the connection.
//   }
//   handler.Disconnect();                                  // Drops every piece of device state.
//
// Every request is checked before it changes anything: payload size and fd count (a mismatch is
// a malformed message and closes the connection), then indices, sizes, alignment, overlap and
// overflow. A well-formed request that cannot be carried out is answered with a failure ack when
// the frontend asked for one (REPLY_ACK + NEED_REPLY); otherwise it too closes the connection, so
// that the frontend never believes in state the backend does not have.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vhost_user/connection.h"
#include "vhost_user/device_thread.h"
#include "virtio/device.h"
#include "virtio/guest_memory.h"

namespace vgpu::vhost_user {

// Protocol features we offer. Never INBAND_NOTIFICATIONS (notifications go through
// eventfds only); CONFIG is mandatory for QEMU's GPU frontend. A device with shared memory
// regions adds kShmemProtocolFeatures.
inline constexpr uint64_t kOfferedProtocolFeatures = kProtocolMq | kProtocolReplyAck |
                                                     kProtocolConfig | kProtocolResetDevice |
                                                     kProtocolConfigureMemSlots;
inline constexpr uint64_t kShmemProtocolFeatures =
    kProtocolBackendReq | kProtocolBackendSendFd | kProtocolShmem;
inline constexpr uint64_t kMaxMemorySlots = 32;

// Receives the GPU display socket (VHOST_USER_GPU_SET_SOCKET); called on the control thread.
using GpuSocketReceiver = std::function<void(UniqueFd socket)>;

class BackendHandler {
 public:
  BackendHandler(virtio::Device& device, DeviceThread& device_thread,
                 GpuSocketReceiver gpu_socket_receiver);
  ~BackendHandler();

  // Handles one message, replying on `connection` as needed. An error means: close the connection.
  Result<void> Handle(ReceivedMessage& message, Connection& connection);

  // The frontend went away: stop the rings and reset the device.
  void Disconnect();

  uint64_t offered_features() const { return offered_features_; }
  uint64_t offered_protocol_features() const { return offered_protocol_features_; }

 private:
  struct Vring {
    uint32_t size = 0;
    bool addresses_set = false;
    virtio::SplitVirtqueueLayout layout;
    uint16_t base = 0;  // Next available index for the next start.
    UniqueFd call_fd;
    UniqueFd error_fd;
    bool started = false;
    bool enabled = false;
  };
  // What a request answers: nothing, a u64, or raw payload bytes.
  struct Reply {
    enum class Kind { kNone, kU64, kBytes } kind = Kind::kNone;
    uint64_t value = 0;
    std::vector<uint8_t> bytes;
  };

  Result<Reply> Dispatch(ReceivedMessage& message);
  Result<Reply> SetFeatures(uint64_t features);
  Result<Reply> SetProtocolFeatures(uint64_t features);
  Result<Reply> SetMemTable(ReceivedMessage& message);
  Result<Reply> AddMemoryRegion(ReceivedMessage& message);
  Result<Reply> RemoveMemoryRegion(ReceivedMessage& message);
  Result<Reply> SetVringNum(uint32_t index, uint32_t size);
  Result<Reply> SetVringAddress(ReceivedMessage& message);
  Result<Reply> SetVringBase(uint32_t index, uint32_t base);
  Result<Reply> GetVringBase(uint32_t index);
  Result<Reply> SetVringFd(ReceivedMessage& message);
  Result<Reply> SetVringEnable(uint32_t index, uint32_t enable);
  Result<Reply> GetConfig(ReceivedMessage& message);
  Result<Reply> SetConfig(ReceivedMessage& message);
  Result<Reply> ResetDevice();
  Result<Reply> SetGpuSocket(ReceivedMessage& message);
  Result<Reply> SetBackendChannel(ReceivedMessage& message);
  Result<Reply> GetShmemConfig(ReceivedMessage& message);
  // The device's mappings go through `mapper` from now on (null: none).
  void GiveMapper(std::shared_ptr<virtio::SharedMemoryMapper> mapper);

  Result<void> StartVring(uint32_t index, UniqueFd kick_fd);
  Result<void> InstallMemory(std::vector<virtio::GuestMemoryRegion> regions);
  Result<virtio::GuestMemoryRegion> MapRegion(const MemoryRegionDescription& description, int fd);
  void StopAllVrings();
  bool Negotiated(uint64_t protocol_feature) const {
    return (protocol_features_ & protocol_feature) != 0;
  }

  virtio::Device& device_;
  DeviceThread& device_thread_;
  GpuSocketReceiver gpu_socket_receiver_;
  const uint64_t offered_features_;
  const std::vector<uint64_t> shared_memory_regions_;
  const uint64_t offered_protocol_features_;

  uint64_t acked_features_ = 0;
  uint64_t protocol_features_ = 0;
  bool activated_ = false;
  std::shared_ptr<const virtio::GuestMemory> memory_;
  std::vector<Vring> vrings_;
  bool has_mapper_ = false;       // The device was given a backend channel.
  UniqueFd idle_backend_socket_;  // SET_BACKEND_REQ_FD's socket when SHMEM was not negotiated.
};

}  // namespace vgpu::vhost_user
