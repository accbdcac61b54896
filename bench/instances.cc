#include "instances.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

namespace vgpu::bench {
namespace {

// Longest an instance that finished its warm-up waits for the others (each starts a backend and
// connects within ConnectionOptions::start_timeout, then warms up).
constexpr std::chrono::seconds kStartLineTimeout{60};

// A barrier that a party may also leave without waiting (it failed before measuring), so that
// one failed instance does not hold the others forever.
class StartLine {
 public:
  explicit StartLine(int parties) : remaining_(parties) {}

  void ArriveAndWait() {
    std::unique_lock lock(mutex_);
    if (--remaining_ == 0) {
      changed_.notify_all();
      return;
    }
    changed_.wait_for(lock, kStartLineTimeout, [&] { return remaining_ == 0; });
  }

  void Leave() {
    std::lock_guard lock(mutex_);
    if (--remaining_ == 0) changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int remaining_;
};

// The backend's RSS: while measuring (backend_resident_memory) or idle (resident_memory).
bool IsResidentMemory(const std::string& name) {
  return name == "backend_resident_memory" || name == "resident_memory";
}

bool IsRate(const Figure& figure) {
  return figure.unit == "1/s" || figure.unit == "MB/s" || figure.name == "backend_cpu_percent";
}

std::string FormatFigure(const WorkloadResult& result, const std::string& name) {
  const Figure* figure = result.Find(name);
  if (figure == nullptr) return "";
  char text[96];
  std::snprintf(text, sizeof(text), figure->unit == "kB" ? "%s %.0f %s" : "%s %.1f %s",
                name.c_str(), figure->value, figure->unit.c_str());
  return text;
}

WorkloadResult Combine(const Workload& workload, const BackendSpec& backend,
                       const std::string& label, const std::vector<WorkloadResult>& instances) {
  WorkloadResult total;
  total.workload = workload.name;
  total.backend_label = label;
  total.backend = backend.text;
  total.ok = true;
  const double count = static_cast<double>(instances.size());
  for (const WorkloadResult& instance : instances) {
    if (!instance.ok) {
      total.ok = false;
      if (!total.error.empty()) total.error += "; ";
      total.error += instance.backend_label + ": " + instance.error;
    }
    for (const std::string& anomaly : instance.anomalies) {
      total.anomalies.push_back(instance.backend_label + ": " + anomaly);
    }
  }
  if (!instances.empty()) total.skipped = instances.front().skipped;
  total.notes.push_back(std::to_string(instances.size()) +
                        " instances at once, each with its own backend process, frontend and "
                        "display; rates (1/s, MB/s) and backend_cpu_percent are their sums, other "
                        "figures their mean; tool_cpu_* left out (this process serves them all)");
  if (!total.ok || instances.empty() || !total.skipped.empty()) return total;

  total.Add("instances", "", count, Better::kNeither);
  // The first instance's figures, in its order; each combined over all instances.
  for (const Figure& figure : instances.front().figures) {
    if (figure.name.rfind("tool_cpu_", 0) == 0) continue;
    double sum = 0;
    double maximum = 0;
    bool everywhere = true;
    for (const WorkloadResult& instance : instances) {
      const Figure* same = instance.Find(figure.name);
      if (same == nullptr) {
        everywhere = false;
        break;
      }
      sum += same->value;
      maximum = std::max(maximum, same->value);
    }
    if (!everywhere) continue;
    total.Add(figure.name, figure.unit, IsRate(figure) ? sum : sum / count, figure.better);
    if (IsResidentMemory(figure.name)) {
      total.Add(figure.name + "_max", figure.unit, maximum, figure.better);
    }
  }
  for (const WorkloadResult& instance : instances) {
    std::string summary = instance.backend_label + ":";
    for (const Figure& figure : instance.figures) {
      if (IsRate(figure) && figure.unit == "1/s")
        summary += " " + FormatFigure(instance, figure.name);
    }
    for (const Figure& figure : instance.figures) {
      if (IsResidentMemory(figure.name)) summary += ", " + FormatFigure(instance, figure.name);
    }
    total.notes.push_back(summary);
  }
  return total;
}

}  // namespace

WorkloadResult RunInstances(const Workload& workload, const BackendSpec& backend,
                            const std::string& label, const WorkloadOptions& options,
                            int instance_count, std::vector<WorkloadResult>& instance_results) {
  if (backend.kind != BackendSpec::Kind::kCommand) {
    WorkloadResult failed;
    failed.workload = workload.name;
    failed.backend_label = label;
    failed.backend = backend.text;
    failed.error = "--instances needs a command-line backend (one process per instance)";
    return failed;
  }
  std::vector<WorkloadResult> results(static_cast<size_t>(instance_count));
  StartLine start_line(instance_count);
  std::vector<std::thread> threads;
  for (int index = 0; index < instance_count; ++index) {
    threads.emplace_back([&, index] {
      // A workload may measure several loops; only the first one's start is shared.
      bool arrived = false;
      const std::function<void()> arrive = [&] {
        if (arrived) return;
        arrived = true;
        start_line.ArriveAndWait();
      };
      results[static_cast<size_t>(index)] =
          RunWorkload(workload, backend, label + "." + std::to_string(index + 1), options, arrive);
      if (!arrived) start_line.Leave();
    });
  }
  for (std::thread& thread : threads) thread.join();
  WorkloadResult total = Combine(workload, backend, label, results);
  for (WorkloadResult& result : results) instance_results.push_back(std::move(result));
  return total;
}

}  // namespace vgpu::bench
