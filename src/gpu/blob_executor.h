// BlobExecutor: blob resources (§5.7.6.8, §5.7.6.9): RESOURCE_CREATE_BLOB, RESOURCE_MAP_BLOB and
// RESOURCE_UNMAP_BLOB. Showing one is SET_SCANOUT_BLOB (ScanoutExecutor); freeing one is
// RESOURCE_UNREF (ResourceExecutor, which unmaps it first).
//
//   BlobExecutor blobs(table, contexts, software, renderer_3d, resources, region);
//   CommandResult<Response> made = blobs.Create(request);
//   CommandResult<Response> mapped = blobs.Map(request);    // OK_MAP_INFO with its caching.
//
// A guest blob (BLOB_MEM_GUEST) is the guest's pages: it lives in the 3D renderer where that
// takes blobs (so that contexts can use it), else in the software one, and is shown from guest
// memory. Host blobs (HOST3D, HOST3D_GUEST) are the 3D renderer's, made in a context from what
// the guest's command stream prepared under blob_id; a mappable one is exported as an fd and
// mapped by the VMM into the host-visible region at the offset the guest picked.
#pragma once

#include "gpu/command.h"
#include "gpu/command_error.h"
#include "gpu/context_table.h"
#include "gpu/host_visible_region.h"
#include "gpu/resource_executor.h"
#include "gpu/resource_table.h"
#include "gpu/response.h"
#include "renderer/renderer.h"

namespace vgpu::gpu {

class BlobExecutor {
 public:
  BlobExecutor(ResourceTable& resources, const ContextTable& contexts, renderer::Renderer& software,
               renderer::Renderer* renderer_3d, ResourceExecutor& resource_executor,
               HostVisibleRegion& region)
      : resources_(resources),
        contexts_(contexts),
        software_(software),
        renderer_3d_(renderer_3d),
        resource_executor_(resource_executor),
        region_(region) {}

  CommandResult<Response> Create(const CreateBlobRequest& create);
  CommandResult<Response> Map(const ResourceMapBlob& request);
  CommandResult<Response> Unmap(const ResourceUnmapBlob& request);

 private:
  ResourceTable& resources_;
  const ContextTable& contexts_;
  renderer::Renderer& software_;
  renderer::Renderer* const renderer_3d_;
  ResourceExecutor& resource_executor_;
  HostVisibleRegion& region_;
};

}  // namespace vgpu::gpu
