// Server: the control thread. Listens on the vhost-user socket (or serves an inherited fd),
// serves one frontend at a time, and handles SIGTERM/SIGINT (docs/ARCHITECTURE.md, "Lifecycle").
//
//   Server server(device, device_thread, gpu_socket_receiver, ServerConfig{"/tmp/gpu.sock"});
//   if (Result<void> ready = server.Init(); !ready) { ...; return 1; }
//   return server.Run();   // 0 after SIGTERM/SIGINT.
//
// A frontend that disconnects or breaks the protocol loses its connection and all device state;
// the server goes back to accepting. The socket file is removed on exit.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/event_loop.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "gpu/command_recorder.h"
#include "vhost_user/backend_handler.h"
#include "vhost_user/connection.h"
#include "vhost_user/device_thread.h"

namespace vgpu::daemon {

struct ServerConfig {
  std::optional<std::string> socket_path;
  std::optional<int> inherited_fd;
};

// How long the rest of a started message may take to arrive before the connection is dropped.
inline constexpr int kMessageTimeoutMilliseconds = 2000;

class Server {
 public:
  Server(virtio::Device& device, vhost_user::DeviceThread& device_thread,
         vhost_user::GpuSocketReceiver gpu_socket_receiver, ServerConfig config);
  ~Server();

  // Blocks SIGTERM/SIGINT into a signalfd and ignores SIGPIPE. Call before any other thread starts
  // so that every thread inherits the mask.
  static Result<void> InstallSignalHandling();
  // A signalfd of the termination signals (blocked by InstallSignalHandling), for waiting on them
  // before the server runs.
  static Result<UniqueFd> TerminationSignalFd();

  // Sets up the listening socket (replacing a stale socket file) or adopts the inherited fd.
  Result<void> Init();
  // Serves until a termination signal (exit code 0) or until an inherited connected socket
  // closes (exit code 0).
  int Run();

  uint64_t connections_served() const { return connections_served_; }

 private:
  Result<void> Listen(const std::string& path);
  void OnListenReadable();
  void Serve(UniqueFd socket);
  void OnConnectionReadable();
  void CloseConnection(const char* reason);
  void OnSignal();

  virtio::Device& device_;
  vhost_user::DeviceThread& device_thread_;
  vhost_user::GpuSocketReceiver gpu_socket_receiver_;
  ServerConfig config_;

  EventLoop loop_;
  UniqueFd signal_fd_;
  UniqueFd listen_fd_;
  WatchId listen_watch_ = 0;
  bool remove_socket_file_ = false;
  bool exit_when_connection_ends_ = false;

  std::unique_ptr<vhost_user::Connection> connection_;
  std::unique_ptr<vhost_user::BackendHandler> handler_;
  WatchId connection_watch_ = 0;
  uint64_t connections_served_ = 0;
  // Debug: every message received, when VHOST_DEVICE_GPU_RECORD_VHOST_USER names a file (opened
  // here, before the sandbox; gpu/command_recorder.h).
  gpu::CommandRecorder message_recorder_ =
      gpu::CommandRecorder::FromEnvironment(gpu::kRecordVhostUserEnvironmentVariable);
};

}  // namespace vgpu::daemon
