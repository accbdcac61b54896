// vhost-device-gpu: a vhost-user virtio-gpu backend daemon.
#include <cstdio>
#include <cstdlib>

#include "base/log.h"
#include "daemon/options.h"
#include "daemon/server.h"
#include "gpu/device.h"
#include "vhost_user/device_thread.h"

namespace vgpu::daemon {
namespace {

int RunDaemon(const Options& options) {
  SetLogLevel(options.log_level);
  if (options.gpu_mode != GpuMode::kNull) {
    // Fail early, as QEMU's backend-program conventions ask, rather than serve 2D under the name
    // of an accelerated mode.
    std::fprintf(stderr, "error: --gpu-mode %s: this backend is not implemented yet\n",
                 GpuModeName(options.gpu_mode));
    return kExitConfigurationError;
  }
  Result<UniqueFd> gpu_device = OpenGpuDevice(options);
  if (!gpu_device) {
    std::fprintf(stderr, "error: %s\n", gpu_device.error().message.c_str());
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
  gpu::GpuDevice device(device_config);
  vhost_user::DeviceThread device_thread(device);
  if (Result<void> started = device_thread.Start(); !started) {
    LogError("device thread: %s", started.error().message.c_str());
    return 1;
  }
  auto gpu_socket_receiver = [&](UniqueFd socket) {
    device_thread.RunSync([&] { device.SetDisplaySocket(std::move(socket)); });
  };
  Server server(device, device_thread, gpu_socket_receiver,
                ServerConfig{options.socket_path, options.inherited_fd});
  if (Result<void> ready = server.Init(); !ready) {
    LogError("%s", ready.error().message.c_str());
    return 1;
  }
  LogInfo(
      "gpu mode %s; attach QEMU with -chardev socket,id=vgpu,path=%s "
      "-device vhost-user-gpu-pci,chardev=vgpu",
      GpuModeName(options.gpu_mode),
      options.socket_path ? options.socket_path->c_str() : "<inherited fd>");
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
