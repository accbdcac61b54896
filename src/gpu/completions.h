// Completions: the end of every control command. Its response is written and its chain returned
// now, or, for a fenced command when a 3D renderer runs, once the renderer has signalled the
// command's fence (§5.7.6.7), in fence order per timeline. A failed command gets the ERR_* of its
// failure (command_error.h) and a rate-limited log line.
//
//   completions.Finish(std::move(reply), executor.Run(request));   // Now or after the fence.
//   renderer->SetFenceHandler([&](const FenceSignal& f) { completions.OnFenceSignalled(f); });
//
// A held reply whose queue stopped meanwhile sends nothing when its fence comes (reply.h).
#pragma once

#include <deque>

#include "gpu/command_error.h"
#include "gpu/diagnostics.h"
#include "gpu/reply.h"
#include "renderer/renderer.h"

namespace vgpu::gpu {

class Completions {
 public:
  Completions(renderer::Renderer* renderer_3d, Diagnostics& diagnostics)
      : renderer_(renderer_3d), diagnostics_(diagnostics) {}

  void Finish(Reply reply, CommandResult<Response> result);
  // Answers, in order, every held command of the fence's timeline up to it.
  void OnFenceSignalled(const renderer::FenceSignal& fence);
  // Answers, in order, every held command fenced on one of `context`'s rings: the context is
  // destroyed, and with it the renderer's work, so nothing will signal them. (A fence on a ring
  // the renderer cannot signal, such as a Venus ring with no queue bound in the render server,
  // holds its command until then.)
  void ReleaseContext(ContextId context);
  // Forgets what is held (their queue stopped: the chains went back already).
  void DropHeld() { held_.clear(); }
  size_t held() const { return held_.size(); }

 private:
  struct Held {
    renderer::FenceSignal fence;
    Reply reply;
    Response response;
  };
  void Send(Reply& reply, const Response& response);

  renderer::Renderer* const renderer_;
  Diagnostics& diagnostics_;
  std::deque<Held> held_;  // In the order the fences were created.
};

}  // namespace vgpu::gpu
