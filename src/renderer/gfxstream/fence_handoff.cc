#include "renderer/gfxstream/fence_handoff.h"

namespace vgpu::renderer::gfxstream {

Result<std::unique_ptr<FenceHandoff>> FenceHandoff::Create() {
  Result<EventFd> wake = EventFd::Create();
  if (!wake) return ErrorOf(wake);
  return std::unique_ptr<FenceHandoff>(new FenceHandoff(std::move(*wake)));
}

void FenceHandoff::Push(const FenceSignal& fence) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(fence);
  }
  wake_.Signal();
}

std::vector<FenceSignal> FenceHandoff::Take() {
  // Reset the counter first: a fence pushed after this point signals again, so none is missed.
  (void)wake_.Consume();
  std::vector<FenceSignal> taken;
  std::lock_guard lock(mutex_);
  taken.swap(pending_);
  return taken;
}

}  // namespace vgpu::renderer::gfxstream
