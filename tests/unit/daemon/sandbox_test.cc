// The sandbox's policy table and its filter, loaded for real in forked children (a seccomp filter
// cannot be removed, so the test process itself never loads one).
#include "daemon/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "base/sanitizer_build.h"

namespace vgpu::daemon {
namespace {

TEST(SandboxPolicyTest, NoSystemCallIsListedTwice) {
  std::set<std::string> seen;
  for (const SyscallRule& rule : SandboxPolicy()) {
    EXPECT_TRUE(seen.insert(rule.name).second) << rule.name;
  }
}

#if defined(__x86_64__)
TEST(SandboxPolicyTest, EveryListedNameIsASystemCallOnX8664) {
  for (const SyscallRule& rule : SandboxPolicy()) {
    EXPECT_TRUE(NativeSyscallNumber(rule.name).has_value()) << rule.name;
  }
}
#endif

TEST(SandboxPolicyTest, EscapeToolsKillTheProcess) {
  for (const char* name : {"execve",
                           "execveat",
                           "ptrace",
                           "process_vm_readv",
                           "process_vm_writev",
                           "kexec_load",
                           "kexec_file_load",
                           "mount",
                           "umount2",
                           "pivot_root",
                           "chroot",
                           "bpf",
                           "init_module",
                           "finit_module",
                           "delete_module",
                           "perf_event_open",
                           "keyctl",
                           "add_key",
                           "unshare",
                           "setns",
                           "personality",
                           "userfaultfd",
                           "open_by_handle_at",
                           "pidfd_getfd",
                           "io_uring_setup"}) {
    EXPECT_EQ(VerdictFor(name), SyscallVerdict::kKillProcess) << name;
  }
}

TEST(SandboxPolicyTest, SteadyStateSystemCallsAreAllowed) {
  for (const char* name :
       {"accept4",      "recvmsg",    "sendmsg", "epoll_wait",     "epoll_ctl",
        "read",         "write",      "close",   "mmap",           "munmap",
        "mprotect",     "madvise",    "futex",   "timerfd_create", "timerfd_settime",
        "fcntl",        "newfstatat", "ioctl",   "exit",           "exit_group",
        "rt_sigreturn", "getrandom",  "flock"}) {
    EXPECT_EQ(VerdictFor(name), SyscallVerdict::kAllow) << name;
  }
}

TEST(SandboxPolicyTest, CloneTgkillAndPrctlAreAllowedOnlyAfterAnArgumentCheck) {
  EXPECT_EQ(VerdictFor("clone"), SyscallVerdict::kAllowIf);
  EXPECT_EQ(VerdictFor("tgkill"), SyscallVerdict::kAllowIf);
  EXPECT_EQ(VerdictFor("prctl"), SyscallVerdict::kAllowIf);
  EXPECT_EQ(VerdictFor("seccomp"), SyscallVerdict::kAllowIf);  // SECCOMP_SET_MODE_FILTER only.
  EXPECT_EQ(VerdictFor("clone3"), SyscallVerdict::kFailWithEnosys);
}

// Setup-only calls and new ways out (files, network, processes) are not listed: EPERM.
TEST(SandboxPolicyTest, FilesNetworkAndNewProcessesFailWithEperm) {
  for (const char* name : {"openat", "open", "socket", "connect", "bind", "listen", "socketpair",
                           "fork", "vfork", "kill", "mkdir", "rename", "unlinkat", "chmod",
                           "setrlimit", "prlimit64", "memfd_create", "not_a_syscall"}) {
    EXPECT_EQ(VerdictFor(name), SyscallVerdict::kFailWithEperm) << name;
  }
}

TEST(SandboxPolicyTest, FilterBuildsAndCountsTheAllowedCalls) {
  Result<SeccompFilter> filter = SeccompFilter::Build(getpid());
  ASSERT_TRUE(filter) << filter.error().message;
  size_t expected = 0;
  for (const SyscallRule& rule : SandboxPolicy()) {
    bool allows =
        rule.verdict == SyscallVerdict::kAllow || rule.verdict == SyscallVerdict::kAllowIf;
    if (allows && NativeSyscallNumber(rule.name)) ++expected;
  }
  EXPECT_EQ(filter->allowed_count(), expected);
  EXPECT_GT(filter->allowed_count(), 40u);
}

// Child exit codes of the checks below; a kill shows as a signal instead.
constexpr int kChildPassed = 0;
constexpr int kChildLoadFailed = 90;

struct ChildOutcome {
  bool exited = false;
  int exit_code = -1;
  int signal = 0;
};

enum class ChildFilter { kLoaded, kLoadedAllowingOpens, kNone };

// Runs `body` in a forked child, after loading the filter there unless kNone; `body` returns the
// exit code.
ChildOutcome RunChild(ChildFilter filter_in_child, const std::function<int()>& body) {
  const pid_t child = fork();
  if (child == 0) {
    // No core file from the deliberate kills.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (filter_in_child != ChildFilter::kNone) {
      Result<SeccompFilter> filter =
          SeccompFilter::Build(getpid(), filter_in_child == ChildFilter::kLoadedAllowingOpens);
      if (!filter || !filter->Load()) _exit(kChildLoadFailed);
    }
    _exit(body());
  }
  ChildOutcome outcome;
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child) return outcome;
  outcome.exited = WIFEXITED(status);
  if (outcome.exited) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  return outcome;
}

