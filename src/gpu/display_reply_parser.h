// Framing and validation of the replies the VMM sends on the vhost-user GPU socket.
//
//   std::optional<display::Request> expected = OldestPendingRequest();
//   Result<std::optional<ParsedReply>> parsed = ParseDisplayReply(bytes, expected);
//   if (!parsed) Disconnect(parsed.error());          // Protocol error: drop the socket.
//   else if (!*parsed) WaitForMoreBytes();            // Incomplete: keep the bytes.
//   else { Complete((*parsed)->payload); Consume((*parsed)->consumed); }
//
// A pure function over bytes, so that it can be fuzzed on its own. The protocol has no request
// ids: replies come in the order of the requests (QEMU answers each request as it reads it), so
// the only reply that may come next is the one for the oldest request still waiting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/result.h"
#include "gpu/display_protocol.h"

namespace vgpu::gpu::display {

// The largest reply payload accepted. The biggest real one is resp_edid (1056 bytes); anything
// much larger is a broken stream, rejected from its header alone.
inline constexpr uint32_t kMaxReplyPayload = 4096;

// The payload size a reply to `request` must have, or nullopt when `request` has no reply.
std::optional<uint32_t> ReplyPayloadSize(Request request);

struct ParsedReply {
  MessageHeader header;
  std::span<const uint8_t> payload;  // Points into the parsed bytes.
  size_t consumed = 0;               // Header plus payload.
};

// Parses the reply at the start of `bytes`. `expected` is the request whose reply may come next
// (nullopt: none is pending, so any reply is unsolicited). Returns nullopt while the reply is
// incomplete, and an error (kMalformed) as soon as the header shows a protocol violation: no
// reply flag, a size above kMaxReplyPayload, a reply to another request, or the wrong size for
// the request's reply.
Result<std::optional<ParsedReply>> ParseDisplayReply(std::span<const uint8_t> bytes,
                                                     std::optional<Request> expected);

}  // namespace vgpu::gpu::display
