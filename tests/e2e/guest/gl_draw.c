// Guest program of the 3D end-to-end test: renders a known picture with OpenGL ES 2 through
// Mesa's virgl driver and shows it on head 0, the way kmscube's legacy path does:
// DRM (/dev/dri/card0) -> GBM device and surface -> EGL (EGL_PLATFORM_GBM_KHR) -> GLES2 draw ->
// eglSwapBuffers -> gbm_surface_lock_front_buffer -> drmModeAddFB -> drmModeSetCrtc.
//
// Usage: gl_draw
//
// The picture (pixel coordinates, origin at the top left, W x H the connector's mode); the
// harness (tests/e2e/e2e.py, GlPicture) holds the same numbers and checks the screendump:
//   background  cleared to kClearColor
//   rectangle   [W/8, 3W/8) x [H/8, 3H/8)                      in kRectangleColor
//   triangle    (9W/16, 7H/8), (15W/16, 7H/8), (15W/16, 9H/16)  in kTriangleColor
// Every colour channel is a multiple of 1/255, so it converts to an exact 8-bit value; blending
// and dithering are off, so the covered pixels hold exactly these colours.
//
// Prints "@@vgpu gl renderer=... vendor=... version=..." and then
// "@@vgpu gl-drawn WIDTHxHEIGHT", and then sleeps forever: the framebuffer lives only as long as
// this process keeps the DRM file open.

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <errno.h>
#include <fcntl.h>
#include <gbm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

// 0xRRGGBB.
enum {
  kClearColor = 0x204080,
  kRectangleColor = 0xFFC000,
  kTriangleColor = 0x00FF60,
};

static int Fail(const char* what) {
  printf("@@vgpu error gl_draw: %s (errno: %s, EGL error 0x%x)\n", what, strerror(errno),
         (unsigned)eglGetError());
  return 1;
}

static float Channel(uint32_t rgb, int shift) { return (float)((rgb >> shift) & 0xFF) / 255.0f; }

// The first connected connector, its preferred (else first) mode, and the CRTC that can drive it.
struct Output {
  uint32_t connector_id;
  uint32_t crtc_id;
  drmModeModeInfo mode;
};

static int FindOutput(int fd, struct Output* output) {
  drmModeRes* resources = drmModeGetResources(fd);
  if (resources == NULL) return Fail("drmModeGetResources");
  int found = 0;
  for (int i = 0; i < resources->count_connectors && !found; ++i) {
    drmModeConnector* connector = drmModeGetConnector(fd, resources->connectors[i]);
    if (connector == NULL) continue;
    if (connector->connection == DRM_MODE_CONNECTED && connector->count_modes > 0) {
      output->connector_id = connector->connector_id;
      output->mode = connector->modes[0];
      for (int m = 0; m < connector->count_modes; ++m) {
        if (connector->modes[m].type & DRM_MODE_TYPE_PREFERRED) {
          output->mode = connector->modes[m];
          break;
        }
      }
      // virtio-gpu pairs connector i with CRTC i; take the first CRTC an encoder allows.
      for (int e = 0; e < connector->count_encoders && !found; ++e) {
        drmModeEncoder* encoder = drmModeGetEncoder(fd, connector->encoders[e]);
        if (encoder == NULL) continue;
        for (int c = 0; c < resources->count_crtcs; ++c) {
          if (encoder->possible_crtcs & (1u << c)) {
            output->crtc_id = resources->crtcs[c];
            found = 1;
            break;
          }
        }
        drmModeFreeEncoder(encoder);
      }
    }
    drmModeFreeConnector(connector);
  }
  drmModeFreeResources(resources);
  if (!found) {
    errno = ENODEV;
    return Fail("no connected connector with a mode and a CRTC");
  }
  return 0;
}

static GLuint CompileShader(GLenum type, const char* source) {
  const GLuint shader = glCreateShader(type);
  glShaderSource(shader, 1, &source, NULL);
  glCompileShader(shader);
  GLint compiled = GL_FALSE;
  glGetShaderiv(shader, GL_COMPILE_STATUS, &compiled);
  if (!compiled) {
    char log[512] = "";
    glGetShaderInfoLog(shader, sizeof(log), NULL, log);
    printf("@@vgpu error gl_draw: shader does not compile: %s\n", log);
    return 0;
  }
  return shader;
}

static GLuint BuildProgram(void) {
  static const char kVertexShader[] =
      "attribute vec2 position;\n"
      "void main() { gl_Position = vec4(position, 0.0, 1.0); }\n";
  static const char kFragmentShader[] =
      "precision mediump float;\n"
      "uniform vec4 color;\n"
      "void main() { gl_FragColor = color; }\n";
  const GLuint vertex = CompileShader(GL_VERTEX_SHADER, kVertexShader);
  const GLuint fragment = CompileShader(GL_FRAGMENT_SHADER, kFragmentShader);
  if (vertex == 0 || fragment == 0) return 0;
  const GLuint program = glCreateProgram();
  glAttachShader(program, vertex);
  glAttachShader(program, fragment);
  glBindAttribLocation(program, 0, "position");
  glLinkProgram(program);
  GLint linked = GL_FALSE;
  glGetProgramiv(program, GL_LINK_STATUS, &linked);
  if (!linked) {
    printf("@@vgpu error gl_draw: program does not link\n");
    return 0;
  }
  return program;
}

// Converts pixel coordinates (origin top left) to normalized device coordinates (origin in the
// middle, y up): what a window surface shows at the top is NDC y = +1.
static void ToNdc(float x, float y, float width, float height, GLfloat* out) {
  out[0] = 2.0f * x / width - 1.0f;
  out[1] = 1.0f - 2.0f * y / height;
}

