// FenceHandoff: fences gfxstream reports, carried from whatever thread reports them to the
// device thread.
//
//   Result<std::unique_ptr<FenceHandoff>> handoff = FenceHandoff::Create();
//   // gfxstream's fence callback, on any thread (possibly inside stream_renderer_create_fence):
//   (*handoff)->Push(FenceSignal{...});
//   // Device thread, when (*handoff)->fd() is readable:
//   for (const FenceSignal& fence : (*handoff)->Take()) Complete(fence);
//
// gfxstream's callback runs synchronously inside stream_renderer_create_fence when the fence's
// timeline has nothing pending, and otherwise on gfxstream's worker threads
// (VirtioGpuTimelines in gfxstream's own host code). The device model runs on one thread
// and must not be entered from either place, so the callback only queues the fence (under a
// mutex) and signals an eventfd; Take() returns the fences in the order they were pushed.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "renderer/renderer.h"

namespace vgpu::renderer::gfxstream {

class FenceHandoff {
 public:
  static Result<std::unique_ptr<FenceHandoff>> Create();

  // Any thread. Never blocks for long: the lock is held only to append.
  void Push(const FenceSignal& fence);
  // Readable while fences wait (it may also be readable with none: Take() then returns none).
  int fd() const { return wake_.fd(); }
  // Device thread: the fences pushed so far, oldest first.
  std::vector<FenceSignal> Take();

 private:
  explicit FenceHandoff(EventFd wake) : wake_(std::move(wake)) {}

  EventFd wake_;
  std::mutex mutex_;
  std::vector<FenceSignal> pending_;  // Guarded by mutex_.
};

}  // namespace vgpu::renderer::gfxstream
