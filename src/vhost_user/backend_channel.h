// BackendChannel: the back-end's own requests to the frontend, on the socket the frontend gave
// with SET_BACKEND_REQ_FD (vhost-user.rst "Back-end communication"): here BACKEND_SHMEM_MAP and
// BACKEND_SHMEM_UNMAP, which put blob memory into the guest's shared memory regions.
//
//   auto channel = std::make_shared<BackendChannel>(std::move(socket), reply_ack);
//   device.SetSharedMemoryMapper(channel);   // When SHMEM was negotiated.
//   Result<void> mapped = channel->Map(ShmemMapping{...});
//
// With REPLY_ACK negotiated each request asks for a reply (NEED_REPLY) and waits for it, at most
// `reply_timeout`; a u64 of 0 is success. Without it there is no reply and a sent request counts
// as done. A request that times out, a reply that is not the answer (another request's id, no
// reply flag, the wrong size) or a failed send breaks the channel: a late answer could be taken
// for the next one, so every later request fails at once (the frontend's next connection brings
// a new channel). Device thread only (the transport's SharedMemoryMapper contract).
#pragma once

#include <chrono>

#include "base/unique_fd.h"
#include "vhost_user/connection.h"
#include "virtio/shared_memory.h"

namespace vgpu::vhost_user {

class BackendChannel final : public virtio::SharedMemoryMapper {
 public:
  static constexpr std::chrono::milliseconds kDefaultReplyTimeout{2000};

  BackendChannel(UniqueFd socket, bool reply_ack,
                 std::chrono::milliseconds reply_timeout = kDefaultReplyTimeout);

  Result<void> Map(const virtio::ShmemMapping& mapping) override;
  Result<void> Unmap(uint8_t shmid, uint64_t shm_offset, uint64_t length) override;

  bool broken() const { return broken_; }

 private:
  Result<void> Request(BackendRequest request, const ShmemMap& payload, int fd);

  Connection connection_;
  const bool reply_ack_;
  bool broken_ = false;
};

}  // namespace vgpu::vhost_user
