// Which sanitizer, if any, this build has. Code that depends on the real allocator or on
// ptrace-free exits asks here: ASan's allocator keeps freed memory in quarantine (resident memory
// grows by design, mallinfo2 says nothing), and LeakSanitizer ptraces the process at exit, which a
// seccomp filter would refuse.
#pragma once

namespace vgpu {

// The sanitizer's name ("AddressSanitizer", "ThreadSanitizer", "MemorySanitizer"), or nullptr.
// GCC defines __SANITIZE_*__; clang answers __has_feature.
constexpr const char* SanitizerInThisBuild() {
#if defined(__SANITIZE_ADDRESS__)
  return "AddressSanitizer";
#elif defined(__SANITIZE_THREAD__)
  return "ThreadSanitizer";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return "AddressSanitizer";
#elif __has_feature(thread_sanitizer)
  return "ThreadSanitizer";
#elif __has_feature(memory_sanitizer)
  return "MemorySanitizer";
#else
  return nullptr;
#endif
#else
  return nullptr;
#endif
}

inline constexpr bool kSanitizerBuild = SanitizerInThisBuild() != nullptr;

}  // namespace vgpu
