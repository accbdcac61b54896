// Errors of the virgl backend, made in one place (internal to src/renderer/virgl).
//
//   if (result != 0) return VirglFailure("creating resource 5", result);
//   if (!known) return UnknownContext(context);   // VirglRenderer::IsUnknownContext() is true.
#pragma once

#include <string>

#include "base/result.h"
#include "gpu/ids.h"

namespace vgpu::renderer::virgl {

inline constexpr char kUnknownContextPrefix[] = "unknown context ";
inline constexpr char kUnknownResourcePrefix[] = "unknown resource ";

// virglrenderer returns positive errno values from some entry points and negative ones from
// others (renderer-apis-and-crosvm.md §1.6): any non-zero is a failure.
inline tl::unexpected<Error> VirglFailure(const std::string& what, int code) {
  return MakeError(ErrorKind::kInvalidArgument,
                   what + " failed (virglrenderer returned " + std::to_string(code) + ")");
}

inline tl::unexpected<Error> UnknownContext(gpu::ContextId context) {
  return MakeError(ErrorKind::kNotFound, kUnknownContextPrefix + std::to_string(context.value()));
}

inline tl::unexpected<Error> UnknownResource(gpu::ResourceId resource) {
  return MakeError(ErrorKind::kNotFound, kUnknownResourcePrefix + std::to_string(resource.value()));
}

}  // namespace vgpu::renderer::virgl
