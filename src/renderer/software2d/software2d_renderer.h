// Software2dRenderer: 2D resources in host memory (RESOURCE_CREATE_2D), the renderer of null
// mode and of every dumb buffer in the 3D modes.
//
//   Software2dRenderer software;
//   software.CreateResource(ResourceParams{.id = id, .target = kTargetTexture2d,
//                                          .format = format, .width = w, .height = h});
//   software.AttachBacking(id, backing);
//   software.TransferToHost(TransferParams{.resource = id, .box = {x, y, 0, w, h, 1},
//                                          .offset = offset});
//   std::optional<DisplayRows> rows = software.DirectRows(id, rect);   // Sent as they are.
//
// A resource is a HostImage (zeroed, packed rows) in one of the eight virtio-gpu formats.
// TRANSFER_TO_HOST_2D copies the rectangle's rows from the backing, where row r of the rectangle
// starts at offset + r * the image's stride (QEMU's layout); the whole range is checked against
// the backing before a byte moves.
#pragma once

#include <unordered_map>

#include "renderer/renderer.h"
#include "renderer/software2d/host_image.h"

namespace vgpu::renderer::software2d {

class Software2dRenderer final : public Renderer {
 public:
  const char* name() const override { return "software 2D"; }

  // A 2D texture of one of the eight formats, width and height non-zero; depth, layers, levels
  // and samples must be those of a 2D texture.
  Result<void> CreateResource(const ResourceParams& params) override;
  void DestroyResource(ResourceId resource) override;
  Result<void> AttachBacking(ResourceId resource, const GuestBacking& backing) override;
  void DetachBacking(ResourceId resource) override;
  Result<void> TransferToHost(const TransferParams& params) override;
  // A 2D resource has nothing to give back (virtio-gpu has no TRANSFER_FROM_HOST_2D).
  Result<void> TransferFromHost(const TransferParams& params) override;

  Result<void> ReadRect(ResourceId resource, const Rect& rect, std::span<uint8_t> destination,
                        uint32_t stride) override;
  std::optional<DisplayRows> DirectRows(ResourceId resource, const Rect& rect) override;
  Result<void> MovePixelsToNewPages(ResourceId resource) override;
  Result<CursorImage> ReadCursor(ResourceId resource) override;

  // Guest blobs (BLOB_MEM_GUEST) only: their pixels stay in guest memory, which the device model
  // shows from where it is; nothing is kept here for them.
  bool HasBlobs() const override { return true; }
  Result<void> CreateBlob(const BlobParams& params, const GuestBacking* backing) override;

  // The resource's pixels (tests).
  const HostImage* Image(ResourceId resource) const;
  size_t resource_count() const { return resources_.size(); }

 private:
  struct Resource {
    HostImage image;
    GuestBacking backing;
  };
  Resource& At(ResourceId resource) { return resources_.at(resource); }

  std::unordered_map<ResourceId, Resource> resources_;
};

}  // namespace vgpu::renderer::software2d
