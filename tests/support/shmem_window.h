// ShmemWindow: the VMM's side of vhost-user SHMEM for tests (vhost-user.rst, "VIRTIO Shared
// Memory Regions"): the socket given to the daemon with SET_BACKEND_REQ_FD, served on a thread,
// and the host-visible region as a reserved window of address space into which each
// BACKEND_SHMEM_MAP's fd is mapped at its shm_offset (MAP_FIXED), as QEMU maps it into the BAR.
// A test reads and writes a mapped blob through Bytes(), as the guest would.
//
//   Result<std::unique_ptr<ShmemWindow>> window = ShmemWindow::Create(region_size, {});
//   frontend.SetBackendReqFd(window->daemon_end());     // Then dropped here.
//   window->WaitForMappings(1, timeout);
//   std::span<uint8_t> blob = window->Bytes(offset, size);
//
// Requests are checked as a VMM must: shmid 1 only, the range inside the region, no overlap with
// a live mapping, an UNMAP that names exactly one earlier mapping; a failed check answers 1 (with
// REPLY_ACK) and is recorded as an anomaly. `answer` makes the frontend fail or ignore requests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "vhost_user/message.h"

namespace vgpu::test {

struct ShmemWindowOptions {
  enum class Answer { kServe, kFail, kNever } answer = Answer::kServe;
};

struct ShmemRequestRecord {
  uint32_t request = 0;  // BACKEND_SHMEM_MAP or _UNMAP.
  vhost_user::ShmemMap map{};
  bool had_fd = false;
  bool need_reply = false;
};

class ShmemWindow {
 public:
  static Result<std::unique_ptr<ShmemWindow>> Create(uint64_t size, ShmemWindowOptions options);
  ~ShmemWindow();  // Stops the thread, unmaps the window.
  ShmemWindow(const ShmemWindow&) = delete;
  ShmemWindow& operator=(const ShmemWindow&) = delete;

  // The daemon's end of the backend socket (taken once).
  UniqueFd TakeDaemonEnd() { return std::move(daemon_end_); }

  // What a VMM does at a device reset (vhost-user.rst: mappings are dropped on reset): every
  // mapping goes, without a request from the daemon.
  void DropAll();
  // Bytes of the window (what the guest sees through the region).
  std::span<uint8_t> Bytes(uint64_t offset, uint64_t length) const;
  size_t live_mappings() const;
  std::vector<ShmemRequestRecord> requests() const;
  std::vector<std::string> anomalies() const;
  bool WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) const;
  // Whether the daemon closed its end (a disconnect).
  bool peer_closed() const;

 private:
  ShmemWindow() = default;
  void Serve();
  void Handle(const vhost_user::MessageHeader& header, const vhost_user::ShmemMap& map,
              UniqueFd fd);

  uint64_t size_ = 0;
  uint8_t* base_ = nullptr;
  ShmemWindowOptions options_;
  UniqueFd socket_;
  UniqueFd daemon_end_;
  UniqueFd stop_;  // eventfd
  std::thread thread_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<uint64_t, uint64_t> mappings_;  // Offset -> length.
  std::vector<ShmemRequestRecord> requests_;
  std::vector<std::string> anomalies_;
  bool peer_closed_ = false;
};

}  // namespace vgpu::test
