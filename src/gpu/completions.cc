#include "gpu/completions.h"

namespace vgpu::gpu {

void Completions::Finish(Reply reply, CommandResult<Response> result) {
  Response response;
  if (result) {
    response = std::move(*result);
  } else {
    response.type = ResponseFor(result.error().failure);
    ++diagnostics_.statistics.errors;
    diagnostics_.GuestWarning("guest: %s -> %s", result.error().message.c_str(),
                              ResponseName(response.type));
  }
  const CtrlHdr& request = reply.request();
  if (renderer_ != nullptr && reply.fenced()) {
    // §5.7.6.7: a fenced command is answered once the work before it is done. Every fenced
    // command goes through the renderer's timeline, so answers keep the fence order.
    renderer::FenceSignal fence{.context = ContextId{request.ctx_id},
                                .ring_index = request.ring_idx,
                                .fence_id = request.fence_id,
                                .per_context = (request.flags & kFlagInfoRingIdx) != 0};
    if (!fence.per_context) {
      fence.context = ContextId{0};
      fence.ring_index = 0;
    }
    // §5.7.6.7: ring_idx is below 64 (a renderer's ring index checks are its own).
    Result<void> created =
        fence.ring_index < kMaxRingIdx
            ? renderer_->CreateFence(fence)
            : Result<void>(MakeError(ErrorKind::kInvalidArgument, "ring index out of range"));
    if (created) {
      held_.push_back(Held{fence, std::move(reply), std::move(response)});
      return;
    }
    diagnostics_.GuestWarning("fence %llu: %s; answering at once",
                              static_cast<unsigned long long>(request.fence_id),
                              created.error().message.c_str());
  }
  Send(reply, response);
}

void Completions::Send(Reply& reply, const Response& response) {
  if (reply.returned()) return;  // Its queue stopped meanwhile: nothing to write into.
  if (!reply.Fits(response.body.size())) {
    diagnostics_.GuestWarning("guest: %s without room for its response",
                              CommandName(reply.request().type));
  }
  (void)reply.Send(response);  // 0 when it does not fit, which was logged.
}

void Completions::ReleaseContext(ContextId context) {
  for (auto it = held_.begin(); it != held_.end();) {
    if (!it->fence.per_context || it->fence.context != context) {
      ++it;
      continue;
    }
    Held released = std::move(*it);
    it = held_.erase(it);
    diagnostics_.GuestWarning(
        "fence %llu on ring %u of context %u: context destroyed before it "
        "signalled; answering its command",
        static_cast<unsigned long long>(released.fence.fence_id), released.fence.ring_index,
        context.value());
    Send(released.reply, released.response);
  }
}

void Completions::OnFenceSignalled(const renderer::FenceSignal& fence) {
  // Answer in submission order every held command on this timeline up to the fence.
  for (auto it = held_.begin(); it != held_.end();) {
    const renderer::FenceSignal& waiting = it->fence;
    const bool same_timeline = waiting.per_context == fence.per_context &&
                               (!fence.per_context || (waiting.context == fence.context &&
                                                       waiting.ring_index == fence.ring_index));
    if (!same_timeline || waiting.fence_id > fence.fence_id) {
      ++it;
      continue;
    }
    Held done = std::move(*it);
    it = held_.erase(it);
    ++diagnostics_.statistics.fences_completed;
    Send(done.reply, done.response);
  }
}

}  // namespace vgpu::gpu
