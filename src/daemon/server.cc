#include "daemon/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "vhost_user/message_record.h"

namespace vgpu::daemon {
namespace {

sigset_t TerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

Result<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return MakeError(ErrorKind::kInvalidArgument, "socket path too long: " + path);
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

}  // namespace

Server::Server(virtio::Device& device, vhost_user::DeviceThread& device_thread,
               vhost_user::GpuSocketReceiver gpu_socket_receiver, ServerConfig config)
    : device_(device),
      device_thread_(device_thread),
      gpu_socket_receiver_(std::move(gpu_socket_receiver)),
      config_(std::move(config)) {}

Server::~Server() {
  handler_.reset();
  connection_.reset();
  if (remove_socket_file_ && config_.socket_path) unlink(config_.socket_path->c_str());
}

Result<void> Server::InstallSignalHandling() {
  // A write to a socket whose peer is gone must be an EPIPE error, never a dead daemon.
  signal(SIGPIPE, SIG_IGN);
  sigset_t signals = TerminationSignals();
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return MakeSystemError("pthread_sigmask");
  }
  return {};
}

Result<UniqueFd> Server::TerminationSignalFd() {
  sigset_t signals = TerminationSignals();
  UniqueFd fd(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd) return MakeSystemError("signalfd");
  return fd;
}

Result<void> Server::Init() {
  if (Result<void> initialised = loop_.Init(); !initialised) return initialised;
  sigset_t signals = TerminationSignals();
  signal_fd_ = UniqueFd(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) return MakeSystemError("signalfd");
  Result<WatchId> signal_watch =
      loop_.Watch(signal_fd_.get(), EPOLLIN, [this](uint32_t) { OnSignal(); });
  if (!signal_watch) return ErrorOf(signal_watch);

  if (config_.socket_path) return Listen(*config_.socket_path);

  // --fd: a listening socket keeps serving; a connected one is served once.
  const int fd = *config_.inherited_fd;
  int accepting = 0;
  socklen_t length = sizeof(accepting);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) != 0) {
    return MakeSystemError("--fd " + std::to_string(fd) + " is not a socket");
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (accepting) {
    listen_fd_ = UniqueFd(fd);
    Result<WatchId> watch =
        loop_.Watch(listen_fd_.get(), EPOLLIN, [this](uint32_t) { OnListenReadable(); });
    if (!watch) return ErrorOf(watch);
    listen_watch_ = *watch;
    LogInfo("serving the inherited listening socket (fd %d)", fd);
  } else {
    exit_when_connection_ends_ = true;
    LogInfo("serving the inherited connected socket (fd %d)", fd);
    Serve(UniqueFd(fd));
  }
  return {};
}

Result<void> Server::Listen(const std::string& path) {
  Result<sockaddr_un> address = SocketAddress(path);
  if (!address) return ErrorOf(address);
  listen_fd_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_) return MakeSystemError("socket");

  struct stat status {};
  if (lstat(path.c_str(), &status) == 0) {
    if (!S_ISSOCK(status.st_mode)) {
      return MakeError(ErrorKind::kInvalidArgument,
                       "socket path exists and is not a socket: " + path);
    }
    // A socket file nobody accepts on is stale (a previous daemon died); a live one is not ours.
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) == 0) {
      return MakeError(ErrorKind::kInvalidArgument, "another process is listening on " + path);
    }
    LogInfo("replacing stale socket file %s", path.c_str());
    unlink(path.c_str());
  }
  if (bind(listen_fd_.get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0) {
    return MakeSystemError("bind " + path);
  }
  remove_socket_file_ = true;
  if (listen(listen_fd_.get(), 1) != 0) return MakeSystemError("listen");
  Result<WatchId> watch =
      loop_.Watch(listen_fd_.get(), EPOLLIN, [this](uint32_t) { OnListenReadable(); });
  if (!watch) return ErrorOf(watch);
  listen_watch_ = *watch;
  LogInfo("listening on %s", path.c_str());
  return {};
}

void Server::OnListenReadable() {
  UniqueFd socket(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!socket) {
    if (errno != EAGAIN && errno != EINTR) LogWarning("accept: %s", ErrnoText(errno).c_str());
    return;
  }
  // One frontend at a time: others wait in the backlog until this one is done.
  loop_.Unwatch(listen_watch_);
  listen_watch_ = 0;
  Serve(std::move(socket));
}

void Server::Serve(UniqueFd socket) {
  ++connections_served_;
  LogInfo("frontend connected");
  connection_ = std::make_unique<vhost_user::Connection>(std::move(socket));
  if (Result<void> timeout = connection_->SetReceiveTimeout(kMessageTimeoutMilliseconds);
      !timeout) {
    LogWarning("%s", timeout.error().message.c_str());
  }
  handler_ =
      std::make_unique<vhost_user::BackendHandler>(device_, device_thread_, gpu_socket_receiver_);
  Result<WatchId> watch = loop_.Watch(connection_->fd(), EPOLLIN | EPOLLRDHUP,
                                      [this](uint32_t) { OnConnectionReadable(); });
  if (!watch) {
    CloseConnection(watch.error().message.c_str());
    return;
  }
  connection_watch_ = *watch;
}

void Server::OnConnectionReadable() {
  Result<vhost_user::ReceivedMessage> message = connection_->Receive();
  if (!message) {
    CloseConnection(message.error().message.c_str());
    return;
  }
  if (message_recorder_.enabled()) {
    message_recorder_.RecordBytes(vhost_user::EncodeMessageRecord(*message));
  }
  Result<void> handled = handler_->Handle(*message, *connection_);
  if (!handled) CloseConnection(handled.error().message.c_str());
}

void Server::CloseConnection(const char* reason) {
  LogInfo("frontend disconnected: %s", reason);
  if (connection_watch_ != 0) loop_.Unwatch(connection_watch_);
  connection_watch_ = 0;
  handler_.reset();  // Stops the rings and resets the device.
  connection_.reset();
  if (exit_when_connection_ends_) {
    loop_.Quit();
    return;
  }
  Result<WatchId> watch =
      loop_.Watch(listen_fd_.get(), EPOLLIN, [this](uint32_t) { OnListenReadable(); });
  if (watch) listen_watch_ = *watch;
}

void Server::OnSignal() {
  signalfd_siginfo info{};
  if (read(signal_fd_.get(), &info, sizeof(info)) != sizeof(info)) return;
  LogInfo("received %s, exiting", strsignal(static_cast<int>(info.ssi_signo)));
  loop_.Quit();
}

int Server::Run() {
  loop_.Run();
  return 0;
}

}  // namespace vgpu::daemon
