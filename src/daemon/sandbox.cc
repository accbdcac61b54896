#include "daemon/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <bitset>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>

#include "base/log.h"
#include "base/sanitizer_build.h"

namespace vgpu::daemon {
namespace {

using enum SyscallVerdict;

// How the table was made: the daemon ran under `strace -f` through the integration tests (null
// and virglrenderer modes) and the e2e tests (pci, vga, reboot, two-heads, qemu-kill in null
// mode; pci, reboot and the GL guest in virglrenderer mode on Mesa llvmpipe), and every call made
// after listen() is here, plus the few that glibc makes on paths those runs did not take
// (a thread started later, a realloc that moves, abort()). Calls seen only during setup (socket,
// bind, listen, openat of libraries and the render node) are not.
constexpr SyscallRule kPolicy[] = {
    // The vhost-user socket (accept after a frontend leaves, messages with fds) and the GPU
    // socket to the VMM (send/recv, SO_SNDTIMEO per new socket).
    {"accept4", kAllow},
    {"recvmsg", kAllow},
    {"sendmsg", kAllow},
    {"recvfrom", kAllow},
    {"sendto", kAllow},
    {"setsockopt", kAllow},
    {"getsockopt", kAllow},
    {"shutdown", kAllow},
    // Large UPDATEs lend their pages to the GPU socket instead of copying them (display_channel.h,
    // "Lending"): from the host image into the channel's pipe, and on into the socket.
    {"vmsplice", kAllow},
    {"splice", kAllow},
    // Event loops: epoll, eventfds, the display channel's timerfd, fds handed over by the
    // frontend (F_DUPFD_CLOEXEC, F_GETFL/F_SETFL).
    {"epoll_wait", kAllow},
    {"epoll_pwait", kAllow},  // What glibc's epoll_wait is on aarch64.
    {"epoll_ctl", kAllow},
    {"eventfd2", kAllow},
    {"timerfd_create", kAllow},
    {"timerfd_settime", kAllow},
    {"timerfd_gettime", kAllow},
    {"poll", kAllow},
    {"ppoll", kAllow},
    {"read", kAllow},
    {"write", kAllow},
    {"readv", kAllow},
    {"writev", kAllow},
    {"close", kAllow},
    {"fcntl", kAllow},
    {"lseek", kAllow},
    {"fstat", kAllow},
    {"newfstatat", kAllow},  // glibc's fstat (AT_EMPTY_PATH): sizes of guest memfds.
    // Memory: guest memfds mapped and unmapped per SET_MEM_TABLE, the heap, and the renderer's
    // JIT (llvmpipe maps and protects executable code while the guest draws).
    {"mmap", kAllow},
    {"munmap", kAllow},
    {"mremap", kAllow},
    {"mprotect", kAllow},
    {"madvise", kAllow},
    {"brk", kAllow},
    // Threads: renderers may start threads at any time (llvmpipe, Mesa's queues).
    {"clone", kAllowIf},          // Threads only: CLONE_THREAD set, no namespace flags.
    {"clone3", kFailWithEnosys},  // Its flags sit in memory the filter cannot read.
    {"set_robust_list", kAllow},
    {"rseq", kAllow},
    {"futex", kAllow},
    {"sched_yield", kAllow},
    {"getpid", kAllow},
    {"gettid", kAllow},
    {"exit", kAllow},
    {"exit_group", kAllow},
    {"prctl", kAllowIf},  // PR_SET_NAME and PR_GET_NAME only (Mesa names its threads).
    // Signals: the mask (pthread_create blocks all signals around clone), abort() and signals
    // between our own threads.
    {"rt_sigprocmask", kAllow},
    {"rt_sigaction", kAllow},
    // Who am I: NVIDIA's GL driver asks before it looks for its shader cache (seen on the GPU
    // machine); answers nothing an attacker does not know.
    {"getuid", kAllow},
    {"geteuid", kAllow},
    {"getgid", kAllow},
    {"getegid", kAllow},  // glibc's first pthread_create installs its SIGRT_1 handler.
    {"rt_sigreturn", kAllow},
    {"restart_syscall", kAllow},
    {"tgkill", kAllowIf},  // Only this process's threads.
    // Time (normally the vDSO; these are its fallbacks) and short sleeps.
    {"clock_gettime", kAllow},
    {"clock_getres", kAllow},
    {"gettimeofday", kAllow},
    {"nanosleep", kAllow},
    {"clock_nanosleep", kAllow},
    // Renderers drive the GPU through DRM ioctls on the render node; their numbers are the
    // driver's, so they cannot be listed here.
    {"ioctl", kAllow},
    // RESOURCE_ASSIGN_UUID.
    {"getrandom", kAllow},
    // Memory totals: asked while llvmpipe compiles a shader (seen with the shader cache refused).
    {"sysinfo", kAllow},
    // Removing the socket file at exit.
    {"unlink", kAllow},
    // Advisory locks on files the process holds open: Mesa's single-file shader cache (opened
    // before the sandbox, main.cc) locks it around each write.
    {"flock", kAllow},
    // SECCOMP_SET_MODE_FILTER only: the supervisor stacks a filter that refuses a call it has
    // logged once without asking it again. A filter can only take rights away.
    {"seccomp", kAllowIf},

    // Escape tools: running code outside the process, reaching into other processes, the kernel,
    // mounts and namespaces, kernel-side programs and io_uring (whose operations seccomp does not
    // see). A compromised daemon has no innocent use for any of them.
    {"execve", kKillProcess},
    {"execveat", kKillProcess},
    {"ptrace", kKillProcess},
    {"process_vm_readv", kKillProcess},
    {"process_vm_writev", kKillProcess},
    {"pidfd_getfd", kKillProcess},
    {"kexec_load", kKillProcess},
    {"kexec_file_load", kKillProcess},
    {"reboot", kKillProcess},
    {"init_module", kKillProcess},
    {"finit_module", kKillProcess},
    {"delete_module", kKillProcess},
    {"mount", kKillProcess},
    {"umount2", kKillProcess},
    {"pivot_root", kKillProcess},
    {"chroot", kKillProcess},
    {"fsopen", kKillProcess},
    {"fsconfig", kKillProcess},
    {"fsmount", kKillProcess},
    {"fspick", kKillProcess},
    {"move_mount", kKillProcess},
    {"open_tree", kKillProcess},
    {"mount_setattr", kKillProcess},
    {"open_by_handle_at", kKillProcess},
    {"unshare", kKillProcess},
    {"setns", kKillProcess},
    {"bpf", kKillProcess},
    {"perf_event_open", kKillProcess},
    {"userfaultfd", kKillProcess},
    {"keyctl", kKillProcess},
    {"add_key", kKillProcess},
    {"request_key", kKillProcess},
    {"personality", kKillProcess},
    {"io_uring_setup", kKillProcess},
    {"io_uring_enter", kKillProcess},
    {"io_uring_register", kKillProcess},
    {"iopl", kKillProcess},
    {"ioperm", kKillProcess},
    {"swapon", kKillProcess},
    {"swapoff", kKillProcess},
    {"acct", kKillProcess},
    {"uselib", kKillProcess},
};

// clone flags that must be clear: a thread never creates namespaces.
constexpr uint64_t kNamespaceCloneFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                          CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                          CLONE_NEWNET;

// libseccomp returns -errno.
tl::unexpected<Error> LibseccompError(const char* what, int result) {
  return MakeSystemError(std::string("sandbox: ") + what, -result);
}

// The argument checks of the kAllowIf entries, each added as its own rule (any match allows).
Result<void> AddConditionalRule(scmp_filter_ctx context, const char* name, int number,
                                pid_t own_pid) {
  std::string_view syscall = name;
  auto add = [&](scmp_arg_cmp comparison) -> Result<void> {
    if (int result = seccomp_rule_add_array(context, SCMP_ACT_ALLOW, number, 1, &comparison);
        result != 0) {
      return LibseccompError(name, result);
    }
    return {};
  };
  if (syscall == "clone") {
    // Argument 0 is the flags on x86_64 and aarch64 alike.
    return add({0, SCMP_CMP_MASKED_EQ, CLONE_THREAD | kNamespaceCloneFlags, CLONE_THREAD});
  }
  if (syscall == "prctl") {
    if (Result<void> added = add({0, SCMP_CMP_EQ, PR_SET_NAME, 0}); !added) return added;
    return add({0, SCMP_CMP_EQ, PR_GET_NAME, 0});
  }
  if (syscall == "tgkill") {
    return add({0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(own_pid), 0});
  }
  if (syscall == "seccomp") {
    return add({0, SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER, 0});
  }
  return MakeError(ErrorKind::kInternal, std::string("sandbox: no argument check for ") + name);
}

// The test hook (kForbiddenSyscallTestVariable): one call with all-zero arguments, its outcome
// logged. A kill never returns here.
void RunForbiddenSyscallProbe(const char* name) {
  std::optional<int> number = NativeSyscallNumber(name);
  if (!number) {
    LogError("sandbox: test probe: no system call named '%s'", name);
    return;
  }
  errno = 0;
  long result = syscall(*number, 0, 0, 0, 0, 0, 0);
  if (result == -1) {
    LogWarning("sandbox: test probe: %s() failed: %s", name, std::strerror(errno));
  } else {
    LogWarning("sandbox: test probe: %s() returned %ld", name, result);
  }
}

}  // namespace

std::span<const SyscallRule> SandboxPolicy() { return kPolicy; }

SyscallVerdict VerdictFor(std::string_view name) {
  for (const SyscallRule& rule : kPolicy) {
    if (name == rule.name) return rule.verdict;
  }
  return kFailWithEperm;
}

std::optional<int> NativeSyscallNumber(const char* name) {
  int number = seccomp_syscall_resolve_name(name);
  // Negative: unknown to libseccomp (__NR_SCMP_ERROR) or a pseudo number for a call this
  // architecture does not have.
  if (number < 0) return std::nullopt;
  return number;
}

namespace {

// The supervisor: every call the filter does not allow (and does not kill for) waits until the
// supervisor's thread answers it with EPERM. It runs for the life of the process and must never
// wait on a lock another thread could hold while it waits for an answer: fork() holds every
// malloc lock around its clone, tzset() holds its lock around an openat. So once the filter is
// in, the thread allocates nothing and takes no lock: its state and the call names are prepared
// before, its log line is formatted on the stack and written with one write().
struct RefusalSupervisor {
  static constexpr int kPending = -2;
  static constexpr int kNumbers = 512;
  std::atomic<int> listener{kPending};  // The notification fd, or -1 if loading failed.
  seccomp_notif* request = nullptr;
  seccomp_notif_resp* response = nullptr;
  std::array<std::array<char, 32>, kNumbers> names{};
  std::array<bool, kNumbers> reported{};
  // Calls allowed with some arguments only (SeccompFilter::conditional_calls_): never silenced.
  std::array<bool, kNumbers> conditional{};
  // Refusals answered here (tests read it: a silenced call is not asked again).
  std::atomic<uint64_t> answered{0};

