// UniqueFd: sole owner of a file descriptor; closes it on destruction.
//
//   UniqueFd fd(open(path, O_RDWR | O_CLOEXEC));
//   if (!fd.valid()) return MakeSystemError("open");
//   Use(fd.get());            // Borrow.
//   int raw = fd.release();   // Give up ownership.
//   UniqueFd second = DuplicateFd(fd.get());
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace vgpu {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A second descriptor of the same open file, close-on-exec; invalid (errno set) on failure.
inline UniqueFd DuplicateFd(int fd) { return UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

}  // namespace vgpu