ChildOutcome RunSandboxedChild(const std::function<int()>& body) {
  return RunChild(ChildFilter::kLoaded, body);
}

class SandboxFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* sanitizer = SanitizerInThisBuild()) {
      GTEST_SKIP() << "the daemon does not install the filter in a " << sanitizer
                   << " build: the sanitizer runtime needs calls the filter refuses";
    }
  }
};

TEST_F(SandboxFilterTest, ExecveKillsTheProcessWithSigsys) {
  ChildOutcome outcome = RunSandboxedChild([] {
    char* const arguments[] = {const_cast<char*>("/bin/true"), nullptr};
    execve("/bin/true", arguments, environ);
    return 1;  // Not reached when the filter works.
  });

  EXPECT_FALSE(outcome.exited) << "exit code " << outcome.exit_code;
  EXPECT_EQ(outcome.signal, SIGSYS);
}

#if defined(__x86_64__)
// The 32-bit ABI has its own numbers, which no rule is about: it must not be a way around them.
TEST_F(SandboxFilterTest, ThirtyTwoBitSystemCallKillsTheProcess) {
  auto getpid_through_int80 = [] {
    long result = 20;  // getpid in the i386 table.
    asm volatile("int $0x80" : "+a"(result) : : "memory");
    return result > 0 ? 0 : 1;
  };
  if (ChildOutcome plain = RunChild(ChildFilter::kNone, getpid_through_int80); !plain.exited) {
    GTEST_SKIP() << "this kernel has no 32-bit system call ABI (int 0x80 raised signal "
                 << plain.signal << " without the filter)";
  }

  ChildOutcome outcome = RunSandboxedChild(getpid_through_int80);

  EXPECT_FALSE(outcome.exited) << "exit code " << outcome.exit_code;
  EXPECT_EQ(outcome.signal, SIGSYS);
}
#endif

TEST_F(SandboxFilterTest, UnlistedCallFailsWithEpermAndTheProcessGoesOn) {
  ChildOutcome outcome = RunSandboxedChild([] {
    if (socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) != -1) return 1;
    if (errno != EPERM) return 2;
    return kChildPassed;
  });

  EXPECT_TRUE(outcome.exited) << "killed by signal " << outcome.signal;
  EXPECT_EQ(outcome.exit_code, kChildPassed);
}

