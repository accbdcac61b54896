// Responses on the control queue: the header rules of §5.7.6.7 in one place.
//
//   CtrlHdr header = ResponseHeader(request, ResponseType::kOkNodata);
//   uint32_t written = WriteResponse(chain, header);          // Header-only response.
//   uint32_t written = WriteResponse(chain, display_info);    // A full response struct.
//
// Every response is a value-initialised struct written whole, so no byte of it is left
// uninitialised (CVE-2016-9845, CVE-2021-3545 class).
#pragma once

#include <cstdint>
#include <span>

#include "gpu/protocol.h"
#include "virtio/descriptor_chain.h"

namespace vgpu::gpu {

// The response header for `request`: FENCE, fence_id and ctx_id echoed when the request is
// fenced, and INFO_RING_IDX with ring_idx when the request carries one (§5.7.6.7).
CtrlHdr ResponseHeader(const CtrlHdr& request, ResponseType type);

// Writes `bytes` into the chain's writable buffers; returns the used length (0 when the driver
// gave no room for the whole response: §5.7.6.7 has no partial responses).
uint32_t WriteResponseBytes(const virtio::DescriptorChain& chain, std::span<const uint8_t> bytes);

template <class T>
uint32_t WriteResponse(const virtio::DescriptorChain& chain, const T& response) {
  return WriteResponseBytes(
      chain, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&response), sizeof(T)));
}

const char* ResponseName(ResponseType type);

}  // namespace vgpu::gpu
