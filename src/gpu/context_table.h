// ContextTable: the guest's live 3D contexts, the one place that knows which context ids exist
// (the renderers trust it, renderer.h).
#pragma once

#include <algorithm>
#include <vector>

#include "gpu/protocol.h"

namespace vgpu::gpu {

class ContextTable {
 public:
  bool Contains(ContextId id) const {
    return std::find(contexts_.begin(), contexts_.end(), id) != contexts_.end();
  }
  void Insert(ContextId id) { contexts_.push_back(id); }
  void Erase(ContextId id) { std::erase(contexts_, id); }
  const std::vector<ContextId>& ids() const { return contexts_; }
  void Clear() { contexts_.clear(); }

 private:
  std::vector<ContextId> contexts_;  // A guest has a few: one per process using 3D.
};

}  // namespace vgpu::gpu