  void NameTheCalls() {
    for (int number = 0; number < kNumbers; ++number) {
      char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number);
      std::snprintf(names[number].data(), names[number].size(), "%s",
                    name != nullptr ? name : "an unknown call");
      std::free(name);
    }
  }

  // Where a call names a file, which argument holds the path (-1: none); and for the opens, which
  // holds the flags. A refusal's log line then says what the driver wanted.
  std::array<int8_t, kNumbers> path_argument{};
  std::array<int8_t, kNumbers> flags_argument{};
  // /proc/self/mem, opened before the filter: the supervisor reads a refused call's path through
  // it, so that a bad pointer from the caller gives EIO rather than a fault in this thread.
  int memory_fd = -1;

  void MarkPathArguments() {
    path_argument.fill(-1);
    flags_argument.fill(-1);
    struct PathCall {
      const char* name;
      int8_t path;
      int8_t flags;
    };
    static constexpr PathCall kPathCalls[] = {
        {"open", 0, 1},     {"openat", 1, 2},     {"openat2", 1, -1},    {"creat", 0, -1},
        {"stat", 0, -1},    {"lstat", 0, -1},     {"newfstatat", 1, -1}, {"statx", 1, -1},
        {"access", 0, -1},  {"faccessat", 1, -1}, {"faccessat2", 1, -1}, {"mkdir", 0, -1},
        {"mkdirat", 1, -1}, {"readlink", 0, -1},  {"readlinkat", 1, -1}, {"unlinkat", 1, -1},
        {"rename", 0, -1},  {"renameat", 1, -1},  {"renameat2", 1, -1},  {"rmdir", 0, -1},
        {"statfs", 0, -1},  {"chdir", 0, -1},     {"truncate", 0, -1},   {"symlink", 1, -1},
        {"link", 1, -1},    {"chmod", 0, -1},     {"chown", 0, -1},      {"utimensat", 1, -1},
    };
    for (const PathCall& call : kPathCalls) {
      const int number = seccomp_syscall_resolve_name(call.name);
      if (number < 0 || number >= kNumbers) continue;
      path_argument[number] = call.path;
      flags_argument[number] = call.flags;
    }
  }

