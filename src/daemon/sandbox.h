// The daemon's sandbox: once set up, it confines itself with a seccomp-bpf filter (libseccomp)
// that allows only the system calls it needs to serve, and sets no_new_privs (issue 6, item 5).
//
//   ... listening socket bound, device thread and renderer started ...
//   if (Result<void> sandboxed = EnterSandbox(options.sandbox ? SandboxMode::kEnforce
//                                                             : SandboxMode::kOff);
//       !sandboxed) {
//     LogError("%s", sandboxed.error().message.c_str());
//     return 1;
//   }
//   return server.Run();   // accept(), recvmsg(), mmap() of guest memory, ... still work.
//
// What the filter does with a system call (SandboxPolicy() is the whole table):
// - the steady-state set is allowed: derived by running the daemon under `strace -f` through the
//   integration tests and the e2e tests (null and virglrenderer modes, a GL guest included) and
//   keeping what it called after its listening socket existed;
// - escape tools (execve, ptrace, mount, bpf, ...) kill the whole process with SIGSYS;
// - anything else fails with EPERM. Deliberately not a kill: a GL driver can have a need nobody
//   foresaw (Mesa's shader cache opens files, libepoxy probes for libraries), and a failed call
//   degrades rendering where a kill would take the user's VM display down with it. Where the
//   kernel and libseccomp allow it (API level 6: user notification together with TSYNC), the
//   refusal goes through a supervisor thread (SCMP_ACT_NOTIFY) that answers EPERM and logs the
//   call's name once, so a driver that degrades says why, and then stacks a filter that refuses
//   that call directly (a driver that retries a refused call pays no round trip each time);
//   otherwise the filter answers EPERM itself, silently. (A SIGSYS trap would be simpler, but a
//   thread that blocks all signals, as Mesa's worker threads do, would be killed by it.)
// The filter is installed on every thread at once (SECCOMP_FILTER_FLAG_TSYNC), so the renderer's
// threads, started before it, are confined too. Calls made through another architecture's ABI
// (int 0x80 on x86_64) kill the process.
//
// Sanitizer builds (ASan, TSan) do not install the filter: their runtimes need calls the daemon
// does not (LeakSanitizer ptraces the process at exit), and EnterSandbox logs why.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace vgpu::daemon {

enum class SandboxMode {
  kEnforce,
  // kEnforce, plus opening existing files (openat/open without O_CREAT, O_TRUNC, O_APPEND or
  // O_TMPFILE). For a GL driver that opens its device nodes at run time: NVIDIA's opens
  // /dev/nvidia0 and /dev/nvidiactl for each new context (seen on the GPU machine), and a filter
  // cannot look at paths. Files can then be read, and existing ones written, as the daemon's
  // user; nothing can be created, executed, mounted, traced or reached over a network.
  kEnforceAllowingOpens,
  kOff,
};

// Whether a renderer started in this process holds NVIDIA's device nodes open (/proc/self/fd):
// its driver will open more at run time, so the daemon needs kEnforceAllowingOpens.
bool RendererOpensDeviceNodesAtRunTime();

// Calls a renderer needs beyond the common table, added to the filter only in its mode.
struct RendererAllowances {
  // memfd_create, ftruncate and dup: gfxstream's Vulkan colour buffers are exportable memory,
  // which Mesa's lavapipe makes from a memfd it sizes and duplicates (seen under strace with a
  // real gfxstream). An anonymous file in memory: no path, nothing on the host's file systems.
  // ftruncate reaches every fd the daemon holds, guest memory included; shrinking that would
  // fault the VMM, which a compromised daemon could do by writing guest memory anyway.
  bool memory_files = false;
  // Processes the renderer started before the sandbox (virglrenderer's Venus render server): it
  // may signal and reap exactly these when it shuts down (kill and waitid on their pids).
  std::vector<pid_t> children;
};

// This process's children now (/proc/self/task/*/children), for RendererAllowances::children.
std::vector<pid_t> ChildProcesses();

// What the filter does with one system call.
enum class SyscallVerdict {
  kAllow,           // Allowed whatever its arguments.
  kAllowIf,         // Allowed when its arguments pass a check (sandbox.cc says which); else EPERM.
  kFailWithEnosys,  // clone3 only: glibc then falls back to clone, whose flags can be checked.
  kKillProcess,     // An escape tool: the whole process dies with SIGSYS.
  kFailWithEperm,   // Not in the table: fails with EPERM, the filter's default action.
};

struct SyscallRule {
  const char* name;  // libseccomp's name, so one table serves every architecture.
  SyscallVerdict verdict;
};

// Every listed system call; anything else gets kFailWithEperm.
std::span<const SyscallRule> SandboxPolicy();
SyscallVerdict VerdictFor(std::string_view name);

// The call's number on this architecture; nullopt when it has no such call (epoll_wait on
// aarch64) or libseccomp does not know the name. Entries without a number are left out of the
// filter.
std::optional<int> NativeSyscallNumber(const char* name);

// A filter built from SandboxPolicy(), not yet loaded.
class SeccompFilter {
 public:
  // `own_pid` is the only process tgkill may signal (abort() and thread signals need it).
  static Result<SeccompFilter> Build(pid_t own_pid, bool allow_opens = false,
                                     RendererAllowances renderer = {});

  // Sets no_new_privs and loads the filter into every thread of the process. Irreversible.
  Result<void> Load();
  // System calls allowed, unconditionally or after an argument check, on this architecture.
  size_t allowed_count() const { return allowed_count_; }
  // Whether refusals are answered (and logged) by a supervisor thread rather than the filter.
  bool reports_refusals() const { return reports_refusals_; }

 private:
  struct ContextDeleter {
    void operator()(void* context) const;
  };
  SeccompFilter(void* context, size_t allowed_count, bool reports_refusals)
      : context_(context), allowed_count_(allowed_count), reports_refusals_(reports_refusals) {}

  std::unique_ptr<void, ContextDeleter> context_;  // scmp_filter_ctx.
  size_t allowed_count_;
  bool reports_refusals_;
  // Calls allowed only with some arguments (clone, prctl, the opens of kEnforceAllowingOpens):
  // one refusal of them says nothing of the next, so they are never refused wholesale.
  std::vector<int> conditional_calls_;
};

// Refusals the supervisor thread has answered in this process so far. After the first refusal of
// a call the supervisor stacks a filter that refuses it directly, so later ones are not counted.
uint64_t RefusalsAnsweredBySupervisor();

// Test-only hook, inert unless set: after loading the filter, the daemon makes the named system
// call with all-zero arguments and logs what happened ("execve" must kill it with SIGSYS,
// "socket" must fail with EPERM). tests/integration/sandbox_test.cc uses it.
inline constexpr const char* kForbiddenSyscallTestVariable =
    "VHOST_DEVICE_GPU_TEST_FORBIDDEN_SYSCALL";

// kEnforce: builds and loads the filter and logs "sandbox: seccomp filter with N syscalls
// allowed" (in a sanitizer build: logs why it does not). kOff: logs a warning. Call after setup,
// right before serving. An error means the filter could not be loaded; the daemon should not
// serve unconfined when it was asked to confine itself.
Result<void> EnterSandbox(SandboxMode mode, RendererAllowances renderer = {});

}  // namespace vgpu::daemon
