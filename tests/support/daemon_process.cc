#include "support/daemon_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace vgpu::test {
namespace {

UniqueFd OpenPidFd(pid_t pid) {
  return UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
}

Result<void> CreatePreexisting(const std::string& path, DaemonOptions::Preexisting what) {
  switch (what) {
    case DaemonOptions::Preexisting::kNothing:
      return {};
    case DaemonOptions::Preexisting::kRegularFile: {
      UniqueFd file(open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
      if (!file) return MakeSystemError("create " + path);
      return {};
    }
    case DaemonOptions::Preexisting::kStaleSocket: {
      // What a daemon that died leaves behind: a bound socket file nobody listens on.
      UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un address{};
      address.sun_family = AF_UNIX;
      std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
      if (bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        return MakeSystemError("bind " + path);
      }
      return {};
    }
  }
  return {};
}

}  // namespace

std::string DefaultDaemonPath() {
  if (const char* path = std::getenv("VGPU_DAEMON_PATH"); path != nullptr && *path != '\0') {
    return path;
  }
  return VGPU_DAEMON_PATH;
}

std::string ExitStatus::ToString() const {
  if (exit_code) return "exit code " + std::to_string(*exit_code);
  if (signal) return std::string("killed by ") + strsignal(*signal);
  return "unknown";
}

bool IsListeningUnixSocket(const std::string& path) {
  // Columns: Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 is __SO_ACCEPTCON.
  std::ifstream table("/proc/net/unix");
  std::string line;
  std::getline(table, line);  // Header.
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string number, references, protocol, flags, type, state, inode, name;
    fields >> number >> references >> protocol >> flags >> type >> state >> inode >> name;
    if (name == path && flags == "00010000") return true;
  }
  return false;
}

Result<std::unique_ptr<DaemonProcess>> DaemonProcess::Launch(const DaemonOptions& options) {
  const char* temporary = std::getenv("TMPDIR");
  std::string pattern = std::string(temporary != nullptr ? temporary : "/tmp") + "/vgpu-it-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return MakeSystemError("mkdtemp");
  const std::string directory = pattern;
  const std::string socket_path = directory + "/vhost-user-gpu.sock";
  const std::string log_path = directory + "/daemon.log";
  if (Result<void> made = CreatePreexisting(socket_path, options.preexisting); !made) {
    return ErrorOf(made);
  }

  std::vector<std::string> arguments = {options.binary.empty() ? DefaultDaemonPath()
                                                               : options.binary};
  arguments.insert(arguments.end(), options.arguments.begin(), options.arguments.end());
  arguments.push_back("--socket-path");
  arguments.push_back(socket_path);
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment_strings;
  for (char** entry = environ; *entry != nullptr; ++entry) environment_strings.push_back(*entry);
  environment_strings.insert(environment_strings.end(), options.environment.begin(),
                             options.environment.end());
  std::vector<char*> environment;
  for (std::string& entry : environment_strings) environment.push_back(entry.data());
  environment.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (options.output_to_dev_null) {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  }
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // Nothing else of the test process leaks into the daemon (its fd count is measured).
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // The child starts with default signal dispositions and an empty mask, as from a shell, even
  // if the test process blocks or ignores some (gtest death tests, SIGPIPE).
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t all;
  sigfillset(&all);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int spawned =
      posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), environment.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) return MakeSystemError(std::string("posix_spawn ") + argv[0], spawned);
  return std::unique_ptr<DaemonProcess>(
      new DaemonProcess(pid, OpenPidFd(pid), directory, socket_path, log_path));
}

Result<std::unique_ptr<DaemonProcess>> DaemonProcess::Start(const DaemonOptions& options) {
  Result<std::unique_ptr<DaemonProcess>> daemon = Launch(options);
  if (!daemon) return daemon;
  if (Result<void> listening = (*daemon)->WaitUntilListening(options.start_timeout); !listening) {
    return ErrorOf(listening);
  }
  return daemon;
}

DaemonProcess::DaemonProcess(pid_t pid, UniqueFd pid_fd, std::string directory,
                             std::string socket_path, std::string log_path)
    : pid_(pid),
      pid_fd_(std::move(pid_fd)),
      directory_(std::move(directory)),
      socket_path_(std::move(socket_path)),
      log_path_(std::move(log_path)) {}

