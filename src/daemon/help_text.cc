#include "daemon/help_text.h"

#include <algorithm>
#include <string_view>

#ifndef VGPU_VERSION
#define VGPU_VERSION "0.1.0"
#endif

namespace vgpu::daemon {
namespace {

constexpr const char* kAbout = "A virtio-gpu device using the vhost-user protocol.\n";

constexpr const char* kUsage =
    "Usage: vhost-device-gpu [OPTIONS] --socket-path <SOCKET> --gpu-mode <GPU_MODE>\n"
    "       vhost-device-gpu [OPTIONS] --fd <FD> [--gpu-mode <GPU_MODE> | --virgl]\n"
    "       vhost-device-gpu --print-capabilities\n";

// "virglrenderer, gfxstream, null", or fewer when a backend is not compiled in.
std::string BuiltModes(const BuildFeatures& features) {
  std::string modes;
  if (features.virgl) modes += "virglrenderer, ";
  if (features.gfxstream) modes += "gfxstream, ";
  return modes + "null";
}

}  // namespace

std::string ShortHelpText(const BuildFeatures& features) {
  struct Line {
    const char* option;
    const char* summary;
  };
  static constexpr Line kLines[] = {
      {"-s, --socket-path <SOCKET>", "vhost-user Unix domain socket"},
      {"    --fd <FD>", "Inherited vhost-user socket (instead of --socket-path)"},
      {"-g, --gpu-mode <GPU_MODE>",
       "The mode specifies which backend implementation to use [possible values: "
       "virglrenderer, gfxstream, null]"},
      {"-c, --capset <CAPSET>",
       "Comma separated list of enabled capsets [possible values: virgl, virgl2, venus, "
       "gfxstream-vulkan, gfxstream-gles]"},
      {"    --use-egl <USE_EGL>",
       "Enable backend to use EGL [default: true] [possible values: true, false]"},
      {"    --use-glx <USE_GLX>",
       "Enable backend to use GLX [default: false] [possible values: true, false]"},
      {"    --use-gles <USE_GLES>",
       "Enable backend to use GLES [default: true] [possible values: true, false]"},
      {"    --use-surfaceless <USE_SURFACELESS>",
       "Enable surfaceless backend option [default: true] [possible values: true, false]"},
      {"    --headless", "Enable headless mode (no display output)"},
      {"    --gpu-device <PATH>", "GPU device path (e.g., /dev/dri/renderD128)"},
      {"    --render-node <PATH>", "Same as --gpu-device"},
      {"    --virgl", "Same as --gpu-mode virglrenderer"},
      {"    --max-hostmem <SIZE>", "Host memory cap for guest resources [default: 256M]"},
      {"    --host-visible-memory <SIZE>",
       "Host-visible region for mapped blobs (virglrenderer, gfxstream) [default: 4G]"},
      {"    --log-level <LEVEL>",
       "Log verbosity [env: VHOST_DEVICE_GPU_LOG=] [default: info] [possible values: error, "
       "warn, info, debug, trace]"},
      {"    --print-capabilities", "Print the back-end capabilities as JSON and exit"},
      {"    --no-sandbox", "Do not confine the daemon with its seccomp filter (for debugging)"},
      {"-h, --help", "Print help (see more with '--help')"},
      {"-V, --version", "Print version"},
  };
  // clap aligns every summary two columns after the longest option.
  size_t width = 0;
  for (const Line& line : kLines) width = std::max(width, std::string_view(line.option).size());

  std::string text = kAbout;
  text += "\n";
  text += kUsage;
  text += "\nOptions:\n";
  for (const Line& line : kLines) {
    std::string option = line.option;
    option.resize(width, ' ');
    text += "  " + option + "  " + line.summary + "\n";
  }
  text += "\nGPU modes in this build: " + BuiltModes(features) + "\n";
  return text;
}

std::string LongHelpText(const BuildFeatures& features) {
  std::string text = kAbout;
  text += "\n";
  text += kUsage;
  text +=
      "\n"
      "Options:\n"
      "  -s, --socket-path <SOCKET>\n"
      "          vhost-user Unix domain socket\n"
      "\n"
      "          The daemon listens on this path. Cannot be used with --fd.\n"
      "\n"
      "      --fd <FD>\n"
      "          Inherited vhost-user socket file descriptor\n"
      "\n"
      "          A listening or an already connected Unix socket (QEMU back-end program\n"
      "          convention, used by libvirt). Cannot be used with --socket-path.\n"
      "          Without --gpu-mode or --virgl it serves 2D (null mode), as that\n"
      "          convention has it.\n"
      "\n"
      "  -g, --gpu-mode <GPU_MODE>\n"
      "          The mode specifies which backend implementation to use\n"
      "\n"
      "          [possible values: virglrenderer, gfxstream, null]\n"
      "\n"
      "  -c, --capset <CAPSET>\n"
      "          Comma separated list of enabled capsets\n"
      "\n"
      "          Possible values:\n"
      "          - virgl:            [virglrenderer] OpenGL implementation, superseded by Virgl2\n"
      "          - virgl2:           [virglrenderer] OpenGL implementation\n"
      "          - venus:            [virglrenderer] Vulkan implementation (Venus; beyond the\n"
      "             seed's list: needs virglrenderer's render server and a host Vulkan driver,\n"
      "             and a VMM that maps blobs (vhost-user SHMEM))\n"
      "          - gfxstream-vulkan: [gfxstream] Vulkan implementation (partial support only)\n"
      "             NOTE: Can only be used for 2D display output for now, there is no hardware "
      "acceleration yet\n"
      "          - gfxstream-gles:   [gfxstream] OpenGL ES implementation (partial support only)\n"
      "             NOTE: Can only be used for 2D display output for now, there is no hardware "
      "acceleration yet\n"
      "\n"
      "          May be repeated. Without it: virgl,virgl2 for virglrenderer,\n"
      "          gfxstream-vulkan,gfxstream-gles for gfxstream, none for null.\n"
      "\n"
      "      --use-egl <USE_EGL>\n"
      "          Enable backend to use EGL\n"
      "\n"
      "          [default: true]\n"
      "          [possible values: true, false]\n"
      "\n"
      "      --use-glx <USE_GLX>\n"
      "          Enable backend to use GLX\n"
      "\n"
      "          [default: false]\n"
      "          [possible values: true, false]\n"
      "\n"
      "      --use-gles <USE_GLES>\n"
      "          Enable backend to use GLES\n"
      "\n"
      "          [default: true]\n"
      "          [possible values: true, false]\n"
      "\n"
      "      --use-surfaceless <USE_SURFACELESS>\n"
      "          Enable surfaceless backend option\n"
      "\n"
      "          [default: true]\n"
      "          [possible values: true, false]\n"
      "\n"
      "      --headless\n"
      "          Enable headless mode (no display output)\n"
      "\n"
      "      --gpu-device <PATH>\n"
      "          GPU device path (e.g., /dev/dri/renderD128)\n"
      "\n"
      "          [Optional] Specifies which GPU device to use for rendering. Only\n"
      "          applicable when using the virglrenderer backend.\n"
      "\n"
      "      --render-node <PATH>\n"
      "          Same as --gpu-device (QEMU back-end program convention); accepted\n"
      "          and left unused in the modes that render without one\n"
      "\n"
      "      --virgl\n"
      "          Same as --gpu-mode virglrenderer (QEMU back-end program convention)\n"
      "\n"
      "      --max-hostmem <SIZE>\n"
      "          Upper bound on the host memory used for guest resources\n"
      "\n"
      "          A byte count with an optional K, M or G suffix (powers of 1024).\n"
      "\n"
      "          [default: 256M]\n"
      "\n"
      "      --host-visible-memory <SIZE>\n"
      "          Size of the host-visible shared memory region that blobs are mapped into\n"
      "          (RESOURCE_MAP_BLOB), offered to a VMM that speaks vhost-user SHMEM; only in\n"
      "          the modes whose renderer makes host blobs (virglrenderer). A power of two\n"
      "          from 1M to 64G (K, M or G suffix), or 0 for none. It is address space in\n"
      "          the guest, not memory.\n"
      "\n"
      "          [default: 4G]\n"
      "\n"
      "      --log-level <LEVEL>\n"
      "          Log verbosity\n"
      "\n"
      "          [env: VHOST_DEVICE_GPU_LOG=]\n"
      "          [default: info]\n"
      "          [possible values: error, warn, info, debug, trace]\n"
      "\n"
      "      --print-capabilities\n"
      "          Print the back-end capabilities as JSON and exit, ignoring the other options\n"
      "          (QEMU back-end program convention)\n"
      "\n"
      "      --no-sandbox\n"
      "          Do not confine the daemon with its seccomp filter (for debugging)\n"
      "\n"
      "          Once set up, the daemon normally sets no_new_privs and installs a seccomp\n"
      "          filter on all its threads that allows only the system calls it needs to\n"
      "          serve. System calls that are escape tools (execve, ptrace, mount, bpf, ...)\n"
      "          kill it; any other unlisted call fails with EPERM, so that an unforeseen\n"
      "          need of a GL driver degrades rendering rather than killing the VM's display.\n"
      "          Use this option to check whether a failure comes from the filter.\n"
      "\n"
      "  -h, --help\n"
      "          Print help (see a summary with '-h')\n"
      "\n"
      "  -V, --version\n"
      "          Print version\n"
      "\n"
      "NOTE: --gpu-mode accepts virglrenderer (alias virgl-renderer) and gfxstream only if the\n"
      "binary was built with those backends; null is always available.\n\n";
  text += "GPU modes in this build: " + BuiltModes(features) + "\n";
  return text;
}

std::string VersionText() { return std::string("vhost-device-gpu ") + VGPU_VERSION + "\n"; }

}  // namespace vgpu::daemon
