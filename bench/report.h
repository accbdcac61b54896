// The benchmark's output: a table on stdout and the JSON file.
//
//   Report report{.options = options, .backends = {{"A", spec_a}, {"B", spec_b}}};
//   report.results.push_back(RunWorkload(...));
//   report.Compare();                 // A/B ratios, when there are two backends.
//   report.Print(stdout);
//   report.WriteJson("bench.json");
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "backend.h"
#include "base/result.h"
#include "workload.h"
#include "workload_result.h"

namespace vgpu::bench {

struct LabelledBackend {
  std::string label;
  BackendSpec spec;
};

struct Ratio {
  std::string workload;
  std::string figure;
  std::string unit;
  double a = 0;
  double b = 0;
  double ratio = 0;  // a / b.
  Better better = Better::kNeither;
};

struct Report {
  WorkloadOptions options;
  std::vector<LabelledBackend> backends;
  std::vector<WorkloadResult> results;
  // --instances N > 1: `results` holds the combined figures, this each instance's own.
  int instances = 1;
  std::vector<WorkloadResult> instance_results;
  std::vector<Ratio> ratios;
  std::string started_at;  // ISO 8601, UTC.

  // Derived figures that need two workloads of one backend (damage cost against full frames).
  void Derive();
  // Fills `ratios` from the first two backends' results, workload by workload.
  void Compare();
  void Print(std::FILE* out) const;
  Result<void> WriteJson(const std::string& path) const;
};

}  // namespace vgpu::bench
