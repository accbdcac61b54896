// The gfxstream stand-in library (tests/support/gfxstream_standin) as these unit tests use it:
// its path and its test hooks. Everything here runs against the stand-in, not a real gfxstream.
#pragma once

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "renderer/gfxstream/stream_renderer_api.h"

namespace vgpu::renderer::gfxstream::test {

inline const char* StandinPath() { return VGPU_GFXSTREAM_STANDIN_PATH; }
inline const char* StandinWithoutCreateFencePath() {
  return VGPU_GFXSTREAM_STANDIN_WITHOUT_CREATE_FENCE_PATH;
}

// The stand-in's gfxstream_standin_* functions, from the same (already loaded) library.
class StandinHooks {
 public:
  StandinHooks() : handle_(dlopen(StandinPath(), RTLD_NOW | RTLD_LOCAL)) {
    init_param_ = Find<uint64_t (*)(uint64_t)>("gfxstream_standin_init_param");
    calls_ = Find<size_t (*)(char*, size_t)>("gfxstream_standin_calls");
    last_host_read_ = Find<void (*)(stream_renderer_box*, uint64_t*, uint64_t*, int*)>(
        "gfxstream_standin_last_host_read");
    fences_signalled_ = Find<size_t (*)(int)>("gfxstream_standin_fences_signalled");
    hold_fences_ = Find<void (*)(int)>("gfxstream_standin_hold_fences");
  }
  ~StandinHooks() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  StandinHooks(const StandinHooks&) = delete;
  StandinHooks& operator=(const StandinHooks&) = delete;

  bool loaded() const { return hold_fences_ != nullptr; }
  uint64_t InitParam(uint64_t key) const { return init_param_(key); }
  std::string Calls() const {
    std::string text(calls_(nullptr, 0), '\0');
    calls_(text.data(), text.size());
    text.resize(text.size() - 1);
    return text;
  }
  struct HostRead {
    stream_renderer_box box{};
    uint64_t bytes_copied = 0;
    uint64_t iov_bytes = 0;
    int iov_count = 0;
  };
  HostRead LastHostRead() const {
    HostRead read;
    last_host_read_(&read.box, &read.bytes_copied, &read.iov_bytes, &read.iov_count);
    return read;
  }
  size_t SynchronousFences() const { return fences_signalled_(1); }
  size_t WorkerFences() const { return fences_signalled_(0); }
  void HoldFences(bool hold) const { hold_fences_(hold ? 1 : 0); }

 private:
  template <class Function>
  Function Find(const char* name) {
    return handle_ == nullptr ? nullptr : reinterpret_cast<Function>(dlsym(handle_, name));
  }

  void* handle_;
  uint64_t (*init_param_)(uint64_t) = nullptr;
  size_t (*calls_)(char*, size_t) = nullptr;
  void (*last_host_read_)(stream_renderer_box*, uint64_t*, uint64_t*, int*) = nullptr;
  size_t (*fences_signalled_)(int) = nullptr;
  void (*hold_fences_)(int) = nullptr;
};

// The stand-in's knobs off, and the library path variable unset, for a test's start.
inline void ClearStandinEnvironment() {
  unsetenv("GFXSTREAM_STANDIN_CAPSETS");
  unsetenv("GFXSTREAM_STANDIN_LOG");
  unsetenv("GFXSTREAM_STANDIN_FENCE_GATE");
  unsetenv("GFXSTREAM_STANDIN_FAIL_INIT");
  unsetenv("VHOST_DEVICE_GPU_GFXSTREAM_LIBRARY");
}

}  // namespace vgpu::renderer::gfxstream::test
