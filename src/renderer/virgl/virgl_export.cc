// VirglRenderer's dmabuf half: a resource's texture exported for the display (DMABUF_SCANOUT),
// and the flush that makes rendering into it visible to the display's GL context.
//
// virglrenderer 0.10.4 exports GL textures through EGL only: virgl_renderer_get_fd_for_texture2
// makes an EGLImage of the texture and calls eglExportDMABUFImageMESA. It fails with EINVAL where
// the EGL display lacks EGL_MESA_image_dma_buf_export (Mesa's llvmpipe on the surfaceless
// platform) or the export itself fails (NVIDIA's EGL without a DRM device: EGL_BAD_MATCH, seen
// on the GPU machine), and the display reads flushed rectangles back instead.
// resource_get_info_ext (planes, modifiers) is 1.0+, so the modifier is left to the importer
// (DRM_FORMAT_MOD_INVALID), which is what QEMU's DMABUF_SCANOUT assumes anyway.
//
// Epoxy, as virglrenderer itself: glFlush goes through the same dispatch tables, to the context
// virglrenderer made current.
#include <epoxy/gl.h>

#include <string>

#include "renderer/virgl/virgl_api.h"
#include "renderer/virgl/virgl_errors.h"
#include "renderer/virgl/virgl_renderer.h"

namespace vgpu::renderer::virgl {

Result<ScanoutExport> VirglRenderer::ExportScanout(ResourceId resource) {
  Result<ResourceInfo> info = Info(resource);
  if (!info) return ErrorOf(info);
  const std::string name = "resource " + std::to_string(resource.value());
  if (info->drm_fourcc == 0) {
    return MakeError(ErrorKind::kUnsupported, name + " has virgl format " +
                                                  std::to_string(info->virgl_format) +
                                                  ", which has no DRM format");
  }
  // eglCreateImage names the texture in the current context: ctx0, which shares with all others.
  virgl_renderer_force_ctx_0();
  int fd = -1;
  int stride = 0;
  int offset = 0;
  const int result = virgl_renderer_get_fd_for_texture2(info->texture_id, &fd, &stride, &offset);
  // Positive EINVAL (no export extension, no EGLImage of this texture) or -1 (no EGL at all):
  // any non-zero is a failure, and only a success hands over an fd.
  if (result != 0) {
    return MakeError(ErrorKind::kUnsupported,
                     "virgl_renderer_get_fd_for_texture2 on " + name + " failed (returned " +
                         std::to_string(result) +
                         "): the EGL display cannot export it as a dmabuf (it lacks "
                         "EGL_MESA_image_dma_buf_export, as llvmpipe does, or the driver refused, "
                         "as NVIDIA's does without a DRM device)");
  }
  UniqueFd dmabuf(fd);
  if (!dmabuf) return MakeError(ErrorKind::kInternal, name + ": export returned no fd");
  // VhostUserGpuDMABUFScanout has no offset field: QEMU imports the plane at offset 0.
  if (offset != 0 || stride <= 0) {
    return MakeError(ErrorKind::kUnsupported,
                     name + " exports at offset " + std::to_string(offset) + " with stride " +
                         std::to_string(stride) + "; DMABUF_SCANOUT takes offset 0 only");
  }
  return ScanoutExport{
      .dmabuf = std::move(dmabuf),
      .width = info->width,
      .height = info->height,
      .stride = static_cast<uint32_t>(stride),
      .fourcc = static_cast<uint32_t>(info->drm_fourcc),
      .modifier = kDrmFormatModInvalid,
      .y0_top = info->y_0_top(),
  };
}

void VirglRenderer::FlushForScanout() {
  // Making ctx0 current flushes the guest context that rendered (eglMakeCurrent flushes the
  // context it replaces); glFlush then flushes ctx0's own transfers. QEMU's daemon does the same
  // before each DMABUF_UPDATE.
  virgl_renderer_force_ctx_0();
  glFlush();
}

}  // namespace vgpu::renderer::virgl
