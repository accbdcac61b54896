#include "renderer/gfxstream/gfxstream_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <vector>

namespace vgpu::renderer::gfxstream {
namespace {

// Looks `name` up and stores it in `slot`, or appends the name to `missing`.
template <class Function>
void Resolve(void* handle, const char* name, Function& slot, std::vector<std::string>& missing) {
  void* symbol = dlsym(handle, name);
  if (symbol == nullptr) {
    missing.emplace_back(name);
    return;
  }
  slot = reinterpret_cast<Function>(symbol);
}

std::string WhereItWasLookedFor(const std::string& path) {
  const char* from_environment = std::getenv(kGfxstreamLibraryEnvironmentVariable);
  if (from_environment != nullptr && *from_environment != '\0') {
    return "'" + path + "' (from " + kGfxstreamLibraryEnvironmentVariable + ")";
  }
  return "'" + path + "' (through the dynamic loader's search path; set " +
         kGfxstreamLibraryEnvironmentVariable + " to the library's path)";
}

}  // namespace

std::string GfxstreamLibraryPath() {
  const char* from_environment = std::getenv(kGfxstreamLibraryEnvironmentVariable);
  if (from_environment != nullptr && *from_environment != '\0') return from_environment;
  return kGfxstreamDefaultSoname;
}

Result<std::unique_ptr<GfxstreamLibrary>> GfxstreamLibrary::Load(const std::string& path) {
  // RTLD_NODELETE: gfxstream starts threads and registers process-exit handlers; its code must
  // stay mapped after dlclose. RTLD_LOCAL keeps its many symbols out of the global namespace.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return MakeError(ErrorKind::kNotFound, "cannot load the gfxstream library " +
                                               WhereItWasLookedFor(path) + ": " +
                                               (reason != nullptr ? reason : "unknown error"));
  }
  std::unique_ptr<GfxstreamLibrary> library(new GfxstreamLibrary(handle, path));
  StreamRendererApi& api = library->api_;
  std::vector<std::string> missing;
  Resolve(handle, "stream_renderer_init", api.init, missing);
  Resolve(handle, "stream_renderer_teardown", api.teardown, missing);
  Resolve(handle, "stream_renderer_resource_create", api.resource_create, missing);
  Resolve(handle, "stream_renderer_resource_unref", api.resource_unref, missing);
  Resolve(handle, "stream_renderer_context_create", api.context_create, missing);
  Resolve(handle, "stream_renderer_context_destroy", api.context_destroy, missing);
  Resolve(handle, "stream_renderer_submit_cmd", api.submit_cmd, missing);
  Resolve(handle, "stream_renderer_transfer_read_iov", api.transfer_read_iov, missing);
  Resolve(handle, "stream_renderer_transfer_write_iov", api.transfer_write_iov, missing);
  Resolve(handle, "stream_renderer_get_cap_set", api.get_cap_set, missing);
  Resolve(handle, "stream_renderer_fill_caps", api.fill_caps, missing);
  Resolve(handle, "stream_renderer_resource_attach_iov", api.resource_attach_iov, missing);
  Resolve(handle, "stream_renderer_resource_detach_iov", api.resource_detach_iov, missing);
  Resolve(handle, "stream_renderer_ctx_attach_resource", api.ctx_attach_resource, missing);
  Resolve(handle, "stream_renderer_ctx_detach_resource", api.ctx_detach_resource, missing);
  Resolve(handle, "stream_renderer_create_fence", api.create_fence, missing);
  Resolve(handle, "stream_renderer_create_blob", api.create_blob, missing);
  Resolve(handle, "stream_renderer_export_blob", api.export_blob, missing);
  Resolve(handle, "stream_renderer_resource_map_info", api.resource_map_info, missing);
  if (!missing.empty()) {
    std::string names;
    for (const std::string& name : missing) names += (names.empty() ? "" : ", ") + name;
    return MakeError(ErrorKind::kUnsupported,
                     "the gfxstream library '" + path + "' lacks " + names +
                         " (not a gfxstream build with the stream_renderer API this daemon uses)");
  }
  return library;
}

GfxstreamLibrary::~GfxstreamLibrary() { dlclose(handle_); }

}  // namespace vgpu::renderer::gfxstream