DaemonProcess::~DaemonProcess() {
  // Sanitizer runs (scripts/run-sanitizers.sh) ask the daemon to exit, so that LeakSanitizer
  // checks it at exit; SIGKILL follows only if it does not exit in time.
  if (std::getenv("VGPU_DAEMON_GRACEFUL_STOP") != nullptr && !exit_status_) {
    Terminate();
    WaitForExit(std::chrono::seconds(10));
  }
  Kill();
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

Result<void> DaemonProcess::WaitUntilListening(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  UniqueFd notify(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (notify) inotify_add_watch(notify.get(), directory_.c_str(), IN_CREATE | IN_MOVED_TO);
  while (true) {
    if (IsListeningUnixSocket(socket_path_)) return {};
    if (!IsRunning()) {
      return MakeError(ErrorKind::kClosed, "daemon exited (" + exit_status_->ToString() +
                                               ") before listening; output:\n" + StderrText());
    }
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) {
      return MakeError(ErrorKind::kTimedOut,
                       "daemon not listening on " + socket_path_ + "; output:\n" + StderrText());
    }
    // The socket file appearing (inotify) or the process ending (pidfd) wakes us; bind() and
    // listen() are two steps with no event between them, hence the short slice.
    pollfd descriptors[2] = {{notify.get(), POLLIN, 0}, {pid_fd_.get(), POLLIN, 0}};
    if (poll(descriptors, 2, static_cast<int>(std::min<int64_t>(remaining.count(), 10))) > 0 &&
        (descriptors[0].revents & POLLIN)) {
      char events[4096];
      while (read(notify.get(), events, sizeof(events)) > 0) {
      }
    }
  }
}

void DaemonProcess::Signal(int signal_number) const {
  if (!exit_status_) kill(pid_, signal_number);
}

bool DaemonProcess::Reap(int options) {
  if (exit_status_) return true;
  int status = 0;
  const pid_t reaped = waitpid(pid_, &status, options);
  if (reaped != pid_) return false;
  ExitStatus exit;
  if (WIFEXITED(status)) exit.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
  exit_status_ = exit;
  return true;
}

void DaemonProcess::Kill() {
  if (exit_status_) return;
  kill(pid_, SIGKILL);
  Reap(0);
}

bool DaemonProcess::IsRunning() { return !Reap(WNOHANG); }

std::optional<ExitStatus> DaemonProcess::WaitForExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!Reap(WNOHANG)) {
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) return std::nullopt;
    if (pid_fd_) {
      pollfd descriptor{pid_fd_.get(), POLLIN, 0};
      poll(&descriptor, 1, static_cast<int>(remaining.count()));
    } else {
      // No pidfd (old kernel): nothing to wait on but time.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return exit_status_;
}

std::optional<size_t> DaemonProcess::OpenFdCount() const {
  if (exit_status_) return std::nullopt;
  const std::string path = "/proc/" + std::to_string(pid_) + "/fd";
  DIR* directory = opendir(path.c_str());
  if (directory == nullptr) return std::nullopt;
  size_t count = 0;
  while (dirent* entry = readdir(directory)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(directory);
  return count;
}

std::vector<std::string> DaemonProcess::OpenFdTargets() const {
  std::vector<std::string> targets;
  if (exit_status_) return targets;
  const std::filesystem::path directory = "/proc/" + std::to_string(pid_) + "/fd";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    std::error_code link_error;
    const std::filesystem::path target = std::filesystem::read_symlink(entry.path(), link_error);
    targets.push_back(entry.path().filename().string() + " -> " +
                      (link_error ? std::string("?") : target.string()));
  }
  std::sort(targets.begin(), targets.end());
  return targets;
}

std::optional<uint64_t> DaemonProcess::StatusField(const char* name) const {
  if (exit_status_) return std::nullopt;
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  const std::string prefix = std::string(name) + ":";
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) return std::strtoull(line.c_str() + prefix.size(), nullptr, 10);
  }
  return std::nullopt;
}

std::optional<uint64_t> DaemonProcess::ResidentSetKb() const { return StatusField("VmRSS"); }
std::optional<uint64_t> DaemonProcess::ThreadCount() const { return StatusField("Threads"); }

std::string DaemonProcess::StderrText() const {
  std::ifstream log(log_path_);
  std::stringstream text;
  text << log.rdbuf();
  return text.str();
}

bool DaemonProcess::WaitForOutput(const std::string& text,
                                  std::chrono::milliseconds timeout) const {
  UniqueFd notify(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!notify.valid() || inotify_add_watch(notify.get(), log_path_.c_str(), IN_MODIFY) < 0) {
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // Checked after the watch is in place, so that a write between the two is not missed.
    if (StderrText().find(text) != std::string::npos) return true;
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) return false;
    pollfd descriptors[2] = {{notify.get(), POLLIN, 0}, {pid_fd_.get(), POLLIN, 0}};
    if (poll(descriptors, 2, static_cast<int>(remaining.count())) <= 0) continue;
    if (descriptors[1].revents & POLLIN) return StderrText().find(text) != std::string::npos;
    char events[4096];
    while (read(notify.get(), events, sizeof(events)) > 0) {
    }
  }
}

}  // namespace vgpu::test