static void DrawShape(GLuint program, const float (*points)[2], int count, uint32_t rgb,
                      float width, float height) {
  GLfloat vertices[8];
  for (int i = 0; i < count; ++i)
    ToNdc(points[i][0], points[i][1], width, height, &vertices[2 * i]);
  glUniform4f(glGetUniformLocation(program, "color"), Channel(rgb, 16), Channel(rgb, 8),
              Channel(rgb, 0), 1.0f);
  glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, vertices);
  glEnableVertexAttribArray(0);
  glDrawArrays(count == 4 ? GL_TRIANGLE_STRIP : GL_TRIANGLES, 0, count);
}

int main(void) {
  const int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Fail("open /dev/dri/card0");
  struct Output output = {0};
  if (FindOutput(fd, &output) != 0) return 1;
  const uint32_t width = output.mode.hdisplay;
  const uint32_t height = output.mode.vdisplay;

  struct gbm_device* gbm = gbm_create_device(fd);
  if (gbm == NULL) return Fail("gbm_create_device");
  struct gbm_surface* gbm_surface = gbm_surface_create(gbm, width, height, GBM_FORMAT_XRGB8888,
                                                       GBM_BO_USE_SCANOUT | GBM_BO_USE_RENDERING);
  if (gbm_surface == NULL) return Fail("gbm_surface_create");

  const PFNEGLGETPLATFORMDISPLAYEXTPROC get_platform_display =
      (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
  if (get_platform_display == NULL) return Fail("no eglGetPlatformDisplayEXT");
  const EGLDisplay display = get_platform_display(EGL_PLATFORM_GBM_KHR, gbm, NULL);
  if (display == EGL_NO_DISPLAY) return Fail("eglGetPlatformDisplayEXT(GBM)");
  EGLint major = 0;
  EGLint minor = 0;
  if (!eglInitialize(display, &major, &minor)) return Fail("eglInitialize");
  if (!eglBindAPI(EGL_OPENGL_ES_API)) return Fail("eglBindAPI");

  // The config whose native visual is the GBM surface's format.
  static const EGLint kConfigAttributes[] = {
      EGL_SURFACE_TYPE,    EGL_WINDOW_BIT,     EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8,
      EGL_RENDERABLE_TYPE, EGL_OPENGL_ES2_BIT, EGL_NONE};
  EGLConfig configs[64];
  EGLint config_count = 0;
  if (!eglChooseConfig(display, kConfigAttributes, configs, 64, &config_count)) {
    return Fail("eglChooseConfig");
  }
  EGLConfig config = NULL;
  for (EGLint i = 0; i < config_count && config == NULL; ++i) {
    EGLint visual = 0;
    if (eglGetConfigAttrib(display, configs[i], EGL_NATIVE_VISUAL_ID, &visual) &&
        (uint32_t)visual == GBM_FORMAT_XRGB8888) {
      config = configs[i];
    }
  }
  if (config == NULL) return Fail("no EGL config for GBM_FORMAT_XRGB8888");

  static const EGLint kContextAttributes[] = {EGL_CONTEXT_CLIENT_VERSION, 2, EGL_NONE};
  const EGLContext context = eglCreateContext(display, config, EGL_NO_CONTEXT, kContextAttributes);
  if (context == EGL_NO_CONTEXT) return Fail("eglCreateContext");
  const EGLSurface surface =
      eglCreateWindowSurface(display, config, (EGLNativeWindowType)gbm_surface, NULL);
  if (surface == EGL_NO_SURFACE) return Fail("eglCreateWindowSurface");
  if (!eglMakeCurrent(display, surface, surface, context)) return Fail("eglMakeCurrent");

  printf("@@vgpu gl renderer=%s vendor=%s version=%s\n", glGetString(GL_RENDERER),
         glGetString(GL_VENDOR), glGetString(GL_VERSION));
  fflush(stdout);

  const GLuint program = BuildProgram();
  if (program == 0) return 1;
  glUseProgram(program);
  glViewport(0, 0, (GLsizei)width, (GLsizei)height);
  glDisable(GL_DITHER);
  glDisable(GL_BLEND);
  glClearColor(Channel(kClearColor, 16), Channel(kClearColor, 8), Channel(kClearColor, 0), 1.0f);
  glClear(GL_COLOR_BUFFER_BIT);

  const float w = (float)width;
  const float h = (float)height;
  const float rectangle[4][2] = {
      {w / 8, h / 8}, {3 * w / 8, h / 8}, {w / 8, 3 * h / 8}, {3 * w / 8, 3 * h / 8}};
  DrawShape(program, rectangle, 4, kRectangleColor, w, h);
  const float triangle[3][2] = {
      {9 * w / 16, 7 * h / 8}, {15 * w / 16, 7 * h / 8}, {15 * w / 16, 9 * h / 16}};
  DrawShape(program, triangle, 3, kTriangleColor, w, h);
  if (glGetError() != GL_NO_ERROR) return Fail("a GL call failed");

  if (!eglSwapBuffers(display, surface)) return Fail("eglSwapBuffers");
  struct gbm_bo* bo = gbm_surface_lock_front_buffer(gbm_surface);
  if (bo == NULL) return Fail("gbm_surface_lock_front_buffer");
  uint32_t framebuffer = 0;
  if (drmModeAddFB(fd, width, height, 24, 32, gbm_bo_get_stride(bo), gbm_bo_get_handle(bo).u32,
                   &framebuffer) != 0) {
    return Fail("drmModeAddFB");
  }
  if (drmModeSetCrtc(fd, output.crtc_id, framebuffer, 0, 0, &output.connector_id, 1,
                     &output.mode) != 0) {
    return Fail("drmModeSetCrtc");
  }
  printf("@@vgpu gl-drawn %ux%u\n", width, height);
  fflush(stdout);
  for (;;) pause();
}