  // ` on "PATH" (flags 0x...)` for a call that names a file, into `out`; empty otherwise.
  // Returns whether the path is a thread's name (NamesAThread).
  bool DescribeTarget(int number, const seccomp_data& data, char* out, size_t size) const {
    out[0] = '\0';
    if (memory_fd < 0 || path_argument[number] < 0) return false;
    char path[160] = {};
    ssize_t length = -1;
    if (lseek(memory_fd, static_cast<off_t>(data.args[path_argument[number]]), SEEK_SET) != -1) {
      length = read(memory_fd, path, sizeof(path) - 1);
    }
    if (length <= 0) return false;
    path[length] = '\0';
    for (ssize_t i = 0; i < length && path[i] != '\0'; ++i) {
      if (path[i] < 0x20 || path[i] >= 0x7f || path[i] == '"') path[i] = '?';
    }
    if (flags_argument[number] >= 0) {
      std::snprintf(out, size, " on \"%s\" (flags 0x%llx)", path,
                    static_cast<unsigned long long>(data.args[flags_argument[number]]));
    } else {
      std::snprintf(out, size, " on \"%s\"", path);
    }
    return NamesAThread(path);
  }

  void LogOnce(int number, uint32_t thread, const seccomp_data& data) {
    if (number < 0 || number >= kNumbers || reported[number]) return;
    reported[number] = true;
    char target[200];
    const bool names_a_thread = DescribeTarget(number, data, target, sizeof(target));
    char message[320];
    const int body = std::snprintf(
        message, sizeof(message),
        "sandbox: refused %s (system call %d)%s from thread %u with EPERM; later refusals of it "
        "are not logged",
        names[number].data(), number, target, thread);
    if (body <= 0) return;
    LogLine(names_a_thread ? LogLevel::kDebug : LogLevel::kWarning, message);
  }

