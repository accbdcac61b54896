// ContextExecutor: capsets, 3D contexts and their command streams (§5.7.6.8, §5.7.6.9):
// GET_CAPSET_INFO, GET_CAPSET, CTX_CREATE, CTX_DESTROY, CTX_ATTACH/DETACH_RESOURCE, SUBMIT_3D.
//
//   ContextExecutor contexts(table, resources, completions, renderer_3d);  // null: 2D only.
//   CommandResult<Response> created = contexts.Create(request, acked_features);
//
// Every id is checked against the device's tables before the renderer sees it, because the
// libraries behind it trust their caller.
#pragma once

#include <cstdint>

#include "gpu/command.h"
#include "gpu/command_error.h"
#include "gpu/completions.h"
#include "gpu/context_table.h"
#include "gpu/resource_table.h"
#include "gpu/response.h"
#include "renderer/renderer.h"

namespace vgpu::gpu {

class ContextExecutor {
 public:
  ContextExecutor(ContextTable& contexts, ResourceTable& resources, Completions& completions,
                  renderer::Renderer* renderer_3d)
      : contexts_(contexts),
        resources_(resources),
        completions_(completions),
        renderer_(renderer_3d) {}

  // In 2D mode there are no capsets: every index and id is out of range.
  CommandResult<Response> QueryCapsetInfo(const GetCapsetInfo& request);
  CommandResult<Response> QueryCapset(const GetCapset& request);

  CommandResult<Response> Create(const CtxCreate& request, uint64_t acked_features);
  CommandResult<Response> Destroy(const CtrlHdr& header);
  CommandResult<Response> AttachResource(const CtxResourceRequest& attach);
  CommandResult<Response> Submit(const Submit3dRequest& submit);

  // Destroys every context (device reset).
  void Reset();

 private:
  ContextTable& contexts_;
  ResourceTable& resources_;
  Completions& completions_;
  renderer::Renderer* const renderer_;
};

}  // namespace vgpu::gpu
