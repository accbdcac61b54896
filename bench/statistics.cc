#include "statistics.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#include "base/unique_fd.h"

namespace vgpu::bench {
namespace {

double ThreadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Nearest rank (the smallest sample with at least `fraction` of the samples at or below it).
double Percentile(const std::vector<double>& sorted, double fraction) {
  const double rank = std::ceil(fraction * static_cast<double>(sorted.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace

Summary Summarize(std::vector<double> samples) {
  Summary summary;
  if (samples.empty()) return summary;
  std::sort(samples.begin(), samples.end());
  summary.count = samples.size();
  summary.min = samples.front();
  summary.max = samples.back();
  summary.median = Percentile(samples, 0.5);
  summary.p99 = Percentile(samples, 0.99);
  summary.mean =
      std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
  return summary;
}

double MeasureMemcpySeconds(size_t bytes, int repetitions) {
  if (bytes == 0 || repetitions <= 0) return 0;
  // new[] without value-initialisation, then memset: every page is faulted in before timing.
  std::unique_ptr<uint8_t[]> source(new uint8_t[bytes]);
  std::unique_ptr<uint8_t[]> destination(new uint8_t[bytes]);
  std::memset(source.get(), 0x5a, bytes);
  std::memset(destination.get(), 0, bytes);
  std::vector<double> seconds;
  for (int repetition = 0; repetition < repetitions; ++repetition) {
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(destination.get(), source.get(), bytes);
    // Keeps the copy from being optimised away.
    asm volatile("" : : "r"(destination.get()) : "memory");
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return Summarize(std::move(seconds)).median;
}

double MeasureSocketSendSeconds(size_t bytes, int repetitions) {
  if (bytes == 0 || repetitions <= 0) return 0;
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 0;
  UniqueFd sender(pair[0]);
  UniqueFd receiver(pair[1]);
  const int buffer_bytes = 1 << 20;
  (void)setsockopt(sender.get(), SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof(buffer_bytes));
  std::thread reader([fd = receiver.get()] {
    std::vector<uint8_t> sink(1 << 20);
    while (read(fd, sink.data(), sink.size()) > 0) {
    }
  });
  std::unique_ptr<uint8_t[]> source(new uint8_t[bytes]);
  std::memset(source.get(), 0x5a, bytes);
  std::vector<double> seconds;
  for (int repetition = 0; repetition < repetitions; ++repetition) {
    const double start = ThreadCpuSeconds();
    size_t sent = 0;
    while (sent < bytes) {
      const ssize_t count = send(sender.get(), source.get() + sent, bytes - sent, MSG_NOSIGNAL);
      if (count <= 0) break;
      sent += static_cast<size_t>(count);
    }
    seconds.push_back(ThreadCpuSeconds() - start);
  }
  sender.reset();  // EOF for the reader.
  reader.join();
  return Summarize(std::move(seconds)).median;
}

}  // namespace vgpu::bench