  // gfxstream names the render threads it starts by writing /proc/self/task/TID/comm (glibc's
  // pthread_setname_np for another thread). Refused, the thread keeps its inherited name and
  // works as before: nothing to warn about (docs/SECURITY.md, "gfxstream").
  static bool NamesAThread(std::string_view path) {
    return path.starts_with("/proc/self/task/") && path.ends_with("/comm");
  }

  void Run() {
    // Started before the filter is loaded (a refusal with no one to answer it would wait for
    // ever), it learns the listener once the filter is in.
    listener.wait(kPending);
    const int fd = listener.load();
    if (fd < 0) return;  // Loading failed; nothing to supervise.
    for (;;) {
      // The kernel refuses a buffer that is not zeroed (EINVAL), and libseccomp 2.5 does not
      // clear it.
      std::memset(request, 0, sizeof(*request));
      if (int result = seccomp_notify_receive(fd, request); result != 0) {
        if (result == -EINTR || result == -ENOENT) continue;  // The caller died meanwhile.
        // With the last listener closed, refusals fail with ENOSYS: still refused, and nobody
        // waits for an answer that cannot come.
        close(fd);
        return;
      }
      response->id = request->id;
      response->val = 0;
      response->error = -EPERM;
      response->flags = 0;
      const int number = static_cast<int>(request->data.nr);
      const bool first = number >= 0 && number < kNumbers && !reported[number];
      // A first refusal: the filter takes over refusing this call before the caller is released,
      // so that the caller's next try is already the filter's. Not for a call allowed with other
      // arguments: a stacked filter would refuse those too (an NVIDIA driver refused one O_CREAT
      // open could then open none of its device nodes).
      if (first && !conditional[number]) Silence(number);
      answered.fetch_add(1, std::memory_order_relaxed);
      // The path is read while the caller still waits (its memory is as it was at the call).
      if (first) LogOnce(number, request->pid, request->data);
      // Then answer: the caller is blocked until then.
      (void)seccomp_notify_respond(fd, response);
    }
  }

