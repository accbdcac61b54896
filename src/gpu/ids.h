// Strong ids of the virtio-gpu device model, so that a resource id is never passed where a
// scanout id belongs.
#pragma once

#include <cstdint>

#include "base/strong_id.h"

namespace vgpu::gpu {

struct ResourceIdTag {};
using ResourceId = StrongId<ResourceIdTag, uint32_t>;  // 0 means "none" (§5.7.6.8).

struct ScanoutIdTag {};
using ScanoutId = StrongId<ScanoutIdTag, uint32_t>;

struct ContextIdTag {};
using ContextId = StrongId<ContextIdTag, uint32_t>;

}  // namespace vgpu::gpu