// The supervisor answers (and logs) a refused call once, then stacks a filter that refuses it
// directly: a driver that retries one (libepoxy's probes) pays no round trip each time. The
// refusal stays the same: EPERM.
TEST_F(SandboxFilterTest, ARefusedCallIsAnsweredByTheSupervisorOnceThenByTheFilter) {
  ChildOutcome outcome = RunSandboxedChild([] {
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) != -1) return 1;
      if (errno != EPERM) return 2;
    }
    const uint64_t answered = RefusalsAnsweredBySupervisor();
    if (answered == 0) return kChildPassed;  // No supervisor here (libseccomp API level < 6).
    if (answered != 1) return 3;
    // Another call is still the supervisor's the first time.
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, nullptr) != -1 || errno != EPERM) return 4;
    if (RefusalsAnsweredBySupervisor() != 2) return 5;
    // Allowed calls still work under the stacked filters.
    if (getpid() <= 0) return 6;
    return kChildPassed;
  });

  EXPECT_TRUE(outcome.exited) << "killed by signal " << outcome.signal;
  EXPECT_EQ(outcome.exit_code, kChildPassed);
}

TEST_F(SandboxFilterTest, FilesCannotBeOpenedByDefault) {
  ChildOutcome outcome = RunSandboxedChild([] {
    if (open("/dev/null", O_RDWR | O_CLOEXEC) != -1) return 1;
    if (errno != EPERM) return 2;
    return kChildPassed;
  });

  EXPECT_TRUE(outcome.exited) << "killed by signal " << outcome.signal;
  EXPECT_EQ(outcome.exit_code, kChildPassed);
}

// The profile for drivers that open device nodes at run time (NVIDIA's): existing files open,
// nothing is created or truncated.
TEST_F(SandboxFilterTest, AllowingOpensOpensExistingFilesButCreatesNothing) {
  const std::string created = ::testing::TempDir() + "sandbox-created-file";
  unlink(created.c_str());
  ChildOutcome outcome = RunChild(ChildFilter::kLoadedAllowingOpens, [&] {
    const int device = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (device < 0) return 1;
    close(device);
    if (open(created.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600) != -1) return 2;
    if (errno != EPERM) return 3;
    if (open("/dev/null", O_WRONLY | O_TRUNC | O_CLOEXEC) != -1) return 4;
    if (socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) != -1) return 5;
    // A refused open does not take opening away: existing files still open after it.
    const int again = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (again < 0) return 12;
    close(again);
    // Directories open and list (NVIDIA's EGL lists /dev/dri), and files can be looked at.
    DIR* directory = opendir("/proc/self");
    if (directory == nullptr) return 6;
    const bool listed = readdir(directory) != nullptr;
    closedir(directory);
    if (!listed) return 7;
    struct stat status {};
    if (stat("/dev/null", &status) != 0 || access("/dev/null", R_OK) != 0) return 8;
    // A missing file is missing, not refused.
    if (open("/nonexistent-sandbox-test", O_RDONLY | O_CLOEXEC) != -1 || errno != ENOENT) return 9;
    // An unnamed temporary file is a creation.
    if (open(::testing::TempDir().c_str(), O_TMPFILE | O_RDWR, 0600) != -1) return 10;
    if (mkdir((::testing::TempDir() + "sandbox-made-dir").c_str(), 0700) != -1) return 11;
    return kChildPassed;
  });

  EXPECT_TRUE(outcome.exited) << "killed by signal " << outcome.signal;
  EXPECT_EQ(outcome.exit_code, kChildPassed);
  EXPECT_NE(access(created.c_str(), F_OK), 0) << "the filter let a file be created";
}

