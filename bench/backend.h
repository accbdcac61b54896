// The backend under test, started afresh or reached through its socket, and one QEMU-10-like
// connection to it.
//
//   Result<BackendSpec> spec = BackendSpec::Parse("build/vhost-device-gpu --gpu-mode null");
//   Result<std::unique_ptr<BackendConnection>> connection =
//       BackendConnection::Open(*spec, {.display_width = 1920, .display_height = 1080});
//   (*connection)->session().control_queue->...;     // Drive the device.
//   std::optional<ProcessSample> cpu = (*connection)->Sample();  // Command backends only.
//   std::string ending = (*connection)->Close();     // "exited by itself: exit code 0".
//
// A command-line backend gets `--socket-path PATH` appended (both our daemon and QEMU's
// contrib/vhost-user-gpu take it) and is started for each connection: QEMU's daemon serves one
// frontend and exits when it disconnects (vg_panic on EOF; docs/ARCHITECTURE.md).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "process_stats.h"
#include "support/daemon_process.h"
#include "support/fake_display.h"
#include "support/vhost_user_frontend.h"

namespace vgpu::bench {

struct BackendSpec {
  enum class Kind { kCommand, kSocket };
  Kind kind = Kind::kCommand;
  std::string text;                  // The argument as given.
  std::vector<std::string> command;  // kCommand: argv, the program resolved through $PATH.
  std::string socket_path;           // kSocket.

  // An existing Unix socket is kSocket; anything else is split into words (whitespace, with
  // '...' and "..." quoting) and is kCommand.
  static Result<BackendSpec> Parse(const std::string& argument);
};

struct ConnectionOptions {
  // Guest RAM (one memfd region, like vhost-user-gpu-pci). A 4K XRGB frame is 33 MB.
  uint64_t memory_size = 256ull << 20;
  // The display QEMU reports (GET_DISPLAY_INFO): the workload's frame size, so that SET_SCANOUT
  // of the whole frame fits the output.
  uint32_t display_width = 1280;
  uint32_t display_height = 800;
  std::chrono::milliseconds start_timeout{10000};
};

class BackendConnection {
 public:
  static Result<std::unique_ptr<BackendConnection>> Open(const BackendSpec& spec,
                                                         const ConnectionOptions& options);
  ~BackendConnection();
  BackendConnection(const BackendConnection&) = delete;
  BackendConnection& operator=(const BackendConnection&) = delete;

  test::Session& session() { return session_; }
  test::FakeDisplay& display() { return *session_.display; }
  // The backend's pid when this tool started it.
  std::optional<pid_t> pid() const;
  // /proc figures of a started backend; nullopt for a socket backend or one that has gone.
  std::optional<ProcessSample> Sample() const;
  // False once a started backend has exited (a socket backend: always true).
  bool BackendRunning();
  // What a started backend printed (for error messages); empty for a socket backend.
  std::string BackendOutput() const;

  // Stops the rings and disconnects like QEMU 10 at quit; a started backend is given a moment to
  // exit by itself (QEMU's does), then SIGTERM, then SIGKILL. Returns how it ended.
  std::string Close();

 private:
  BackendConnection() = default;

  std::unique_ptr<test::DaemonProcess> process_;
  std::optional<test::VhostUserFrontend> frontend_;
  test::Session session_;
  bool closed_ = false;
};

}  // namespace vgpu::bench
