#include "gpu/protocol.h"

namespace vgpu::gpu {

const char* CommandName(uint32_t type) {
  switch (static_cast<CommandType>(type)) {
    case CommandType::kUndefined:
      return "UNDEFINED";
    case CommandType::kGetDisplayInfo:
      return "GET_DISPLAY_INFO";
    case CommandType::kResourceCreate2d:
      return "RESOURCE_CREATE_2D";
    case CommandType::kResourceUnref:
      return "RESOURCE_UNREF";
    case CommandType::kSetScanout:
      return "SET_SCANOUT";
    case CommandType::kResourceFlush:
      return "RESOURCE_FLUSH";
    case CommandType::kTransferToHost2d:
      return "TRANSFER_TO_HOST_2D";
    case CommandType::kResourceAttachBacking:
      return "RESOURCE_ATTACH_BACKING";
    case CommandType::kResourceDetachBacking:
      return "RESOURCE_DETACH_BACKING";
    case CommandType::kGetCapsetInfo:
      return "GET_CAPSET_INFO";
    case CommandType::kGetCapset:
      return "GET_CAPSET";
    case CommandType::kGetEdid:
      return "GET_EDID";
    case CommandType::kResourceAssignUuid:
      return "RESOURCE_ASSIGN_UUID";
    case CommandType::kResourceCreateBlob:
      return "RESOURCE_CREATE_BLOB";
    case CommandType::kSetScanoutBlob:
      return "SET_SCANOUT_BLOB";
    case CommandType::kCtxCreate:
      return "CTX_CREATE";
    case CommandType::kCtxDestroy:
      return "CTX_DESTROY";
    case CommandType::kCtxAttachResource:
      return "CTX_ATTACH_RESOURCE";
    case CommandType::kCtxDetachResource:
      return "CTX_DETACH_RESOURCE";
    case CommandType::kResourceCreate3d:
      return "RESOURCE_CREATE_3D";
    case CommandType::kTransferToHost3d:
      return "TRANSFER_TO_HOST_3D";
    case CommandType::kTransferFromHost3d:
      return "TRANSFER_FROM_HOST_3D";
    case CommandType::kSubmit3d:
      return "SUBMIT_3D";
    case CommandType::kResourceMapBlob:
      return "RESOURCE_MAP_BLOB";
    case CommandType::kResourceUnmapBlob:
      return "RESOURCE_UNMAP_BLOB";
    case CommandType::kUpdateCursor:
      return "UPDATE_CURSOR";
    case CommandType::kMoveCursor:
      return "MOVE_CURSOR";
  }
  switch (static_cast<ResponseType>(type)) {
    case ResponseType::kOkNodata:
      return "OK_NODATA";
    case ResponseType::kOkDisplayInfo:
      return "OK_DISPLAY_INFO";
    case ResponseType::kOkCapsetInfo:
      return "OK_CAPSET_INFO";
    case ResponseType::kOkCapset:
      return "OK_CAPSET";
    case ResponseType::kOkEdid:
      return "OK_EDID";
    case ResponseType::kOkResourceUuid:
      return "OK_RESOURCE_UUID";
    case ResponseType::kOkMapInfo:
      return "OK_MAP_INFO";
    case ResponseType::kErrUnspec:
      return "ERR_UNSPEC";
    case ResponseType::kErrOutOfMemory:
      return "ERR_OUT_OF_MEMORY";
    case ResponseType::kErrInvalidScanoutId:
      return "ERR_INVALID_SCANOUT_ID";
    case ResponseType::kErrInvalidResourceId:
      return "ERR_INVALID_RESOURCE_ID";
    case ResponseType::kErrInvalidContextId:
      return "ERR_INVALID_CONTEXT_ID";
    case ResponseType::kErrInvalidParameter:
      return "ERR_INVALID_PARAMETER";
  }
  return "UNKNOWN";
}

}  // namespace vgpu::gpu
