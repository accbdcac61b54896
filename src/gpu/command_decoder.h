// Decoding: the one place where a chain's readable bytes become a Command (command.h).
//
//   DecodedCommand decoded = DecodeControl(chain, DecodePolicy{.three_d = true});
//   if (!decoded.body) answer(decoded.header, decoded.body.error());   // ERR_* for it.
//
// The header is read once and its type picks the request struct; the rest of the struct follows
// it, and a request shorter than its struct is malformed. What follows a struct is copied too,
// bounded before anything is allocated: at most kMaxBackingEntries backing entries, at most
// kMaxSubmitBytes of SUBMIT_3D stream, which must be there. Nothing is read twice, so a guest
// that rewrites its request while the daemon reads it gets one of the two versions, never a mix
// that passed a check it does not meet. Values are not judged here: that is each executor's.
#pragma once

#include <cstdint>

#include "gpu/command.h"
#include "gpu/command_error.h"
#include "virtio/descriptor_chain.h"

namespace vgpu::gpu {

// QEMU's limit on RESOURCE_ATTACH_BACKING entries (virtio-gpu.c: 16384).
inline constexpr uint32_t kMaxBackingEntries = 16384;
// The largest SUBMIT_3D command stream accepted (Mesa's virgl driver sends at most 64 KiB).
inline constexpr uint32_t kMaxSubmitBytes = 4u << 20;

struct DecodePolicy {
  // A 3D renderer runs: the 3D commands are known. Without one they are unsupported, as on a 2D
  // device, and not decoded further.
  bool three_d = false;
};

struct DecodedCommand {
  CtrlHdr header{};  // Zero when the request is shorter than a header.
  CommandResult<CommandBody> body;
};

DecodedCommand DecodeControl(const virtio::DescriptorChain& chain, const DecodePolicy& policy);
CommandResult<CursorCommand> DecodeCursor(const virtio::DescriptorChain& chain);

}  // namespace vgpu::gpu
