// Strong ids of virtio-gpu objects (§5.7.6), shared by the device model and the renderers, so
// that a resource id is never passed where a context id belongs.
#pragma once

#include <cstdint>

#include "base/strong_id.h"

namespace vgpu::virtio_gpu {

struct ResourceIdTag {};
using ResourceId = StrongId<ResourceIdTag, uint32_t>;  // 0 means "none" (§5.7.6.8).

struct ContextIdTag {};
using ContextId = StrongId<ContextIdTag, uint32_t>;  // 0 is virglrenderer's own context.

struct ScanoutIdTag {};
using ScanoutId = StrongId<ScanoutIdTag, uint32_t>;

}  // namespace vgpu::virtio_gpu
