// The daemon's command line: the seed's options (rust-vmm vhost-device-gpu) plus the QEMU
// back-end program conventions (vhost-user.rst "Backend program conventions").
//
//   ParseOutcome outcome = ParseCommandLine(argc, argv, CompiledFeatures(),
//                                           getenv("VHOST_DEVICE_GPU_LOG"));
//   if (!outcome.options) {
//     fputs(outcome.standard_output.c_str(), stdout);
//     fputs(outcome.standard_error.c_str(), stderr);
//     return outcome.exit_code;
//   }
//   Result<UniqueFd> device = OpenGpuDevice(*outcome.options);   // exit 1 on error
//
// Exit codes follow the seed: usage errors (what clap rejects) exit 2, configuration errors
// (what the seed's GpuConfigBuilder rejects) exit 1. Every error is one line naming the option.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace vgpu::daemon {

enum class GpuMode { kVirglRenderer, kGfxstream, kNull };

// Values are the virtio capset ids (virtio spec 5.7.6.8, VIRTIO_GPU_CAPSET_*).
// The capset ids of §5.7.6.8 (VIRTIO_GPU_CAPSET_*). kVenus is beyond the seed's list.
inline constexpr uint64_t kDefaultHostVisibleMemory = 4ull << 30;

enum class Capset : uint32_t {
  kVirgl = 1,
  kVirgl2 = 2,
  kGfxstreamVulkan = 3,
  kVenus = 4,
  kGfxstreamGles = 8,
};

// Which optional backends this binary was compiled with (VGPU_HAVE_VIRGL, VGPU_HAVE_GFXSTREAM).
// The null backend is always there.
struct BuildFeatures {
  bool virgl;
  bool gfxstream;
};

BuildFeatures CompiledFeatures();

// The environment variable that sets the default log level; --log-level wins over it.
inline constexpr const char* kLogLevelEnvironmentVariable = "VHOST_DEVICE_GPU_LOG";
// How long the renderer may take to start, in milliseconds (default 20000).
inline constexpr const char* kStartTimeoutEnvironmentVariable = "VHOST_DEVICE_GPU_START_TIMEOUT_MS";
// "transfer": virgl display read-backs without the pixel-pack buffer (for comparison).
inline constexpr const char* kVirglReadbackEnvironmentVariable = "VHOST_DEVICE_GPU_VIRGL_READBACK";
// Read-backs of a 3D scanout per second at most (default 60; 0: every flush).
inline constexpr const char* kReadbackRateEnvironmentVariable = "VHOST_DEVICE_GPU_READBACK_FPS";
// "copy": large UPDATEs are copied into the display socket instead of lent (gpu/display_channel.h,
// "Lending"); for comparison and for a kernel whose splice misbehaves.
inline constexpr const char* kDisplayPagesEnvironmentVariable = "VHOST_DEVICE_GPU_DISPLAY_PAGES";

struct Options {
  // -s/--socket-path: the daemon listens here. Exactly one of socket_path and inherited_fd is set
  // unless print_capabilities.
  std::optional<std::string> socket_path;
  // --fd: an inherited socket (listening or connected). Checking what it is is left to the caller.
  std::optional<int> inherited_fd;
  // -g/--gpu-mode (or --virgl). Required with --socket-path (the seed's CLI); with --fd and
  // neither, null mode: QEMU's backend convention, where no --virgl means 2D.
  GpuMode gpu_mode = GpuMode::kNull;
  // From -c/--capset in the user's order without duplicates, or the mode's defaults.
  std::vector<Capset> capsets;
  bool use_egl = true;
  bool use_glx = false;
  bool use_gles = true;
  bool use_surfaceless = true;
  bool headless = false;
  // --gpu-device (or --render-node): only with virglrenderer.
  std::optional<std::string> gpu_device_path;
  // --render-node in a mode that renders without one (libvirt passes it whenever the host has a
  // render node, 2D included): accepted, not opened, mentioned in a debug line.
  std::optional<std::string> unused_render_node;
  // --max-hostmem: cap on host memory used for guest resources, in bytes.
  uint64_t max_host_memory = 256ull << 20;
  // --host-visible-memory: the host-visible shared memory region offered to the VMM for mapped
  // blobs (where the renderer makes host blobs; a power of two from 1M to 64G); 0: none.
  uint64_t host_visible_memory = kDefaultHostVisibleMemory;
  vgpu::LogLevel log_level = vgpu::LogLevel::kInfo;
  bool print_capabilities = false;
  // --no-sandbox (an extension, like --fd): skip the seccomp filter (daemon/sandbox.h), for
  // debugging an unforeseen system call need.
  bool sandbox = true;
};

// What main() should do after parsing.
struct ParseOutcome {
  std::optional<Options> options;  // Set when the daemon should run.
  int exit_code = 0;               // Otherwise: exit with this code
  std::string standard_output;     // ...after printing this to stdout (help, version, capabilities)
  std::string standard_error;      // ...and this to stderr (the error).
};

inline constexpr int kExitUsageError = 2;          // As clap-based tools do.
inline constexpr int kExitConfigurationError = 1;  // As the seed does for GpuConfigBuilder errors.

// Never throws. `environment_log_level` is the value of VHOST_DEVICE_GPU_LOG or null; an invalid
// value there is ignored (the default, info, stays).
ParseOutcome ParseCommandLine(int argc, const char* const* argv, const BuildFeatures& features,
                              const char* environment_log_level);

// Opens --gpu-device with O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, as the seed does at
// configuration time. Returns an empty UniqueFd when no device was given. The error message names
// the option and the path.
Result<UniqueFd> OpenGpuDevice(const Options& options);

// The --print-capabilities JSON (QEMU docs/interop/vhost-user.json,
// VHostUserBackendCapabilitiesGPU): "virgl" when the virglrenderer backend is compiled in, since
// it promises that --virgl works; "render-node" only then and when the host has a render node.
// libvirt reads "render-node" as "give me one": it then looks for a render node itself and refuses
// to start the domain on a host without one, where this daemon renders on the CPU (llvmpipe).
std::string CapabilitiesJson(const BuildFeatures& features, bool host_has_render_node);
std::string CapabilitiesJson();

// Whether /dev/dri holds a DRM render node (renderD*).
bool HostHasRenderNode();

// Command-line spellings: "virglrenderer", "virgl2", ...
const char* GpuModeName(GpuMode mode);
const char* CapsetName(Capset capset);

// Parses a --max-hostmem value: decimal digits with an optional K, M or G suffix (powers of 1024,
// either case). Rejects zero, signs, spaces and anything that does not fit in 64 bits.
std::optional<uint64_t> ParseByteSize(std::string_view text);

}  // namespace vgpu::daemon
