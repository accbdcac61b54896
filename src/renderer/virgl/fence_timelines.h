// FenceTimelines: the fences handed to virglrenderer that have not signalled yet, per timeline.
//
//   FenceTimelines timelines;
//   uint32_t virgl_id = timelines.AddGlobal(fence_id, context);    // Before creating it in virgl.
//   virgl_renderer_create_fence(static_cast<int>(virgl_id), 0);     // On failure: RemoveLast...().
//   ...                                                             // virgl's write_fence(id):
//   timelines.RetireGlobal(id);
//   for (const FenceSignal& signal : timelines.TakeSignalled()) Complete(signal);
//
// Why it exists:
// - ctx0 fences go through virglrenderer's 32-bit `virgl_renderer_create_fence(int id)`, while
//   virtio-gpu fence ids are 64-bit (§5.7.6.7, struct virtio_gpu_ctrl_hdr.fence_id). We hand virgl
//   a 32-bit sequence number of our own and map it back, so the guest's id comes back intact (the
//   Rust vhost-device-gpu truncates it instead).
// - virglrenderer merges fences (all ctx0 fences, and per-context ones created MERGEABLE): it
//   reports only the newest fence of a batch that retired together. Retiring a fence here retires
//   every older fence of its timeline too, so each fence that was added is signalled exactly once,
//   in the order it was added.
//
// Not thread-safe: used on the device thread only (callbacks arrive inside virgl_renderer_poll()).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <utility>
#include <vector>

#include "renderer/renderer.h"

namespace vgpu::renderer::virgl {

class FenceTimelines {
 public:
  // Adds a fence to the global timeline and returns the 32-bit id to hand to virglrenderer.
  // The id is a sequence number starting at 1; it wraps after 2^32 fences, which is harmless
  // because only the few fences in flight are ever compared.
  uint32_t AddGlobal(uint64_t fence_id, ContextId context, uint32_t ring_index);
  // Removes the fence AddGlobal added last (virglrenderer refused to create it).
  void RemoveLastGlobal();

  void AddContext(ContextId context, uint32_t ring_index, uint64_t fence_id);
  // Removes the fence AddContext added last to this ring (virglrenderer refused to create it).
  void RemoveLastContext(ContextId context, uint32_t ring_index);

  // virglrenderer's write_fence(virgl_id): retires that fence and all older global ones.
  // Returns false (and changes nothing) when no pending global fence has that id.
  bool RetireGlobal(uint32_t virgl_id);
  // virglrenderer's write_context_fence(ctx, ring, id): retires that fence and all older ones on
  // the same ring. Returns false (and changes nothing) for an unknown fence.
  bool RetireContext(ContextId context, uint32_t ring_index, uint64_t fence_id);

  // Forgets the pending fences of a destroyed context: virglrenderer drops them without
  // signalling. Returns how many were dropped.
  size_t DropContext(ContextId context);

  // The fences retired since the last call, oldest first within each timeline.
  std::vector<FenceSignal> TakeSignalled();

  size_t pending_count() const;

 private:
  struct GlobalEntry {
    uint32_t virgl_id = 0;
    FenceSignal signal;
  };
  using RingKey = std::pair<uint32_t, uint32_t>;  // (context id, ring index).

  uint32_t next_global_id_ = 1;
  std::deque<GlobalEntry> global_;
  std::map<RingKey, std::deque<uint64_t>> rings_;
  std::vector<FenceSignal> signalled_;
};

}  // namespace vgpu::renderer::virgl
