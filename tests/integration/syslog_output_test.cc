// A daemon whose stderr goes nowhere logs to syslog: libvirt starts vhost-user backends with their
// output on /dev/null, where no one would ever read why the daemon stopped. The test plays the
// syslog daemon: a datagram socket at /dev/log, made only where the host has none (it is not the
// test's to take over otherwise).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <string>

#include "base/unique_fd.h"
#include "support/daemon_process.h"
#include "support/vhost_user_frontend.h"

namespace vgpu::test {
namespace {

constexpr char kSyslogPath[] = "/dev/log";

// Whether a line of `text` is "<PRI>Mmm dd hh:mm:ss vhost-device-gpu[PID]: MESSAGE..." with this
// priority and message start (checked by hand: std::regex trips GCC 12's warnings under ASan).
bool HasRfc3164Line(const std::string& text, const std::string& priority,
                    const std::string& message) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind(priority, 0) != 0) continue;
    // "Mmm dd hh:mm:ss " after the priority: 16 characters.
    const std::string stamp = line.substr(priority.size(), 16);
    if (stamp.size() != 16 || !std::isupper(static_cast<unsigned char>(stamp[0])) ||
        stamp[3] != ' ' || stamp[6] != ' ' || stamp[9] != ':' || stamp[12] != ':' ||
        stamp[15] != ' ') {
      continue;
    }
    const std::string rest = line.substr(priority.size() + 16);
    const size_t close = rest.find("]: ");
    if (rest.rfind("vhost-device-gpu[", 0) == 0 && close != std::string::npos &&
        rest.compare(close + 3, message.size(), message) == 0) {
      return true;
    }
  }
  return false;
}

class SyslogOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat existing {};
    if (lstat(kSyslogPath, &existing) == 0) {
      GTEST_SKIP() << kSyslogPath << " exists here (a syslog daemon's): not the test's to replace";
    }
    socket_ = UniqueFd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(socket_.valid());
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, kSyslogPath);
    if (bind(socket_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      GTEST_SKIP() << "cannot bind " << kSyslogPath << ": " << std::strerror(errno);
    }
    bound_ = true;
  }
  void TearDown() override {
    if (bound_) unlink(kSyslogPath);
  }

  // The datagrams that arrive within `timeout` of each other, until one contains `text`.
  bool ReceiveUntil(const std::string& text, std::string& received) {
    for (;;) {
      pollfd ready{socket_.get(), POLLIN, 0};
      if (poll(&ready, 1, 5000) != 1) return false;
      char datagram[2048];
      const ssize_t length = recv(socket_.get(), datagram, sizeof(datagram), 0);
      if (length <= 0) return false;
      const std::string line(datagram, static_cast<size_t>(length));
      received += line + "\n";
      if (line.find(text) != std::string::npos) return true;
    }
  }

  UniqueFd socket_;
  bool bound_ = false;
};

TEST_F(SyslogOutputTest, DaemonWithOutputOnDevNullLogsToSyslogBeforeAndAfterTheSandbox) {
  // The test hook makes one refused call once the filter is in: its line comes from the
  // sandbox's supervisor thread, which must reach syslog too.
  Result<std::unique_ptr<DaemonProcess>> daemon =
      DaemonProcess::Start({.arguments = {"--gpu-mode", "null"},
                            .environment = {"VHOST_DEVICE_GPU_TEST_FORBIDDEN_SYSCALL=socket"},
                            .output_to_dev_null = true});
  ASSERT_TRUE(daemon) << daemon.error().message;
  std::string received;

  // Start-up, before the sandbox: "<30>" is facility daemon (3 << 3) with priority info (6).
  ASSERT_TRUE(ReceiveUntil("listening on", received)) << received;
  EXPECT_NE(received.find("<30>"), std::string::npos) << received;
  EXPECT_NE(received.find("vhost-device-gpu[" + std::to_string((*daemon)->pid()) + "]"),
            std::string::npos)
      << received;
  // RFC 3164 as a local syslog daemon takes it: "<PRI>Mmm dd hh:mm:ss TAG[PID]: ".
  EXPECT_TRUE(HasRfc3164Line(received, "<30>", "listening on ")) << received;
  // Where the kernel lets a supervisor answer refusals, its line arrives too ("<28>": warning).
  if (received.find("are logged once each") != std::string::npos) {
    EXPECT_TRUE(ReceiveUntil("sandbox: refused socket (system call", received)) << received;
    EXPECT_NE(received.find("<28>"), std::string::npos) << received;
  }
  // Serving, with the filter in: the connection made at start-up still carries lines.
  Result<VhostUserFrontend> frontend =
      VhostUserFrontend::Connect((*daemon)->socket_path(), std::chrono::seconds(5));
  ASSERT_TRUE(frontend) << frontend.error().message;
  EXPECT_TRUE(ReceiveUntil("frontend connected", received)) << received;
  EXPECT_TRUE((*daemon)->StderrText().empty());
}

}  // namespace
}  // namespace vgpu::test
