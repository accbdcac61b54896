#include "support/shmem_window.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>

namespace vgpu::test {

using vhost_user::BackendRequest;
using vhost_user::MessageHeader;
using vhost_user::ShmemMap;

Result<std::unique_ptr<ShmemWindow>> ShmemWindow::Create(uint64_t size,
                                                         ShmemWindowOptions options) {
  std::unique_ptr<ShmemWindow> window(new ShmemWindow());
  window->size_ = size;
  window->options_ = options;
  void* base = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return MakeSystemError("mmap(window)");
  window->base_ = static_cast<uint8_t*>(base);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    return MakeSystemError("socketpair");
  }
  window->socket_ = UniqueFd(pair[0]);
  window->daemon_end_ = UniqueFd(pair[1]);
  window->stop_ = UniqueFd(eventfd(0, EFD_CLOEXEC));
  if (!window->stop_) return MakeSystemError("eventfd");
  window->thread_ = std::thread([w = window.get()] { w->Serve(); });
  return window;
}

ShmemWindow::~ShmemWindow() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!write(stop_.get(), &one, sizeof(one));
    thread_.join();
  }
  if (base_ != nullptr) munmap(base_, size_);
}

void ShmemWindow::DropAll() {
  std::lock_guard lock(mutex_);
  mmap(base_, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  mappings_.clear();
  changed_.notify_all();
}

std::span<uint8_t> ShmemWindow::Bytes(uint64_t offset, uint64_t length) const {
  // The serving thread maps under the lock before it answers the daemon, which answers the
  // guest's MAP_BLOB after that: taking the lock here orders the caller after the mapping for
  // the thread sanitizer too (it cannot see the order through the daemon's sockets).
  std::lock_guard lock(mutex_);
  return std::span<uint8_t>(base_ + offset, length);
}

size_t ShmemWindow::live_mappings() const {
  std::lock_guard lock(mutex_);
  return mappings_.size();
}

std::vector<ShmemRequestRecord> ShmemWindow::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<std::string> ShmemWindow::anomalies() const {
  std::lock_guard lock(mutex_);
  return anomalies_;
}

bool ShmemWindow::peer_closed() const {
  std::lock_guard lock(mutex_);
  return peer_closed_;
}

bool ShmemWindow::WaitFor(const std::function<bool()>& predicate,
                          std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    lock.unlock();
    const bool done = predicate();
    lock.lock();
    return done;
  });
}

void ShmemWindow::Serve() {
  for (;;) {
    pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    MessageHeader header{};
    ShmemMap map{};
    char control[CMSG_SPACE(sizeof(int))] = {};
    iovec parts[2] = {{&header, sizeof(header)}, {&map, sizeof(map)}};
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = 2;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    // The daemon sends each request with one sendmsg: header and payload arrive together.
    const ssize_t received = recvmsg(socket_.get(), &message, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    UniqueFd fd;
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int received_fd;
        std::memcpy(&received_fd, CMSG_DATA(c), sizeof(received_fd));
        fd = UniqueFd(received_fd);
      }
    }
    std::lock_guard lock(mutex_);
    if (received <= 0) {
      peer_closed_ = true;
      changed_.notify_all();
      return;
    }
    if (received != static_cast<ssize_t>(sizeof(header) + sizeof(map)) ||
        header.size != sizeof(map)) {
      anomalies_.push_back("backend request " + std::to_string(header.request) + " of " +
                           std::to_string(received) + " bytes");
      changed_.notify_all();
      continue;
    }
    Handle(header, map, std::move(fd));
    changed_.notify_all();
  }
}

void ShmemWindow::Handle(const MessageHeader& header, const ShmemMap& map, UniqueFd fd) {
  const bool need_reply = (header.flags & vhost_user::kNeedReplyFlag) != 0;
  requests_.push_back({header.request, map, fd.valid(), need_reply});
  uint64_t result = 1;
  auto fail = [&](const std::string& why) { anomalies_.push_back(why); };
  if (options_.answer != ShmemWindowOptions::Answer::kServe) {
    // A frontend that fails or ignores every request maps nothing.
    if (options_.answer == ShmemWindowOptions::Answer::kFail && need_reply) {
      const MessageHeader reply{header.request, vhost_user::kReplyFlags, sizeof(result)};
      uint8_t bytes[sizeof(reply) + sizeof(result)];
      std::memcpy(bytes, &reply, sizeof(reply));
      std::memcpy(bytes + sizeof(reply), &result, sizeof(result));
      (void)!send(socket_.get(), bytes, sizeof(bytes), MSG_NOSIGNAL);
    }
    return;
  }
  const bool inside =
      map.shmid == 1 && map.len != 0 && map.shm_offset < size_ && map.len <= size_ - map.shm_offset;
  if (header.request == static_cast<uint32_t>(BackendRequest::kShmemMap)) {
    auto next = mappings_.lower_bound(map.shm_offset);
    const bool overlaps = (next != mappings_.end() && next->first < map.shm_offset + map.len) ||
                          (next != mappings_.begin() &&
                           std::prev(next)->first + std::prev(next)->second > map.shm_offset);
    if (!inside || !fd || overlaps) {
      fail("bad SHMEM_MAP at " + std::to_string(map.shm_offset));
    } else {
      const int protection =
          PROT_READ | ((map.flags & vhost_user::kShmemMapReadWrite) ? PROT_WRITE : 0);
      void* mapped = mmap(base_ + map.shm_offset, map.len, protection, MAP_SHARED | MAP_FIXED,
                          fd.get(), static_cast<off_t>(map.fd_offset));
      if (mapped == MAP_FAILED) {
        fail("SHMEM_MAP: mmap failed: " + std::string(std::strerror(errno)));
      } else {
        mappings_.emplace(map.shm_offset, map.len);
        result = 0;
      }
    }
  } else if (header.request == static_cast<uint32_t>(BackendRequest::kShmemUnmap)) {
    auto mapping = mappings_.find(map.shm_offset);
    if (!inside || fd || mapping == mappings_.end() || mapping->second != map.len) {
      fail("bad SHMEM_UNMAP at " + std::to_string(map.shm_offset));
    } else {
      mmap(base_ + map.shm_offset, map.len, PROT_NONE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
      mappings_.erase(mapping);
      result = 0;
    }
  } else {
    fail("unknown backend request " + std::to_string(header.request));
  }
  if (!need_reply) return;
  const MessageHeader reply{header.request, vhost_user::kReplyFlags, sizeof(result)};
  uint8_t bytes[sizeof(reply) + sizeof(result)];
  std::memcpy(bytes, &reply, sizeof(reply));
  std::memcpy(bytes + sizeof(reply), &result, sizeof(result));
  (void)!send(socket_.get(), bytes, sizeof(bytes), MSG_NOSIGNAL);
}

}  // namespace vgpu::test
