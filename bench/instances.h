// --instances N: one workload on N backends at once, each started from the same command line
// with its own frontend and display, as N VMs on one host each have their own daemon. The
// measured parts start together (after every instance's warm-up) and the instances' figures are
// combined into one result.
//
//   std::vector<WorkloadResult> each;
//   WorkloadResult total = RunInstances(workload, spec, "A", options, 4, each);
//   // total: frames_per_second summed over the 4, frame times their mean, one note per
//   // instance with its rate and its backend's RSS; each: the 4 results, labelled A.1 .. A.4.
#pragma once

#include <string>
#include <vector>

#include "backend.h"
#include "workload.h"
#include "workload_result.h"

namespace vgpu::bench {

// Rates (units 1/s and MB/s) and backend_cpu_percent are summed over the instances: what the
// host does in total. Every other figure is the instances' mean (what one instance sees or
// costs); the backend's RSS (backend_resident_memory, resident_memory) also gets its _max.
// tool_cpu_* figures are left out: this process's CPU time covers all instances and cannot be
// split between them. The combined result fails if any instance failed. A socket backend cannot be
// started N times and fails at once.
WorkloadResult RunInstances(const Workload& workload, const BackendSpec& backend,
                            const std::string& label, const WorkloadOptions& options,
                            int instance_count, std::vector<WorkloadResult>& instance_results);

}  // namespace vgpu::bench
