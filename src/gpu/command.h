// A virtio-gpu command as the device model executes it: copied out of the guest's chain once,
// sizes checked, everything it needs owned (command_decoder.h makes them).
//
//   Command command = ...;
//   std::visit([&](const auto& request) { Execute(request); }, command.body);
//
// Each request keeps the spec's wire struct (its header included, as the guest sent it), so
// that a field is named as §5.7.6 names it; what follows the struct in the request (backing
// entries, a command stream) is copied into the command too.
#pragma once

#include <memory>
#include <variant>
#include <vector>

#include "gpu/protocol.h"
#include "virtio/guest_memory.h"

namespace vgpu::gpu {

// GET_DISPLAY_INFO and CTX_DESTROY are a header only.
struct GetDisplayInfoRequest {};
struct CtxDestroyRequest {};

// RESOURCE_ATTACH_BACKING with its entries, and the guest memory they were sent against (the
// entries are translated when the command runs).
struct AttachBackingRequest {
  ResourceAttachBacking request;
  std::vector<MemEntry> entries;
  std::shared_ptr<const virtio::GuestMemory> memory;
};

struct CtxResourceRequest {
  CtxResource request;
  bool attach = true;  // CTX_ATTACH_RESOURCE, else CTX_DETACH_RESOURCE.
};

struct Transfer3dRequest {
  TransferHost3d request;
  bool to_host = true;  // TRANSFER_TO_HOST_3D, else TRANSFER_FROM_HOST_3D.
};

// RESOURCE_CREATE_BLOB with its entries (none for BLOB_MEM_HOST3D) and the guest memory they were
// sent against.
struct CreateBlobRequest {
  ResourceCreateBlob request;
  std::vector<MemEntry> entries;
  std::shared_ptr<const virtio::GuestMemory> memory;
};

// SUBMIT_3D with its `size` bytes of command stream.
struct Submit3dRequest {
  CmdSubmit request;
  std::vector<uint8_t> stream;
};

using CommandBody =
    std::variant<GetDisplayInfoRequest, GetEdid, ResourceCreate2d, ResourceUnref, SetScanout,
                 ResourceFlush, TransferToHost2d, AttachBackingRequest, ResourceDetachBacking,
                 GetCapsetInfo, GetCapset, ResourceAssignUuid, CtxCreate, CtxDestroyRequest,
                 CtxResourceRequest, ResourceCreate3d, Transfer3dRequest, Submit3dRequest,
                 CreateBlobRequest, SetScanoutBlob, ResourceMapBlob, ResourceUnmapBlob>;

struct Command {
  CtrlHdr header{};  // As the guest sent it, read once.
  CommandBody body;
};

// A cursor-queue command (§5.7.6.10): UPDATE_CURSOR, or MOVE_CURSOR (which uses only `pos`).
struct CursorCommand {
  UpdateCursor request{};
  bool move = false;
};

}  // namespace vgpu::gpu
