// WorkloadResult: what one workload measured on one backend, in a form the table, the JSON file
// and the A/B comparison all read.
//
//   WorkloadResult result{.workload = "frame-1080p", .backend_label = "A"};
//   result.Add("frames_per_second", "1/s", 143.2, Better::kHigher);
//   result.notes.push_back("daemon CPU time unavailable: backend reached through a socket");
#pragma once

#include <string>
#include <vector>

namespace vgpu::bench {

// Which direction is an improvement (for the reader; ratios are always A / B).
enum class Better { kHigher, kLower, kNeither };

struct Figure {
  std::string name;  // snake_case, unit-free: "frame_time_median".
  std::string unit;  // "us", "1/s", "MB/s", "x" (a ratio), "kB", "%".
  double value = 0;
  Better better = Better::kNeither;
};

struct WorkloadResult {
  std::string workload;
  std::string backend_label;  // "A", "B" ...
  std::string backend;        // The BACKEND argument as given.
  bool ok = false;
  std::string error;  // Why the workload could not finish (ok == false).
  // Why the workload did not run on this backend, which cannot run it (e.g. no 3D); ok stays
  // true and there are no figures. Empty when it ran.
  std::string skipped;
  std::vector<Figure> figures;
  // Facts the reader needs to interpret the figures (what was not measurable and why, which
  // options applied).
  std::vector<std::string> notes;
  // What QEMU's end of the GPU socket would choke on or drop (FakeDisplay anomalies), and
  // protocol deviations the tool saw (a response type or fence echo that is wrong).
  std::vector<std::string> anomalies;
  std::string backend_exit;  // How a started backend ended ("exit code 0"), empty if unknown.

  void Add(std::string name, std::string unit, double value, Better better) {
    figures.push_back(Figure{std::move(name), std::move(unit), value, better});
  }
  const Figure* Find(const std::string& name) const {
    for (const Figure& figure : figures) {
      if (figure.name == name) return &figure;
    }
    return nullptr;
  }
};

}  // namespace vgpu::bench
