// ResourceExecutor: the commands that make, fill and free resources (§5.7.6.8, §5.7.6.9):
// RESOURCE_CREATE_2D/3D, RESOURCE_UNREF, RESOURCE_ATTACH/DETACH_BACKING, TRANSFER_TO_HOST_2D/3D,
// TRANSFER_FROM_HOST_3D and RESOURCE_ASSIGN_UUID (blobs are made in blob_executor.h).
//
//   ResourceExecutor resources(table, contexts, software, renderer_3d, scanouts);
//   CommandResult<Response> done = resources.Create2d(request);
//
// A 2D resource lives in the software renderer, a 3D one in the 3D renderer: the resource knows
// which (Resource::renderer), and every command goes there. Ids are checked against the table
// before a renderer sees them; the renderer checks the values its library trusts.
#pragma once

#include "gpu/command.h"
#include "gpu/command_error.h"
#include "gpu/context_table.h"
#include "gpu/host_visible_region.h"
#include "gpu/resource_table.h"
#include "gpu/response.h"
#include "renderer/renderer.h"

namespace vgpu::gpu {

class ScanoutExecutor;

class ResourceExecutor {
 public:
  ResourceExecutor(ResourceTable& resources, const ContextTable& contexts,
                   renderer::Renderer& software, renderer::Renderer* renderer_3d,
                   ScanoutExecutor& scanouts, HostVisibleRegion& region)
      : resources_(resources),
        contexts_(contexts),
        software_(software),
        renderer_3d_(renderer_3d),
        scanouts_(scanouts),
        region_(region) {}

  CommandResult<Response> Create2d(const ResourceCreate2d& request);
  CommandResult<Response> Create3d(const ResourceCreate3d& request);
  CommandResult<Response> Unref(const ResourceUnref& request);
  CommandResult<Response> AttachBacking(const AttachBackingRequest& attach);
  CommandResult<Response> DetachBacking(const ResourceDetachBacking& request);
  CommandResult<Response> Transfer2d(const TransferToHost2d& request);
  CommandResult<Response> Transfer3d(const Transfer3dRequest& transfer);
  CommandResult<Response> AssignUuid(const ResourceAssignUuid& request);

  // Frees every resource (device reset).
  void Reset();

  // Takes it off every scanout and out of the host-visible region, out of its renderer (backing
  // first) and out of the table. Also for a blob (BlobExecutor).
  void Destroy(Resource& resource);

  ResourceTable& resources_;
  const ContextTable& contexts_;
  renderer::Renderer& software_;
  renderer::Renderer* const renderer_3d_;
  ScanoutExecutor& scanouts_;
  HostVisibleRegion& region_;
};

}  // namespace vgpu::gpu
