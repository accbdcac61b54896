// Errors of the virgl backend, made in one place (internal to src/renderer/virgl).
//
//   if (result != 0) return VirglFailure("creating resource 5", result);
#pragma once

#include <string>

#include "base/result.h"

namespace vgpu::renderer::virgl {

// virglrenderer returns positive errno values from some entry points and negative ones from
// others: any non-zero is a failure, of something the guest asked for.
inline tl::unexpected<Error> VirglFailure(const std::string& what, int code) {
  return MakeError(ErrorKind::kInvalidArgument,
                   what + " failed (virglrenderer returned " + std::to_string(code) + ")");
}

}  // namespace vgpu::renderer::virgl
