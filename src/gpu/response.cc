#include "gpu/response.h"

namespace vgpu::gpu {

CtrlHdr ResponseHeader(const CtrlHdr& request, ResponseType type) {
  CtrlHdr response{};
  response.type = static_cast<uint32_t>(type);
  if (request.flags & kFlagFence) {
    response.flags |= kFlagFence;
    response.fence_id = request.fence_id;
    response.ctx_id = request.ctx_id;
    if (request.flags & kFlagInfoRingIdx) {
      response.flags |= kFlagInfoRingIdx;
      response.ring_idx = request.ring_idx;
    }
  }
  return response;
}

const char* ResponseName(ResponseType type) { return CommandName(static_cast<uint32_t>(type)); }

}  // namespace vgpu::gpu
