// GfxstreamLibrary: Google's libgfxstream_backend.so loaded at run time, every entry point this
// backend needs looked up and checked.
//
//   Result<std::unique_ptr<GfxstreamLibrary>> library =
//       GfxstreamLibrary::Load(GfxstreamLibraryPath());
//   if (!library) { fprintf(stderr, "error: %s\n", library.error().message.c_str()); exit(1); }
//   (*library)->api().init(params, count);
//
// Debian ships no gfxstream, so the daemon does not link it: it is found through the dynamic
// loader (soname libgfxstream_backend.so.0, what gfxstream's Meson build installs) or at the path
// in $VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY. A library lacking any needed symbol is refused, with
// every missing name in the message.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "renderer/gfxstream/stream_renderer_api.h"

namespace vgpu::renderer::gfxstream {

inline constexpr char kGfxstreamLibraryEnvironmentVariable[] = "VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY";
inline constexpr char kGfxstreamDefaultSoname[] = "libgfxstream_backend.so.0";

// $VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY when set and non-empty, else the soname.
std::string GfxstreamLibraryPath();

class GfxstreamLibrary {
 public:
  // dlopen(path) and dlsym of every StreamRendererApi entry. The error is one line naming what
  // was looked for (the path, or the soname and the environment variable) and dlerror()'s reason,
  // or the library and the names of the missing symbols.
  static Result<std::unique_ptr<GfxstreamLibrary>> Load(const std::string& path);
  ~GfxstreamLibrary();

  GfxstreamLibrary(const GfxstreamLibrary&) = delete;
  GfxstreamLibrary& operator=(const GfxstreamLibrary&) = delete;

  const StreamRendererApi& api() const { return api_; }
  const std::string& path() const { return path_; }

 private:
  GfxstreamLibrary(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}

  void* handle_;
  std::string path_;
  StreamRendererApi api_;
};

}  // namespace vgpu::renderer::gfxstream
