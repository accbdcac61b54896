// vhost-device-gpu: a vhost-user virtio-gpu backend daemon.
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "base/log.h"
#include "daemon/options.h"
#include "daemon/sandbox.h"
#include "daemon/server.h"
#include "gpu/device.h"
#ifdef VGPU_HAVE_VIRGL
#include "renderer/virgl/virgl_renderer.h"
#endif
#ifdef VGPU_HAVE_GFXSTREAM
#include "gpu/scanout.h"
#include "renderer/gfxstream/gfxstream_backend.h"
#include "renderer/gfxstream/host_preparation.h"
#endif
#include "vhost_user/device_thread.h"

namespace vgpu::daemon {
namespace {

// VHOST_DEVICE_GPU_VENUS=in-process: Venus in the daemon instead of virglrenderer's render
// server (renderer/virgl/virgl_renderer.h, VirglOptions::venus_in_process).
bool VenusInProcess() {
  const char* value = std::getenv("VHOST_DEVICE_GPU_VENUS");
  return value != nullptr && std::string_view(value) == "in-process";
}

// How long the renderer may take to start: $VHOST_DEVICE_GPU_START_TIMEOUT_MS, else 20 s (virgl
// on llvmpipe starts in well under a second, gfxstream with lavapipe in about one).
std::chrono::milliseconds RendererStartTimeout() {
  constexpr std::chrono::milliseconds kDefault{20000};
  const char* text = std::getenv(kStartTimeoutEnvironmentVariable);
  if (text == nullptr || *text == '\0') return kDefault;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (*end != '\0' || value == 0 || value > 3'600'000) {
    LogWarning("%s=%s is not a number of milliseconds in 1..3600000; using %lld",
               kStartTimeoutEnvironmentVariable, text, static_cast<long long>(kDefault.count()));
    return kDefault;
  }
  return std::chrono::milliseconds(value);
}

// The least time between two read-backs of a 3D scanout (gpu/readback_pacer.h):
// $VHOST_DEVICE_GPU_READBACK_FPS read-backs a second at most (0: every flush), else 60.
std::chrono::nanoseconds ReadbackInterval() {
  const char* text = std::getenv(kReadbackRateEnvironmentVariable);
  if (text == nullptr || *text == '\0') return gpu::kDefaultReadbackInterval;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (*end != '\0' || value > 1000) {
    LogWarning("%s=%s is not a number of read-backs a second in 0..1000; using 60",
               kReadbackRateEnvironmentVariable, text);
    return gpu::kDefaultReadbackInterval;
  }
  if (value == 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(1'000'000'000 / value);
}

// Whether large UPDATEs lend their pages: unless $VHOST_DEVICE_GPU_DISPLAY_PAGES is "copy".
bool LendDisplayPages() {
  const char* text = std::getenv(kDisplayPagesEnvironmentVariable);
  if (text == nullptr || *text == '\0' || std::strcmp(text, "lend") == 0) return true;
  if (std::strcmp(text, "copy") == 0) return false;
  LogWarning("%s=%s is neither lend nor copy; lending", kDisplayPagesEnvironmentVariable, text);
  return true;
}

// A start-up failure: "error: ..." on stderr, as for usage errors; to syslog when stderr goes
// nowhere (StderrGoesNowhere).
void StartError(const char* format, ...) __attribute__((format(printf, 1, 2)));
void StartError(const char* format, ...) {
  va_list arguments;
  va_start(arguments, format);
  if (LoggingToSyslog()) {
    LogMessageV(LogLevel::kError, format, arguments);
  } else {
    std::fputs("error: ", stderr);
    std::vfprintf(stderr, format, arguments);
    std::fputc('\n', stderr);
  }
  va_end(arguments);
}

// Whether stderr is /dev/null: how libvirt starts a backend (virCommandDaemonize), and where no
// one would ever read why the daemon stopped.
bool StderrGoesNowhere() {
  struct stat error_output {};
  struct stat null_device {};
  if (fstat(STDERR_FILENO, &error_output) != 0 || stat("/dev/null", &null_device) != 0) {
    return false;
  }
  return S_ISCHR(error_output.st_mode) && S_ISCHR(null_device.st_mode) &&
         error_output.st_rdev == null_device.st_rdev;
}

int RunDaemon(const Options& options) {
  SetLogLevel(options.log_level);
  // Before anything is logged, and before the sandbox (the syslog socket is connected here).
  if (StderrGoesNowhere()) LogToSyslog();
  // In null mode the guest's resource images live in this process's heap, large, coming and
  // going with the guest: a fixed mmap threshold keeps glibc from raising it after the first free
  // (its default), so every image is its own mapping and returns to the host at UNREF. Resident
  // memory then follows what the guest holds, which is what a host running one daemon per VM
  // pays for, instead of the high-water mark. The 3D renderers keep their images in GL, and
  // virglrenderer mallocs a frame-sized buffer for each read-back: there a fixed threshold would
  // map and fault in 8 MB per full-HD frame (llvmpipe read-back fell from 200 to 28 frames/s), so
  // they keep glibc's adaptive one.
  if (options.gpu_mode == GpuMode::kNull) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // One heap for all threads: the device thread's small allocations would otherwise open a
  // second arena (~100 KiB resident per daemon); per-thread caches keep the lock off the hot path.
  mallopt(M_ARENA_MAX, 1);
  // The sandbox refuses opening files once the daemon serves, so Mesa's usual shader cache (a
  // file per shader) could be neither read nor written. Its single-file form opens its two files
  // when the driver starts, before the sandbox, and then reads and writes through them: compiled
  // shaders survive the daemon, as they do for any GL program (llvmpipe compiles a new variant
  // for each new GL state, seconds of a guest's first frames). A value the user set is kept.
  if (options.sandbox && options.gpu_mode != GpuMode::kNull) {
    setenv("MESA_DISK_CACHE_SINGLE_FILE", "1", /*overwrite=*/0);
  }
  Result<UniqueFd> gpu_device = OpenGpuDevice(options);
  if (!gpu_device) {
    StartError("%s", gpu_device.error().message.c_str());
    return kExitConfigurationError;
  }
  // Before any thread starts, so that only the control thread sees termination signals.
  if (Result<void> signals = Server::InstallSignalHandling(); !signals) {
    LogError("%s", signals.error().message.c_str());
    return 1;
  }

  gpu::GpuDeviceConfig device_config;
  device_config.headless = options.headless;
  device_config.max_host_memory = options.max_host_memory;
  device_config.host_visible_size = options.host_visible_memory;
  device_config.readback_interval = ReadbackInterval();
  device_config.lend_display_pages = LendDisplayPages();
#ifdef VGPU_HAVE_VIRGL
  if (options.gpu_mode == GpuMode::kVirglRenderer) {
    // The factory runs on the device thread: virglrenderer's GL contexts belong to it.
    auto render_node = std::make_shared<UniqueFd>(std::move(*gpu_device));
    device_config.renderer_factory = [options, render_node]() {
      renderer::virgl::VirglOptions virgl_options;
      virgl_options.use_egl = options.use_egl;
      virgl_options.use_glx = options.use_glx;
      virgl_options.use_gles = options.use_gles;
      virgl_options.use_surfaceless = options.use_surfaceless;
      virgl_options.drm_fd = std::move(*render_node);
      // VHOST_DEVICE_GPU_VIRGL_READBACK=transfer: display read-backs through
      // virgl_renderer_transfer_read_iov only; =pbo-map: the pack buffer mapped per read. Both
      // are for comparison (README, "Environment").
      using DisplayReadback = renderer::virgl::VirglOptions::DisplayReadback;
      const char* readback = std::getenv(kVirglReadbackEnvironmentVariable);
      const std::string_view readback_path = readback != nullptr ? readback : "";
      virgl_options.display_readback = readback_path == "transfer" ? DisplayReadback::kTransfer
                                       : readback_path == "pbo-map"
                                           ? DisplayReadback::kPackBufferMapPerRead
                                           : DisplayReadback::kPackBuffer;
      for (Capset capset : options.capsets) {
        virgl_options.capsets.push_back(static_cast<uint32_t>(capset));
      }
      virgl_options.venus_in_process = VenusInProcess();
      Result<std::unique_ptr<renderer::virgl::VirglRenderer>> virgl =
          renderer::virgl::VirglRenderer::Create(std::move(virgl_options));
      if (!virgl) return Result<std::unique_ptr<renderer::Renderer>>(ErrorOf(virgl));
      return Result<std::unique_ptr<renderer::Renderer>>(std::move(*virgl));
    };
    device_config.context_init = true;
  }
#endif
#ifdef VGPU_HAVE_GFXSTREAM
  if (options.gpu_mode == GpuMode::kGfxstream) {
    renderer::gfxstream::GfxstreamOptions gfxstream_options;
    gfxstream_options.library_path = renderer::gfxstream::GfxstreamLibraryPath();
    gfxstream_options.use_egl = options.use_egl;
    gfxstream_options.use_glx = options.use_glx;
    gfxstream_options.use_gles = options.use_gles;
    gfxstream_options.use_surfaceless = options.use_surfaceless;
    gfxstream_options.capsets.clear();
    for (Capset capset : options.capsets) {
      gfxstream_options.capsets.push_back(static_cast<uint32_t>(capset));
    }
    gfxstream_options.window_width = gpu::kDefaultDisplayWidth;
    gfxstream_options.window_height = gpu::kDefaultDisplayHeight;
    // Here, before any thread: it may set EGL_PLATFORM.
    if (Result<void> ready = renderer::gfxstream::PrepareGfxstreamHost(gfxstream_options); !ready) {
      StartError("--gpu-mode gfxstream: %s", ready.error().message.c_str());
      return kExitConfigurationError;
    }
    // libgfxstream_backend is loaded here, on the device thread; without it Start() below fails
    // with the library's name and VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY, before the socket listens.
    LogDebug("gfxstream: colour buffers up to %u texels per side",
             gfxstream_options.max_image_dimension);
    device_config.renderer_factory = [gfxstream_options]() {
      return renderer::gfxstream::GfxstreamBackend::Create(gfxstream_options);
    };
    device_config.context_init = true;
  }
#endif
  gpu::GpuDevice device(device_config);
  vhost_user::DeviceThread device_thread(device);
  // A renderer library that never returns from its start-up (gfxstream waits forever for a
  // display it cannot open) must not leave a daemon that neither serves nor exits: the start is
  // bounded, and SIGTERM/SIGINT end it. Both leave the device thread stuck in the library, so
  // they end the process with _exit.
  Result<UniqueFd> start_signals = Server::TerminationSignalFd();
  if (!start_signals) {
    LogError("%s", start_signals.error().message.c_str());
    return 1;
  }
  const std::chrono::milliseconds start_timeout = RendererStartTimeout();
  if (Result<void> started = device_thread.Start(start_timeout, start_signals->get()); !started) {
    if (started.error().kind == ErrorKind::kCancelled) {
      LogInfo("terminated while the renderer was starting");
      _exit(0);
    }
    // Fail early (QEMU's backend-program conventions): the renderer cannot start as asked.
    if (started.error().kind == ErrorKind::kTimedOut) {
      StartError(
          "--gpu-mode %s: the renderer did not start within %lld ms (its library never returned; "
          "on a host without a display keep --use-surfaceless true)",
          GpuModeName(options.gpu_mode), static_cast<long long>(start_timeout.count()));
      _exit(kExitConfigurationError);
    }
    StartError("--gpu-mode %s: %s", GpuModeName(options.gpu_mode), started.error().message.c_str());
    return kExitConfigurationError;
  }
  start_signals->reset();
  auto gpu_socket_receiver = [&](UniqueFd socket) {
    device_thread.RunSync([&] { device.SetDisplaySocket(std::move(socket)); });
  };
  Server server(device, device_thread, gpu_socket_receiver,
                ServerConfig{options.socket_path, options.inherited_fd});
  if (Result<void> ready = server.Init(); !ready) {
    LogError("%s", ready.error().message.c_str());
    return 1;
  }
  if (options.socket_path) {
    LogInfo(
        "gpu mode %s; attach QEMU with -chardev socket,id=vgpu,path=%s "
        "-device vhost-user-gpu-pci,chardev=vgpu",
        GpuModeName(options.gpu_mode), options.socket_path->c_str());
  } else {
    // Started by libvirt or another manager that holds the other end: nothing to attach by hand.
    LogInfo("gpu mode %s; serving the vhost-user connection on inherited fd %d",
            GpuModeName(options.gpu_mode), *options.inherited_fd);
  }
  if (options.unused_render_node) {
    LogDebug("--render-node %s not used: gpu mode %s renders without one",
             options.unused_render_node->c_str(), GpuModeName(options.gpu_mode));
  }
  // Set up: the socket listens and the renderer runs on its thread. From here on, the daemon
  // only serves.
  // Venus (virglrenderer's render server, a child process) shares memory with the daemon
  // through memfds made per context, and is stopped and reaped at shutdown. In this process
  // instead, the Vulkan loader reads its driver manifests and loads the driver for each guest
  // instance: opening files stays allowed, as for NVIDIA's GL.
  const bool venus = options.gpu_mode == GpuMode::kVirglRenderer &&
                     std::find(options.capsets.begin(), options.capsets.end(), Capset::kVenus) !=
                         options.capsets.end();
  const bool venus_in_process = venus && VenusInProcess();
  SandboxMode sandbox_mode = SandboxMode::kOff;
  if (options.sandbox) {
    sandbox_mode = RendererOpensDeviceNodesAtRunTime() || venus_in_process
                       ? SandboxMode::kEnforceAllowingOpens
                       : SandboxMode::kEnforce;
  }
  const RendererAllowances renderer_allowances{
      .memory_files = options.gpu_mode == GpuMode::kGfxstream || venus,
      .children = venus && !venus_in_process ? ChildProcesses() : std::vector<pid_t>{}};
  if (Result<void> sandboxed = EnterSandbox(sandbox_mode, renderer_allowances); !sandboxed) {
    LogError("%s", sandboxed.error().message.c_str());
    return 1;
  }
  return server.Run();
}

}  // namespace
}  // namespace vgpu::daemon

int main(int argc, char** argv) {
  using namespace vgpu::daemon;
  ParseOutcome outcome =
      ParseCommandLine(argc, argv, CompiledFeatures(), std::getenv(kLogLevelEnvironmentVariable));
  if (!outcome.options) {
    std::fputs(outcome.standard_output.c_str(), stdout);
    std::fputs(outcome.standard_error.c_str(), stderr);
    return outcome.exit_code;
  }
  return RunDaemon(*outcome.options);
}
