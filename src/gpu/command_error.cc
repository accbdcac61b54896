#include "gpu/command_error.h"

namespace vgpu::gpu {

ResponseType ResponseFor(Failure failure) {
  switch (failure) {
    case Failure::kMalformed:
    case Failure::kRefused:
    case Failure::kRenderer:
      return ResponseType::kErrUnspec;
    case Failure::kUnknownResource:
      return ResponseType::kErrInvalidResourceId;
    case Failure::kUnknownContext:
      return ResponseType::kErrInvalidContextId;
    case Failure::kUnknownScanout:
      return ResponseType::kErrInvalidScanoutId;
    case Failure::kInvalidParameter:
      return ResponseType::kErrInvalidParameter;
    case Failure::kOutOfMemory:
      return ResponseType::kErrOutOfMemory;
  }
  return ResponseType::kErrUnspec;
}

tl::unexpected<CommandError> FromRenderer(const Error& error, const char* what, Failure bad_value) {
  Failure failure = Failure::kRenderer;
  switch (error.kind) {
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kOutOfRange:
    case ErrorKind::kMalformed:
      failure = bad_value;
      break;
    case ErrorKind::kResourceExhausted:
      failure = Failure::kOutOfMemory;
      break;
    default:
      break;
  }
  return Fail(failure, std::string(what) + ": " + error.message);
}

}  // namespace vgpu::gpu
