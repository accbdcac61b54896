#include "gpu/command_decoder.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>

#include "virtio/chain_io.h"

namespace vgpu::gpu {
namespace {

// The request struct T after its header, which was read already: T whole, or nullopt when the
// request is shorter.
template <class T>
std::optional<T> ReadAfterHeader(virtio::ChainReader& reader, const CtrlHdr& header) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) >= sizeof(CtrlHdr));
  T request;
  std::memcpy(&request, &header, sizeof(header));  // Every request struct starts with its header.
  if (!reader.Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&request) + sizeof(CtrlHdr),
                                      sizeof(T) - sizeof(CtrlHdr)))) {
    return std::nullopt;
  }
  return request;
}

std::string Hex(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%x", value);
  return text;
}

tl::unexpected<CommandError> Unsupported(const CtrlHdr& header) {
  return Fail(Failure::kMalformed, std::string(CommandName(header.type)) + " (" + Hex(header.type) +
                                       ") not supported in this mode");
}

tl::unexpected<CommandError> Truncated(const CtrlHdr& header) {
  return Fail(Failure::kMalformed, std::string(CommandName(header.type)) + " truncated");
}

template <class T>
CommandResult<CommandBody> Plain(virtio::ChainReader& reader, const CtrlHdr& header) {
  std::optional<T> request = ReadAfterHeader<T>(reader, header);
  if (!request) return Truncated(header);
  return CommandBody(*request);
}

// The `count` MemEntry structs that follow a request (ATTACH_BACKING, CREATE_BLOB), at most
// kMaxBackingEntries, all of them there.
CommandResult<std::vector<MemEntry>> ReadEntries(virtio::ChainReader& reader, uint32_t count,
                                                 const char* name) {
  if (count > kMaxBackingEntries) {
    return Fail(Failure::kInvalidParameter,
                std::string(name) + " " + std::to_string(count) + " entries");
  }
  if (reader.remaining() < uint64_t{count} * sizeof(MemEntry)) {
    return Fail(Failure::kMalformed, std::string(name) + " entry list truncated");
  }
  std::vector<MemEntry> entries(count);
  (void)reader.Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(entries.data()),
                                       entries.size() * sizeof(MemEntry)));  // Fits.
  return entries;
}

CommandResult<CommandBody> AttachBacking(virtio::ChainReader& reader, const CtrlHdr& header,
                                         const virtio::DescriptorChain& chain) {
  std::optional<ResourceAttachBacking> request =
      ReadAfterHeader<ResourceAttachBacking>(reader, header);
  if (!request) return Truncated(header);
  if (request->nr_entries == 0) {
    return Fail(Failure::kInvalidParameter, "RESOURCE_ATTACH_BACKING 0 entries");
  }
  CommandResult<std::vector<MemEntry>> entries =
      ReadEntries(reader, request->nr_entries, "RESOURCE_ATTACH_BACKING");
  if (!entries) return tl::unexpected(entries.error());
  return CommandBody(AttachBackingRequest{
      .request = *request, .entries = std::move(*entries), .memory = chain.ShareMemory()});
}

CommandResult<CommandBody> CreateBlob(virtio::ChainReader& reader, const CtrlHdr& header,
                                      const virtio::DescriptorChain& chain) {
  std::optional<ResourceCreateBlob> request = ReadAfterHeader<ResourceCreateBlob>(reader, header);
  if (!request) return Truncated(header);
  // BLOB_MEM_HOST3D has no entries; the others are checked against `size` by the executor.
  CommandResult<std::vector<MemEntry>> entries =
      ReadEntries(reader, request->nr_entries, "RESOURCE_CREATE_BLOB");
  if (!entries) return tl::unexpected(entries.error());
  return CommandBody(
      CreateBlobRequest{.request = *request,
                        .entries = std::move(*entries),
                        .memory = request->nr_entries != 0 ? chain.ShareMemory() : nullptr});
}

CommandResult<CommandBody> Submit3d(virtio::ChainReader& reader, const CtrlHdr& header) {
  std::optional<CmdSubmit> request = ReadAfterHeader<CmdSubmit>(reader, header);
  if (!request) return Truncated(header);
  // No guest-sized allocation without a bound, and the stream must be there.
  if (request->size > kMaxSubmitBytes) {
    return Fail(Failure::kInvalidParameter,
                "SUBMIT_3D of " + std::to_string(request->size) + " bytes");
  }
  if (reader.remaining() < request->size) {
    return Fail(Failure::kInvalidParameter, "SUBMIT_3D claims " + std::to_string(request->size) +
                                                " bytes, carries " +
                                                std::to_string(reader.remaining()));
  }
  Submit3dRequest submit{.request = *request, .stream = std::vector<uint8_t>(request->size)};
  (void)reader.Read(submit.stream);  // Fits: checked above.
  return CommandBody(std::move(submit));
}

