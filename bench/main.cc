// vhost-gpu-bench: drives a vhost-user GPU backend the way QEMU 10 and a Linux guest do and
// measures it. See bench/README.md.
//
//   vhost-gpu-bench [--workload NAME]... [--duration S] [--json FILE] BACKEND
//   vhost-gpu-bench --compare BACKEND_A BACKEND_B [--workload NAME]... [--json FILE]
//   vhost-gpu-bench --instances N [--workload NAME]... BACKEND      (N backends at once)
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "instances.h"
#include "report.h"
#include "workload.h"

namespace vgpu::bench {
namespace {

constexpr const char* kUsage =
    "Usage: vhost-gpu-bench [OPTIONS] BACKEND\n"
    "       vhost-gpu-bench [OPTIONS] --compare BACKEND_A BACKEND_B\n"
    "\n"
    "BACKEND is a command line (one argument, e.g. \"build/vhost-device-gpu --gpu-mode null\" or\n"
    "/usr/lib/qemu/vhost-user-gpu), started afresh for each workload with --socket-path PATH\n"
    "appended, or the path of a socket a backend already listens on.\n"
    "\n"
    "Options:\n"
    "  --workload NAME     run this workload (repeatable; default: all; --list shows them)\n"
    "  --duration S        measured seconds per workload (default 3)\n"
    "  --warmup S          unmeasured seconds before each (default 0.3)\n"
    "  --json FILE         write the results as JSON\n"
    "  --compare A B       run each workload on A then B and report A/B ratios\n"
    "  --instances N       run each workload on N backends at once, each started from the\n"
    "                      command line with its own frontend (as N VMs); rates are summed,\n"
    "                      other figures averaged, each backend's RSS noted (default 1)\n"
    "  --backing pages|contiguous\n"
    "                      guest backing of resources: one entry per scattered 4 KiB page, as\n"
    "                      Linux sends for a dumb buffer (default), or one contiguous entry\n"
    "  --fence             set VIRTIO_GPU_FLAG_FENCE on frame transfers and flushes (Linux does\n"
    "                      not for a dumb primary plane; off by default)\n"
    "  --memory MIB        guest RAM size (default 256)\n"
    "  --stream FILE       recorded 3D command stream that submit3d-fence replays (default\n"
    "                      " VGPU_BENCH_DEFAULT_STREAM
    ")\n"
    "  --list              list the workloads and exit\n"
    "  --help              this text\n";

// Each instance is a backend process plus a frontend and display thread here.
constexpr int kMaxInstances = 64;

struct CommandLine {
  WorkloadOptions options;
  std::vector<std::string> workloads;
  std::vector<std::string> backends;
  std::string json_path;
  int instances = 1;
  bool compare = false;
  bool list = false;
  bool help = false;
};

Result<double> ParseNumber(const std::string& option, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !(value >= 0)) {
    return MakeError(ErrorKind::kInvalidArgument, option + ": not a number: " + text);
  }
  return value;
}

Result<CommandLine> Parse(int argc, char** argv) {
  CommandLine line;
  std::vector<std::string> words(argv + 1, argv + argc);
  for (size_t index = 0; index < words.size(); ++index) {
    std::string word = words[index];
    std::string value;
    bool has_value = false;
    if (word.rfind("--", 0) == 0 && word.find('=') != std::string::npos) {
      value = word.substr(word.find('=') + 1);
      word = word.substr(0, word.find('='));
      has_value = true;
    }
    auto take_value = [&]() -> Result<std::string> {
      if (has_value) return value;
      if (index + 1 >= words.size()) {
        return MakeError(ErrorKind::kInvalidArgument, word + " needs a value");
      }
      return words[++index];
    };
    if (word == "--help" || word == "-h") {
      line.help = true;
    } else if (word == "--list") {
      line.list = true;
    } else if (word == "--fence") {
      line.options.fence_frames = true;
    } else if (word == "--compare") {
      line.compare = true;
      for (int count = 0; count < 2; ++count) {
        Result<std::string> backend = take_value();
        if (!backend) return ErrorOf(backend);
        line.backends.push_back(*backend);
        has_value = false;
      }
    } else if (word == "--workload" || word == "--duration" || word == "--warmup" ||
               word == "--json" || word == "--backing" || word == "--memory" ||
               word == "--stream" || word == "--instances") {
      Result<std::string> text = take_value();
      if (!text) return ErrorOf(text);
      if (word == "--workload") {
        line.workloads.push_back(*text);
      } else if (word == "--json") {
        line.json_path = *text;
      } else if (word == "--stream") {
        line.options.stream_path = *text;
      } else if (word == "--backing") {
        if (*text != "pages" && *text != "contiguous") {
          return MakeError(ErrorKind::kInvalidArgument, "--backing: pages or contiguous");
        }
        line.options.backing =
            *text == "pages" ? BackingLayout::kPages : BackingLayout::kContiguous;
      } else {
        Result<double> number = ParseNumber(word, *text);
        if (!number) return ErrorOf(number);
        if (word == "--duration") line.options.duration_seconds = *number;
        if (word == "--warmup") line.options.warmup_seconds = *number;
        if (word == "--memory") line.options.memory_size = static_cast<uint64_t>(*number) << 20;
        if (word == "--instances") {
          if (*number < 1 || *number > kMaxInstances || *number != static_cast<int>(*number)) {
            return MakeError(ErrorKind::kInvalidArgument, "--instances: a whole number from 1 to " +
                                                              std::to_string(kMaxInstances));
          }
          line.instances = static_cast<int>(*number);
        }
      }
    } else if (word.rfind("-", 0) == 0 && word.size() > 1) {
      return MakeError(ErrorKind::kInvalidArgument, "unknown option " + word);
    } else {
      line.backends.push_back(word);
    }
  }
  if (line.help || line.list) return line;
  if (line.compare ? line.backends.size() != 2 : line.backends.size() != 1) {
    return MakeError(ErrorKind::kInvalidArgument,
                     line.compare ? "--compare takes exactly two backends"
                                  : "exactly one BACKEND is needed (or --compare A B)");
  }
  for (const std::string& name : line.workloads) {
    if (FindWorkload(name) == nullptr) {
      return MakeError(ErrorKind::kInvalidArgument, "unknown workload " + name + " (see --list)");
    }
  }
  return line;
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

int Main(int argc, char** argv) {
  // A backend that dies mid-send must not kill the tool; it reports the failure instead.
  std::signal(SIGPIPE, SIG_IGN);
  Result<CommandLine> line = Parse(argc, argv);
  if (!line) {
    std::fprintf(stderr, "vhost-gpu-bench: %s\n\n%s", line.error().message.c_str(), kUsage);
    return 2;
  }
  if (line->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (line->list) {
    for (const Workload& workload : AllWorkloads()) {
      std::printf("%-22s %s\n", workload.name.c_str(), workload.description.c_str());
    }
    return 0;
  }
  Report report;
  report.options = line->options;
  report.instances = line->instances;
  report.started_at = UtcNow();
  const char* labels[] = {"A", "B"};
  for (size_t index = 0; index < line->backends.size(); ++index) {
    Result<BackendSpec> spec = BackendSpec::Parse(line->backends[index]);
    if (!spec) {
      std::fprintf(stderr, "vhost-gpu-bench: %s\n", spec.error().message.c_str());
      return 2;
    }
    report.backends.push_back(LabelledBackend{labels[index], std::move(*spec)});
  }
  std::vector<const Workload*> selected;
  for (const Workload& workload : AllWorkloads()) {
    bool wanted = line->workloads.empty();
    for (const std::string& name : line->workloads) wanted = wanted || name == workload.name;
    if (wanted) selected.push_back(&workload);
  }
  // Each workload runs on every backend before the next workload: A and B alternate, so slow
  // drifts of the machine (thermal, other load) touch both alike.
  for (const Workload* workload : selected) {
    for (const LabelledBackend& backend : report.backends) {
      std::fprintf(stderr, "running %s on %s...\n", workload->name.c_str(), backend.label.c_str());
      if (line->instances == 1) {
        report.results.push_back(
            RunWorkload(*workload, backend.spec, backend.label, line->options));
        continue;
      }
      std::vector<WorkloadResult> each;
      report.results.push_back(RunInstances(*workload, backend.spec, backend.label, line->options,
                                            line->instances, each));
      // Kept for the JSON (labels A.1, A.2, ...); the table shows the combined result.
      for (WorkloadResult& result : each) report.instance_results.push_back(std::move(result));
    }
  }
  report.Derive();
  report.Compare();
  report.Print(stdout);
  if (!line->json_path.empty()) {
    if (Result<void> written = report.WriteJson(line->json_path); !written) {
      std::fprintf(stderr, "vhost-gpu-bench: %s\n", written.error().message.c_str());
      return 1;
    }
  }
  for (const WorkloadResult& result : report.results) {
    if (!result.ok) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace vgpu::bench

int main(int argc, char** argv) { return vgpu::bench::Main(argc, argv); }