  // From now on the filter itself refuses `number` with EPERM, without asking here: a driver
  // that retries a refused call (libepoxy probes for libGLX at every draw call of some GL
  // paths) pays a filter's few instructions instead of a round trip through this thread. A
  // filter stacked on the first: the strictest answer of all filters wins, and EPERM is stricter
  // than asking the supervisor (SECCOMP_RET_ERRNO over SECCOMP_RET_USER_NOTIF). If it cannot be
  // stacked, refusals keep coming here, answered the same.
  static void Silence(int number) {
#if defined(__x86_64__)
    constexpr uint32_t kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    constexpr uint32_t kNativeArch = AUDIT_ARCH_AARCH64;
#else
    return;
#endif
    sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        // Another architecture's calls are the first filter's (it kills them).
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kNativeArch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(number), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog fprog{static_cast<unsigned short>(sizeof(program) / sizeof(program[0])), program};
    (void)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog);
  }
};

std::atomic<RefusalSupervisor*> the_supervisor{nullptr};

// Opening an existing file, for kEnforceAllowingOpens: any flags but the ones that create,
// truncate or append. O_TMPFILE is O_DIRECTORY plus a bit of its own: only that bit is refused,
// so that a directory still opens (NVIDIA's EGL lists /dev/dri; refused, it drew nothing).
constexpr scmp_datum_t kCreatingFlags = O_CREAT | O_TRUNC | O_APPEND | (__O_TMPFILE & ~O_DIRECTORY);

// With opening existing files allowed, looking at them tells nothing more: NVIDIA's driver looks
// for its shader cache and lists directories before it opens anything.
constexpr const char* kFileLookups[] = {"stat",     "lstat",      "statx",
                                        "access",   "faccessat",  "faccessat2",
                                        "readlink", "readlinkat", "getdents64"};

Result<void> AddExistingFileOpenRules(scmp_filter_ctx context, size_t& allowed_count,
                                      std::vector<int>& conditional_calls) {
  struct OpenCall {
    const char* name;
    unsigned flags_argument;
  };
  for (const OpenCall& call : {OpenCall{"openat", 2}, OpenCall{"open", 1}}) {
    std::optional<int> number = NativeSyscallNumber(call.name);
    if (!number) continue;  // No open() on aarch64.
    const scmp_arg_cmp comparison{call.flags_argument, SCMP_CMP_MASKED_EQ, kCreatingFlags, 0};
    if (int result = seccomp_rule_add_array(context, SCMP_ACT_ALLOW, *number, 1, &comparison);
        result != 0) {
      return LibseccompError(call.name, result);
    }
    ++allowed_count;
    conditional_calls.push_back(*number);
  }
  for (const char* name : kFileLookups) {
    std::optional<int> number = NativeSyscallNumber(name);
    if (!number) continue;  // stat, lstat, access and readlink are x86_64's only.
    if (int result = seccomp_rule_add(context, SCMP_ACT_ALLOW, *number, 0); result != 0) {
      return LibseccompError(name, result);
    }
    ++allowed_count;
  }
  return {};
}

}  // namespace

void SeccompFilter::ContextDeleter::operator()(void* context) const { seccomp_release(context); }

bool RendererOpensDeviceNodesAtRunTime() {
  DIR* directory = opendir("/proc/self/fd");
  if (directory == nullptr) return false;
  bool found = false;
  while (dirent* entry = readdir(directory)) {
    const std::string link = std::string("/proc/self/fd/") + entry->d_name;
    char target[256];
    const ssize_t length = readlink(link.c_str(), target, sizeof(target) - 1);
    if (length <= 0) continue;
    target[length] = '\0';
    if (std::strncmp(target, "/dev/nvidia", 11) == 0) found = true;
  }
  closedir(directory);
  return found;
}

