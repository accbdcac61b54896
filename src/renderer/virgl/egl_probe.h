// ProbeSurfacelessEgl: checks, before virglrenderer is asked, that EGL can open a surfaceless
// display.
//
//   if (Result<void> egl = ProbeSurfacelessEgl(); !egl) return ErrorOf(egl);
//   virgl_renderer_init(cookie, VIRGL_RENDERER_USE_EGL | VIRGL_RENDERER_USE_SURFACELESS, ...);
//
// Why: virglrenderer 0.10.4 crashes (SIGSEGV inside virgl_renderer_init) instead of failing when
// it is asked for a surfaceless EGL display and libEGL has no vendor to provide one (no Mesa
// libegl-mesa0, no NVIDIA EGL, or __EGL_VENDOR_LIBRARY_FILENAMES pointing nowhere). Without
// surfaceless it fails cleanly, so only that path is probed.
//
// The display is left initialised: virglrenderer initialises the same display again (a no-op)
// and terminates it in virgl_renderer_cleanup.
#pragma once

#include "base/result.h"

namespace vgpu::renderer::virgl {

Result<void> ProbeSurfacelessEgl();

}  // namespace vgpu::renderer::virgl
