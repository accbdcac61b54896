// EventFd: a Linux eventfd counter, used for queue kicks, used-ring calls and thread wake-ups.
//
//   Result<EventFd> wake = EventFd::Create();
//   wake->Signal();          // From any thread.
//   wake->Consume();         // In the thread that polls wake->fd().
#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"

namespace vgpu {

class EventFd {
 public:
  EventFd() = default;
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}

  // A non-blocking, close-on-exec eventfd.
  static Result<EventFd> Create();

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }

  // Adds one to the counter. Failure (counter overflow) is harmless: the reader still wakes.
  void Signal() const;
  // Reads and resets the counter; returns 0 when nothing was signalled.
  uint64_t Consume() const;

 private:
  UniqueFd fd_;
};

}  // namespace vgpu
