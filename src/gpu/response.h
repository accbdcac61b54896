// Responses on the control queue: what a command answers, and the header rules of §5.7.6.7.
//
//   return Response::Ok();                                          // OK_NODATA.
//   return Response::Of(ResponseType::kOkDisplayInfo, display_info);  // A full response struct.
//   CtrlHdr header = ResponseHeader(request, response.type);          // Fence echoed.
//
// A body is the bytes after the header of a value-initialised response struct, so no byte of a
// response is left uninitialised (CVE-2016-9845, CVE-2021-3545 class).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "gpu/protocol.h"

namespace vgpu::gpu {

struct Response {
  ResponseType type = ResponseType::kOkNodata;
  std::vector<uint8_t> body;  // What follows the header.

  static Response Ok() { return Response{}; }
  // `full` is a response struct that starts with its CtrlHdr; the header is made later.
  template <class T>
  static Response Of(ResponseType type, const T& full) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) >= sizeof(CtrlHdr));
    Response response{.type = type, .body = std::vector<uint8_t>(sizeof(T) - sizeof(CtrlHdr))};
    std::memcpy(response.body.data(), reinterpret_cast<const uint8_t*>(&full) + sizeof(CtrlHdr),
                response.body.size());
    return response;
  }
};

// The response header for `request`: FENCE, fence_id and ctx_id echoed when the request is
// fenced, and INFO_RING_IDX with ring_idx when the request carries one (§5.7.6.7).
CtrlHdr ResponseHeader(const CtrlHdr& request, ResponseType type);

const char* ResponseName(ResponseType type);

}  // namespace vgpu::gpu
