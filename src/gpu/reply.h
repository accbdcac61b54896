// Reply: a control command's way back to the driver, its chain's handle (virtio::PendingChain)
// with the request header its response echoes (§5.7.6.7). Move-only: whoever holds it owes the
// answer, and sending it consumes it.
//
//   Reply reply(std::move(pending), command.header);
//   reply.Send(Response::Ok());          // Header (+ body) written, chain returned: once.
//
// A Reply whose chain went back meanwhile (the queue stopped, the device reset) sends nothing.
#pragma once

#include <cstdint>

#include "gpu/protocol.h"
#include "gpu/response.h"
#include "virtio/pending_chain.h"

namespace vgpu::gpu {

class Reply {
 public:
  Reply() = default;
  Reply(virtio::PendingChain chain, const CtrlHdr& request)
      : chain_(std::move(chain)), request_(request) {}
  Reply(Reply&&) noexcept = default;
  Reply& operator=(Reply&&) noexcept = default;

  const CtrlHdr& request() const { return request_; }
  bool fenced() const { return (request_.flags & kFlagFence) != 0; }
  // Room in the chain for a response of `body_bytes` after the header.
  bool Fits(size_t body_bytes) const {
    return chain_.writable_length() >= sizeof(CtrlHdr) + body_bytes;
  }

  // Writes the response and returns the chain; the used length (0 when the response does not fit
  // or the chain went back already).
  uint32_t Send(const Response& response) {
    const CtrlHdr header = ResponseHeader(request_, response.type);
    return chain_.Complete(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&header), sizeof(header)),
        response.body);
  }
  // Later commands wait until this one is answered (it waits for the VMM).
  void HoldQueue() { chain_.HoldQueueUntilReturned(); }
  bool returned() const { return chain_.returned(); }

 private:
  virtio::PendingChain chain_;
  CtrlHdr request_{};
};

}  // namespace vgpu::gpu
