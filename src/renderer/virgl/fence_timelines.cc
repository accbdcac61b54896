#include "renderer/virgl/fence_timelines.h"

#include <algorithm>

namespace vgpu::renderer::virgl {

uint32_t FenceTimelines::AddGlobal(uint64_t fence_id, ContextId context, uint32_t ring_index) {
  const uint32_t virgl_id = next_global_id_++;
  if (next_global_id_ == 0) next_global_id_ = 1;  // Keep 0 out: it reads as "no fence" in logs.
  global_.push_back(GlobalEntry{
      .virgl_id = virgl_id,
      .signal = FenceSignal{.context = context,
                            .ring_index = ring_index,
                            .fence_id = fence_id,
                            .per_context = false},
  });
  return virgl_id;
}

void FenceTimelines::RemoveLastGlobal() {
  if (!global_.empty()) global_.pop_back();
}

void FenceTimelines::AddContext(ContextId context, uint32_t ring_index, uint64_t fence_id) {
  rings_[RingKey{context.value(), ring_index}].push_back(fence_id);
}

void FenceTimelines::RemoveLastContext(ContextId context, uint32_t ring_index) {
  auto ring = rings_.find(RingKey{context.value(), ring_index});
  if (ring == rings_.end()) return;
  if (!ring->second.empty()) ring->second.pop_back();
  if (ring->second.empty()) rings_.erase(ring);
}

bool FenceTimelines::RetireGlobal(uint32_t virgl_id) {
  auto match = std::find_if(global_.begin(), global_.end(), [virgl_id](const GlobalEntry& entry) {
    return entry.virgl_id == virgl_id;
  });
  if (match == global_.end()) return false;
  const auto end = std::next(match);
  for (auto entry = global_.begin(); entry != end; ++entry) signalled_.push_back(entry->signal);
  global_.erase(global_.begin(), end);
  return true;
}

bool FenceTimelines::RetireContext(ContextId context, uint32_t ring_index, uint64_t fence_id) {
  auto ring = rings_.find(RingKey{context.value(), ring_index});
  if (ring == rings_.end()) return false;
  std::deque<uint64_t>& pending = ring->second;
  auto match = std::find(pending.begin(), pending.end(), fence_id);
  if (match == pending.end()) return false;
  const auto end = std::next(match);
  for (auto entry = pending.begin(); entry != end; ++entry) {
    signalled_.push_back(FenceSignal{
        .context = context, .ring_index = ring_index, .fence_id = *entry, .per_context = true});
  }
  pending.erase(pending.begin(), end);
  if (pending.empty()) rings_.erase(ring);
  return true;
}

size_t FenceTimelines::DropContext(ContextId context) {
  size_t dropped = 0;
  for (auto ring = rings_.begin(); ring != rings_.end();) {
    if (ring->first.first == context.value()) {
      dropped += ring->second.size();
      ring = rings_.erase(ring);
    } else {
      ++ring;
    }
  }
  return dropped;
}

std::vector<FenceSignal> FenceTimelines::TakeSignalled() {
  std::vector<FenceSignal> taken;
  taken.swap(signalled_);
  return taken;
}

size_t FenceTimelines::pending_count() const {
  size_t count = global_.size();
  for (const auto& [key, pending] : rings_) count += pending.size();
  return count;
}

}  // namespace vgpu::renderer::virgl