#if defined(__x86_64__)  // System call numbers and mkdir(2) as x86_64 has them.
// A refusal's log line names the file a call wanted and its open flags: what a user needs to know
// what a driver was denied. The child's stderr goes to a file before the filter is loaded.
TEST_F(SandboxFilterTest, ARefusedOpenIsLoggedWithItsPathAndFlags) {
  const std::string log_path = ::testing::TempDir() + "sandbox-refusal-log";
  const std::string created = ::testing::TempDir() + "sandbox-wanted-\"file\"";
  unlink(created.c_str());
  const int log = open(log_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(log, 0);
  const pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    dup2(log, STDERR_FILENO);
    Result<SeccompFilter> filter = SeccompFilter::Build(getpid(), /*allow_opens=*/true);
    if (!filter || !filter->Load()) _exit(kChildLoadFailed);
    if (open(created.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600) != -1 || errno != EPERM) _exit(1);
    // A path the supervisor cannot read: the line still comes, without a path.
    if (syscall(SYS_mkdir, reinterpret_cast<const char*>(8), 0700) != -1) _exit(2);
    _exit(kChildPassed);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  ASSERT_EQ(WEXITSTATUS(status), kChildPassed);
  std::string text(4096, '\0');
  const ssize_t length = pread(log, text.data(), text.size(), 0);
  close(log);
  unlink(log_path.c_str());
  ASSERT_GT(length, 0);
  text.resize(static_cast<size_t>(length));
  if (text.find("sandbox: refused") == std::string::npos) {
    GTEST_SKIP() << "no supervisor here (libseccomp API level < 6): refusals are not logged";
  }
  // The quote in the name is not taken as the end of the path.
  const std::string wanted = "sandbox: refused openat (system call 257) on \"" +
                             ::testing::TempDir() + "sandbox-wanted-?file?\" (flags 0x80042)";
  EXPECT_NE(text.find(wanted), std::string::npos) << text;
  EXPECT_NE(text.find("sandbox: refused mkdir (system call 83) from thread"), std::string::npos)
      << text;
  EXPECT_NE(access(created.c_str(), F_OK), 0);
}
#endif

// glibc's pthread_create tries clone3 first and falls back to clone on ENOSYS; the fallback's
// flags pass the thread-only check.
TEST_F(SandboxFilterTest, ThreadsStartThroughTheCloneFallback) {
  ChildOutcome outcome = RunSandboxedChild([] {
    if (syscall(SYS_clone3, nullptr, 0) != -1 || errno != ENOSYS) return 1;
    int value = 0;
    std::thread thread([&] { value = 42; });
    thread.join();
    return value == 42 ? kChildPassed : 2;
  });

  EXPECT_TRUE(outcome.exited) << "killed by signal " << outcome.signal;
  EXPECT_EQ(outcome.exit_code, kChildPassed);
}

// A clone without CLONE_THREAD (fork) is not a thread: refused with EPERM.
TEST_F(SandboxFilterTest, ForkIsRefused) {
  ChildOutcome outcome = RunSandboxedChild([] {
    pid_t grandchild = fork();
    if (grandchild == 0) _exit(0);
    if (grandchild != -1) return 1;
    return errno == EPERM ? kChildPassed : 2;
  });

  EXPECT_TRUE(outcome.exited) << "killed by signal " << outcome.signal;
  EXPECT_EQ(outcome.exit_code, kChildPassed);
}

// TSYNC: a thread that existed before the filter was loaded is confined too.
TEST_F(SandboxFilterTest, ThreadsStartedBeforeLoadingAreConfined) {
  const pid_t child = fork();
  if (child == 0) {
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) _exit(3);
    int result = 1;
    std::thread earlier([&] {
      char byte = 0;
      if (read(pipe_fds[0], &byte, 1) != 1) return;
      result = (socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) == -1 && errno == EPERM)
                   ? kChildPassed
                   : 2;
    });
    Result<SeccompFilter> filter = SeccompFilter::Build(getpid());
    if (!filter || !filter->Load()) _exit(kChildLoadFailed);
    if (write(pipe_fds[1], "x", 1) != 1) _exit(4);
    earlier.join();
    _exit(result);
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), kChildPassed);
}

}  // namespace
}  // namespace vgpu::daemon
