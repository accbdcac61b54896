#include "renderer/virgl/egl_probe.h"

// Through libepoxy, as virglrenderer itself: it loads libEGL on the first call, so a daemon that
// never starts virgl (null mode) never maps libEGL and libGLdispatch (~120 KiB of private,
// relocated pages per process).
#include <epoxy/egl.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace vgpu::renderer::virgl {

Result<void> ProbeSurfacelessEgl() {
  // Client extensions (EGL_EXT_client_extensions): what libEGL's vendors offer before any display.
  const char* client_extensions = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
  if (client_extensions == nullptr ||
      std::strstr(client_extensions, "EGL_MESA_platform_surfaceless") == nullptr) {
    return MakeError(ErrorKind::kUnsupported,
                     "EGL offers no surfaceless platform (EGL_MESA_platform_surfaceless): no EGL "
                     "vendor library is installed or found (Mesa's libegl-mesa0, or the GPU "
                     "vendor's EGL)");
  }
  const auto get_platform_display = reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(
      eglGetProcAddress("eglGetPlatformDisplayEXT"));
  if (get_platform_display == nullptr) {
    return MakeError(ErrorKind::kUnsupported, "EGL lacks eglGetPlatformDisplayEXT");
  }
  EGLDisplay display =
      get_platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr);
  if (display == EGL_NO_DISPLAY) {
    return MakeError(ErrorKind::kUnsupported, "EGL cannot open a surfaceless display");
  }
  EGLint major = 0;
  EGLint minor = 0;
  if (eglInitialize(display, &major, &minor) != EGL_TRUE) {
    char code[16];
    std::snprintf(code, sizeof(code), "0x%x", static_cast<unsigned>(eglGetError()));
    return MakeError(
        ErrorKind::kUnsupported,
        std::string("EGL cannot initialise a surfaceless display (error ") + code + ")");
  }
  return {};
}

}  // namespace vgpu::renderer::virgl
