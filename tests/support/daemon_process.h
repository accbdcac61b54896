// DaemonProcess: the daemon binary run as a child process in a fresh temporary directory, for
// integration tests.
//
//   Result<std::unique_ptr<DaemonProcess>> daemon =
//       DaemonProcess::Start({.arguments = {"--gpu-mode", "null"}});
//   Result<VhostUserFrontend> frontend =
//       VhostUserFrontend::Connect((*daemon)->socket_path(), std::chrono::seconds(5));
//   ...
//   (*daemon)->Terminate();
//   std::optional<ExitStatus> status = (*daemon)->WaitForExit(std::chrono::seconds(1));
//
// stdout and stderr go to a file in the temporary directory (StderrText()). The destructor kills
// and reaps the process if it still runs, and removes the directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vgpu::test {

struct DaemonOptions {
  // Empty: DefaultDaemonPath().
  std::string binary;
  // Arguments besides --socket-path, e.g. {"--gpu-mode", "null"}.
  std::vector<std::string> arguments = {"--gpu-mode", "null"};
  // Extra environment entries ("NAME=value"), added to the test's own environment.
  std::vector<std::string> environment;
  // Something to create at the socket path before the daemon starts.
  enum class Preexisting {
    kNothing,
    kStaleSocket,
    kRegularFile
  } preexisting = Preexisting::kNothing;
  // stdout and stderr to /dev/null instead of the log file, as libvirt starts a backend
  // (StderrText() is then empty).
  bool output_to_dev_null = false;
  // How long Start() waits for the daemon to listen.
  std::chrono::milliseconds start_timeout{5000};
};

struct ExitStatus {
  std::optional<int> exit_code;  // Set when the process exited.
  std::optional<int> signal;     // Set when a signal killed it.
  std::string ToString() const;
};

class DaemonProcess {
 public:
  // Starts the daemon and waits until its socket is listening (or the process exits, which is an
  // error carrying the daemon's output).
  static Result<std::unique_ptr<DaemonProcess>> Start(const DaemonOptions& options);
  // Starts the daemon without waiting for anything (for tests of start-up failures).
  static Result<std::unique_ptr<DaemonProcess>> Launch(const DaemonOptions& options);
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& socket_path() const { return socket_path_; }
  const std::string& directory() const { return directory_; }

  // Waits until the socket path is a listening socket (/proc/net/unix) or the process exits.
  Result<void> WaitUntilListening(std::chrono::milliseconds timeout);

  void Terminate() const { Signal(SIGTERM); }
  void Interrupt() const { Signal(SIGINT); }
  void Signal(int signal_number) const;
  void Kill();
  // The exit status once the process has ended within `timeout`, else nullopt.
  std::optional<ExitStatus> WaitForExit(std::chrono::milliseconds timeout);
  bool IsRunning();

  // /proc figures; nullopt once the process has gone.
  std::optional<size_t> OpenFdCount() const;
  // "fd -> target" for each open fd (for diagnosing a leak).
  std::vector<std::string> OpenFdTargets() const;
  std::optional<uint64_t> ResidentSetKb() const;
  std::optional<uint64_t> ThreadCount() const;

  // What the daemon wrote to stdout and stderr so far.
  std::string StderrText() const;
  // Waits until the daemon's output contains `text` (woken by each write to its log). False
  // when `timeout` passes first or the daemon ends without writing it.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout) const;

 private:
  DaemonProcess(pid_t pid, UniqueFd pid_fd, std::string directory, std::string socket_path,
                std::string log_path);
  std::optional<uint64_t> StatusField(const char* name) const;
  bool Reap(int options);

  pid_t pid_;
  UniqueFd pid_fd_;
  std::string directory_;
  std::string socket_path_;
  std::string log_path_;
  std::optional<ExitStatus> exit_status_;
};

// The daemon built with this tree, or $VGPU_DAEMON_PATH when set (to test an installed binary).
std::string DefaultDaemonPath();

// Whether `path` is bound to a listening Unix socket right now (from /proc/net/unix).
bool IsListeningUnixSocket(const std::string& path);

}  // namespace vgpu::test
