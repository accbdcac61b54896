#include "gpu/display_reply_parser.h"

#include <cstdio>
#include <cstring>
#include <string>

#include "gpu/protocol.h"

namespace vgpu::gpu::display {
namespace {

std::string Describe(const MessageHeader& header) {
  char text[128];
  std::snprintf(text, sizeof(text), "reply %s (%u), flags 0x%x, size %u",
                RequestName(header.request), header.request, header.flags, header.size);
  return text;
}

}  // namespace

std::optional<uint32_t> ReplyPayloadSize(Request request) {
  // Spec: vhost-user-gpu.rst, "Message types": the reply of each request that has one.
  switch (request) {
    case Request::kGetProtocolFeatures:
      return sizeof(uint64_t);
    case Request::kGetDisplayInfo:
      return sizeof(RespDisplayInfo);
    case Request::kGetEdid:
      return sizeof(RespEdid);
    case Request::kDmabufUpdate:
      return 0;
    default:
      return std::nullopt;
  }
}

Result<std::optional<ParsedReply>> ParseDisplayReply(std::span<const uint8_t> bytes,
                                                     std::optional<Request> expected) {
  if (bytes.size() < sizeof(MessageHeader)) return std::nullopt;
  MessageHeader header;
  std::memcpy(&header, bytes.data(), sizeof(header));
  // Every check below needs the header only, so a broken stream is rejected before waiting for
  // a payload that may never come.
  if ((header.flags & kReplyFlag) == 0) {
    return MakeError(ErrorKind::kMalformed, Describe(header) + " without the reply flag");
  }
  if (header.size > kMaxReplyPayload) {
    return MakeError(ErrorKind::kMalformed, Describe(header) + " is oversized");
  }
  if (!expected || header.request != static_cast<uint32_t>(*expected)) {
    std::string message = Describe(header) + " is unsolicited (";
    message += expected
                   ? std::string("waiting for ") + RequestName(static_cast<uint32_t>(*expected))
                   : std::string("no request pending");
    return MakeError(ErrorKind::kMalformed, message + ")");
  }
  const std::optional<uint32_t> size = ReplyPayloadSize(*expected);
  if (!size || header.size != *size) {
    return MakeError(ErrorKind::kMalformed, Describe(header) + " has the wrong size (expected " +
                                                std::to_string(size.value_or(0)) + ")");
  }
  const size_t total = sizeof(MessageHeader) + header.size;
  if (bytes.size() < total) return std::nullopt;
  return ParsedReply{header, bytes.subspan(sizeof(MessageHeader), header.size), total};
}

}  // namespace vgpu::gpu::display
