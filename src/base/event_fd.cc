#include "base/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace vgpu {

Result<EventFd> EventFd::Create() {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return MakeSystemError("eventfd");
  return EventFd(UniqueFd(fd));
}

void EventFd::Signal() const {
  uint64_t one = 1;
  ssize_t ignored = write(fd_.get(), &one, sizeof(one));
  (void)ignored;
}

uint64_t EventFd::Consume() const {
  uint64_t value = 0;
  if (read(fd_.get(), &value, sizeof(value)) != sizeof(value)) return 0;
  return value;
}

}  // namespace vgpu
