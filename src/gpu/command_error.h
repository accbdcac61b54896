// Why a command failed, and the one mapping from that to its VIRTIO_GPU_RESP_ERR_* (§5.7.6.7).
//
//   if (resource == nullptr) return Fail(Failure::kUnknownResource, "RESOURCE_FLUSH resource 7");
//   ...
//   ResponseType type = ResponseFor(error.failure);   // ERR_INVALID_RESOURCE_ID
//
// Decoding, the executors and the renderers' errors all end as a CommandError; Completions
// answers it with ResponseFor(failure) and logs the message, rate-limited (docs/ARCHITECTURE.md,
// "Errors").
#pragma once

#include <string>
#include <utility>

#include "base/result.h"
#include "gpu/protocol.h"

namespace vgpu::gpu {

enum class Failure {
  kMalformed,         // Truncated, unknown or unsupported here: ERR_UNSPEC.
  kRefused,           // Valid but refused in this state (no backing, not negotiated): ERR_UNSPEC.
  kRenderer,          // The renderer failed for its own reasons: ERR_UNSPEC.
  kUnknownResource,   // ERR_INVALID_RESOURCE_ID.
  kUnknownContext,    // ERR_INVALID_CONTEXT_ID.
  kUnknownScanout,    // ERR_INVALID_SCANOUT_ID.
  kInvalidParameter,  // ERR_INVALID_PARAMETER.
  kOutOfMemory,       // The host memory cap: ERR_OUT_OF_MEMORY.
};

ResponseType ResponseFor(Failure failure);

struct CommandError {
  Failure failure = Failure::kMalformed;
  std::string message;
};

// A value or the CommandError that stopped it; [[nodiscard]] as Result.
template <class T>
class [[nodiscard]] CommandResult : public tl::expected<T, CommandError> {
 public:
  using Base = tl::expected<T, CommandError>;
  using Base::Base;
  CommandResult(const Base& base) : Base(base) {}        // NOLINT(google-explicit-constructor)
  CommandResult(Base&& base) : Base(std::move(base)) {}  // NOLINT(google-explicit-constructor)
};

inline tl::unexpected<CommandError> Fail(Failure failure, std::string message) {
  return tl::unexpected<CommandError>(CommandError{failure, std::move(message)});
}

// A renderer's error as the guest's: `what` names the command. Parameters the renderer found
// wrong (kInvalidArgument, kOutOfRange) are `bad_value` (normally kInvalidParameter), a full host
// kOutOfMemory, anything else the renderer's own failure.
tl::unexpected<CommandError> FromRenderer(const Error& error, const char* what,
                                          Failure bad_value = Failure::kInvalidParameter);

}  // namespace vgpu::gpu