Result<SeccompFilter> SeccompFilter::Build(pid_t own_pid, bool allow_opens,
                                           RendererAllowances renderer) {
  // SCMP_ACT_KILL_PROCESS needs API level 3 (Linux 4.14); TSYNC needs level 2.
  if (seccomp_api_get() < 3) {
    return MakeError(ErrorKind::kUnsupported,
                     "sandbox: the kernel or libseccomp lacks SECCOMP_RET_KILL_PROCESS");
  }
  // Level 6: user notification works together with TSYNC (SECCOMP_FILTER_FLAG_TSYNC_ESRCH).
  const bool reports_refusals = seccomp_api_get() >= 6;
  scmp_filter_ctx raw_context =
      seccomp_init(reports_refusals ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(EPERM));
  if (raw_context == nullptr) return MakeError(ErrorKind::kInternal, "sandbox: seccomp_init");
  SeccompFilter filter(raw_context, 0, reports_refusals);
  if (int result = seccomp_attr_set(raw_context, SCMP_FLTATR_CTL_TSYNC, 1); result != 0) {
    return LibseccompError("TSYNC attribute", result);
  }
  // Every system call runs the filter. By default libseccomp tests the rules one after another
  // (about 100 here); a binary tree over the syscall numbers takes about 7 tests. Level 2 exists
  // since libseccomp 2.5.
  if (int result = seccomp_attr_set(raw_context, SCMP_FLTATR_CTL_OPTIMIZE, 2); result != 0) {
    LogWarning("sandbox: libseccomp cannot build a binary-tree filter (%s); using a linear one",
               std::strerror(-result));
  }
  // A call through another architecture's ABI (int 0x80 on x86_64) would dodge every rule.
  if (int result = seccomp_attr_set(raw_context, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
      result != 0) {
    return LibseccompError("foreign-architecture action", result);
  }
  for (const SyscallRule& rule : kPolicy) {
    std::optional<int> number = NativeSyscallNumber(rule.name);
    if (!number) continue;
    int result = 0;
    switch (rule.verdict) {
      case kAllow:
        result = seccomp_rule_add(raw_context, SCMP_ACT_ALLOW, *number, 0);
        ++filter.allowed_count_;
        break;
      case kAllowIf:
        if (Result<void> added = AddConditionalRule(raw_context, rule.name, *number, own_pid);
            !added) {
          return ErrorOf(added);
        }
        ++filter.allowed_count_;
        filter.conditional_calls_.push_back(*number);
        break;
      case kFailWithEnosys:
        result = seccomp_rule_add(raw_context, SCMP_ACT_ERRNO(ENOSYS), *number, 0);
        break;
      case kKillProcess:
        result = seccomp_rule_add(raw_context, SCMP_ACT_KILL_PROCESS, *number, 0);
        break;
      case kFailWithEperm:
        break;  // The default action.
    }
    if (result != 0) return LibseccompError(rule.name, result);
  }
  if (allow_opens) {
    if (Result<void> added =
            AddExistingFileOpenRules(raw_context, filter.allowed_count_, filter.conditional_calls_);
        !added) {
      return ErrorOf(added);
    }
  }
  for (pid_t child : renderer.children) {
    for (const char* name : {"kill", "waitid"}) {
      std::optional<int> number = NativeSyscallNumber(name);
      if (!number) continue;
      // kill(child, ...) and waitid(P_PID, child, ...): the pid is kill's first argument and
      // waitid's second.
      const scmp_arg_cmp pid_check{std::string_view(name) == "kill" ? 0u : 1u, SCMP_CMP_EQ,
                                   static_cast<scmp_datum_t>(child), 0};
      if (int result = seccomp_rule_add_array(raw_context, SCMP_ACT_ALLOW, *number, 1, &pid_check);
          result != 0) {
        return LibseccompError(name, result);
      }
      ++filter.allowed_count_;
    }
  }
  if (renderer.memory_files) {
    for (const char* name : {"memfd_create", "ftruncate", "dup"}) {
      std::optional<int> number = NativeSyscallNumber(name);
      if (!number) continue;
      if (int result = seccomp_rule_add(raw_context, SCMP_ACT_ALLOW, *number, 0); result != 0) {
        return LibseccompError(name, result);
      }
      ++filter.allowed_count_;
    }
  }
  return filter;
}

Result<void> SeccompFilter::Load() {
  // Also what lets an unprivileged process load a filter at all; set explicitly (libseccomp
  // would too) because it is half of the sandbox: no set-uid gain through anything later.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return MakeSystemError("sandbox: PR_SET_NO_NEW_PRIVS");
  }
  // The supervisor's buffers are sized with the seccomp() system call, which the filter refuses,
  // and its thread must exist before the first refusal: both come first. It lives as long as the
  // process (deliberately never freed once the filter is in).
  RefusalSupervisor* supervisor = nullptr;
  if (reports_refusals_) {
    supervisor = new RefusalSupervisor;
    the_supervisor.store(supervisor);
    if (int result = seccomp_notify_alloc(&supervisor->request, &supervisor->response);
        result != 0) {
      delete supervisor;
      return LibseccompError("seccomp_notify_alloc", result);
    }
    supervisor->NameTheCalls();
    supervisor->MarkPathArguments();
    for (int number : conditional_calls_) {
      if (number >= 0 && number < RefusalSupervisor::kNumbers)
        supervisor->conditional[number] = true;
    }
    supervisor->memory_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    std::thread([supervisor] { supervisor->Run(); }).detach();
  }
  auto abandon_supervisor = [supervisor] {
    if (supervisor == nullptr) return;
    if (supervisor->memory_fd >= 0) close(supervisor->memory_fd);
    supervisor->memory_fd = -1;
    // Its thread returns at once; the memory stays (it may still be reading it).
    supervisor->listener.store(-1);
    supervisor->listener.notify_one();
  };
  // With TSYNC a positive result names a thread that could not be synchronised.
  if (int result = seccomp_load(context_.get()); result != 0) {
    abandon_supervisor();
    if (result > 0) {
      return MakeError(ErrorKind::kInternal,
                       "sandbox: thread " + std::to_string(result) + " could not take the filter");
    }
    return LibseccompError("seccomp_load", result);
  }
  if (supervisor != nullptr) {
    // The supervisor takes the context, and with it the listener fd, for the life of the
    // process: a listener closed behind its back would leave refused calls waiting for ever.
    const int listener = seccomp_notify_fd(context_.get());
    if (listener < 0) {
      abandon_supervisor();
      return LibseccompError("seccomp_notify_fd", listener);
    }
    (void)context_.release();
    supervisor->listener.store(listener);
    supervisor->listener.notify_one();
  }
  return {};
}

