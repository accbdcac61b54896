// Summaries of timing samples and the memcpy floor the copy workloads are compared against.
//
//   std::vector<double> frame_seconds = ...;           // One sample per frame.
//   Summary summary = Summarize(frame_seconds);         // min, median, p99, mean.
//   double floor = MeasureMemcpySeconds(8294400, 9);    // Median of 9 timed copies.
//   double send = MeasureSocketSendSeconds(8294400, 9); // The sender's CPU for one socket send.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vgpu::bench {

struct Summary {
  size_t count = 0;
  double min = 0;
  double median = 0;
  double p99 = 0;
  double mean = 0;
  double max = 0;
};

// Nearest-rank percentiles over `samples` (copied, then sorted). All zero when empty.
Summary Summarize(std::vector<double> samples);

// The median time of `repetitions` memcpy calls of `bytes` between two distinct, pre-faulted
// buffers: the cost of moving the same bytes once, in this process, on this machine, now.
double MeasureMemcpySeconds(size_t bytes, int repetitions);

// The median CPU time (the sending thread's own, CLOCK_THREAD_CPUTIME_ID) of sending `bytes`
// through a Unix stream socketpair to a thread that reads and discards them, with the send
// buffer the daemon's display channel asks for (1 MiB): what a display UPDATE of that many bytes
// costs its sender in the kernel at the least, on this machine, now.
double MeasureSocketSendSeconds(size_t bytes, int repetitions);

}  // namespace vgpu::bench