CommandResult<CommandBody> Decode3d(virtio::ChainReader& reader, const CtrlHdr& header) {
  switch (static_cast<CommandType>(header.type)) {
    case CommandType::kCtxCreate:
      return Plain<CtxCreate>(reader, header);
    case CommandType::kCtxDestroy:
      return CommandBody(CtxDestroyRequest{});
    case CommandType::kCtxAttachResource:
    case CommandType::kCtxDetachResource: {
      std::optional<CtxResource> request = ReadAfterHeader<CtxResource>(reader, header);
      if (!request) return Truncated(header);
      return CommandBody(CtxResourceRequest{
          *request, header.type == static_cast<uint32_t>(CommandType::kCtxAttachResource)});
    }
    case CommandType::kResourceCreate3d:
      return Plain<ResourceCreate3d>(reader, header);
    case CommandType::kTransferToHost3d:
    case CommandType::kTransferFromHost3d: {
      std::optional<TransferHost3d> request = ReadAfterHeader<TransferHost3d>(reader, header);
      if (!request) return Truncated(header);
      return CommandBody(Transfer3dRequest{
          *request, header.type == static_cast<uint32_t>(CommandType::kTransferToHost3d)});
    }
    case CommandType::kSubmit3d:
      return Submit3d(reader, header);
    case CommandType::kResourceMapBlob:
      return Plain<ResourceMapBlob>(reader, header);
    case CommandType::kResourceUnmapBlob:
      return Plain<ResourceUnmapBlob>(reader, header);
    default:
      return Unsupported(header);
  }
}

}  // namespace

DecodedCommand DecodeControl(const virtio::DescriptorChain& chain, const DecodePolicy& policy) {
  virtio::ChainReader reader(chain);
  std::optional<CtrlHdr> header = reader.ReadObject<CtrlHdr>();
  if (!header) {
    // Nothing of the request can be trusted; it is answered with a zeroed, unfenced header (as
    // QEMU's VIRTIO_GPU_FILL_CMD answers ERR_UNSPEC).
    return DecodedCommand{CtrlHdr{}, Fail(Failure::kMalformed, "request shorter than a header")};
  }
  auto decoded = [&](CommandResult<CommandBody> body) {
    return DecodedCommand{*header, std::move(body)};
  };
  switch (static_cast<CommandType>(header->type)) {
    case CommandType::kGetDisplayInfo:
      return decoded(CommandBody(GetDisplayInfoRequest{}));
    case CommandType::kGetEdid:
      return decoded(Plain<GetEdid>(reader, *header));
    case CommandType::kResourceCreate2d:
      return decoded(Plain<ResourceCreate2d>(reader, *header));
    case CommandType::kResourceUnref:
      return decoded(Plain<ResourceUnref>(reader, *header));
    case CommandType::kSetScanout:
      return decoded(Plain<SetScanout>(reader, *header));
    case CommandType::kResourceFlush:
      return decoded(Plain<ResourceFlush>(reader, *header));
    case CommandType::kTransferToHost2d:
      return decoded(Plain<TransferToHost2d>(reader, *header));
    case CommandType::kResourceAttachBacking:
      return decoded(AttachBacking(reader, *header, chain));
    case CommandType::kResourceDetachBacking:
      return decoded(Plain<ResourceDetachBacking>(reader, *header));
    case CommandType::kGetCapsetInfo:
      return decoded(Plain<GetCapsetInfo>(reader, *header));
    case CommandType::kGetCapset:
      return decoded(Plain<GetCapset>(reader, *header));
    case CommandType::kResourceAssignUuid:
      return decoded(Plain<ResourceAssignUuid>(reader, *header));
    case CommandType::kResourceCreateBlob:
      return decoded(CreateBlob(reader, *header, chain));
    case CommandType::kSetScanoutBlob:
      return decoded(Plain<SetScanoutBlob>(reader, *header));
    default:
      break;
  }
  if (policy.three_d) return decoded(Decode3d(reader, *header));
  return decoded(Unsupported(*header));
}

CommandResult<CursorCommand> DecodeCursor(const virtio::DescriptorChain& chain) {
  virtio::ChainReader reader(chain);
  std::optional<UpdateCursor> request = reader.ReadObject<UpdateCursor>();
  if (!request) return Fail(Failure::kMalformed, "cursor command truncated");
  switch (static_cast<CommandType>(request->hdr.type)) {
    case CommandType::kUpdateCursor:
      return CursorCommand{*request, false};
    case CommandType::kMoveCursor:
      return CursorCommand{*request, true};
    default:
      return Fail(Failure::kMalformed, "cursor queue command " + Hex(request->hdr.type));
  }
}

}  // namespace vgpu::gpu