uint64_t RefusalsAnsweredBySupervisor() {
  RefusalSupervisor* supervisor = the_supervisor.load();
  return supervisor != nullptr ? supervisor->answered.load(std::memory_order_relaxed) : 0;
}

Result<void> EnterSandbox(SandboxMode mode, RendererAllowances renderer) {
  if (mode == SandboxMode::kOff) {
    LogWarning("sandbox: off (--no-sandbox): no seccomp filter, every system call is allowed");
    return {};
  }
  if (const char* sanitizer = SanitizerInThisBuild()) {
    LogInfo("sandbox: not installed in this build: %s needs system calls the filter refuses",
            sanitizer);
    return {};
  }
  const bool allow_opens = mode == SandboxMode::kEnforceAllowingOpens;
  if (allow_opens) {
    LogWarning(
        "sandbox: the renderer opens files at run time (NVIDIA's driver its device nodes, "
        "in-process Venus the Vulkan drivers), so opening existing files stays allowed; "
        "creating files, exec, sockets, mounts and tracing stay refused");
  }
  Result<SeccompFilter> filter = SeccompFilter::Build(getpid(), allow_opens, renderer);
  if (!filter) return ErrorOf(filter);
  const char* probe = std::getenv(kForbiddenSyscallTestVariable);
  // A probe that is meant to kill must not leave a core dump behind (core_pattern may be a pipe,
  // which ignores RLIMIT_CORE 0).
  if (probe != nullptr) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (Result<void> loaded = filter->Load(); !loaded) return loaded;
  LogInfo("sandbox: seccomp filter with %zu syscalls allowed; others fail with EPERM%s",
          filter->allowed_count(),
          filter->reports_refusals() ? " and are logged once each"
                                     : " (not logged: needs "
                                       "libseccomp API level 6)");
  if (probe != nullptr) RunForbiddenSyscallProbe(probe);
  return {};
}

std::vector<pid_t> ChildProcesses() {
  std::vector<pid_t> children;
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return children;
  while (dirent* task = readdir(tasks)) {
    if (task->d_name[0] == '.') continue;
    std::FILE* list =
        std::fopen(("/proc/self/task/" + std::string(task->d_name) + "/children").c_str(), "re");
    if (list == nullptr) continue;
    long pid = 0;
    while (std::fscanf(list, "%ld", &pid) == 1) children.push_back(static_cast<pid_t>(pid));
    std::fclose(list);
  }
  closedir(tasks);
  return children;
}

}  // namespace vgpu::daemon
