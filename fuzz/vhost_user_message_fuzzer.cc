// Fuzz target: the vhost-user request handling of one frontend connection. Messages with fds
// attached go over a real socketpair into Connection::Receive and BackendHandler::Handle, with
// the real DeviceThread running a small device that pops, reads and answers whatever the rings
// hold, so that ring setup, memory tables and queue start/stop are exercised end to end.
//
// Input: records until the input ends.
//   u8 kind. kind % 4 == 3: a write into one of the memfds (the guest RAM the messages may map):
//     u8 memfd (% 3), u32 offset, u16 length, bytes.
//   Otherwise a message:
//     u8 fd count (% 11: more than 8 truncates the control data), u8 pool index per fd,
//     u32 request, u32 flags, u16 payload length, payload bytes,
//     and when kind & 0x80, u32 declared size (else the header's size is the payload length).
// The fd pool, fresh for every input: memfds of 1 MiB, 1 MiB and 4 KiB, three eventfds, one end
// of a socketpair (a GPU socket) and the read end of a pipe.
//
// Memory writes happen before the first message; all messages are written before the first is
// handled and the frontend then shuts its sending side, so a message that claims more payload
// than follows ends in EOF instead of a receive timeout.
//
// Determinism: the pool's eventfds are never written, so the device runs only when the control
// thread starts or enables a ring (synchronously, through DeviceThread::RunSync), never from a
// kick; for the same reason the device does not signal call fds (one of them may also be a kick
// fd).
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "fuzz_guest_memory.h"
#include "fuzz_input.h"
#include "vhost_user/backend_handler.h"
#include "vhost_user/connection.h"
#include "vhost_user/device_thread.h"
#include "virtio/chain_io.h"
#include "virtio/device.h"

namespace vgpu::fuzz {
namespace {

constexpr size_t kPoolSize = 8;
constexpr size_t kMaxMessages = 512;
constexpr size_t kMaxPayload = vhost_user::kMaxPayloadSize + 64;

// A device with the GPU's shape (two queues, a 24-byte config space) that consumes every chain.
class ConsumingDevice final : public virtio::Device {
 public:
  uint64_t DeviceFeatures() const override { return (1ull << 1) | (1ull << 3); }
  uint32_t QueueCount() const override { return 2; }
  uint32_t MaxQueueSize(uint32_t) const override { return 1024; }
  uint32_t ConfigSize() const override { return static_cast<uint32_t>(config_.size()); }
  void ReadConfig(uint32_t offset, std::span<uint8_t> destination) const override {
    if (offset > config_.size() || destination.size() > config_.size() - offset) std::abort();
    std::memcpy(destination.data(), config_.data() + offset, destination.size());
  }
  void WriteConfig(uint32_t offset, std::span<const uint8_t> source) override {
    if (offset > config_.size() || source.size() > config_.size() - offset) std::abort();
    std::memcpy(config_.data() + offset, source.data(), source.size());
  }
  Result<void> SetEventLoop(EventLoop&) override { return {}; }
  void Activate(uint64_t) override {}
  void QueueStarted(uint32_t index, virtio::SplitVirtqueue* queue, bool) override {
    queues_.at(index) = queue;
  }
  void QueueEnabled(uint32_t index, bool) override {
    (void)queues_.at(index);  // Only ever for a queue the device has.
  }
  void QueueNotified(uint32_t index) override {
    virtio::SplitVirtqueue* queue = queues_.at(index);
    if (queue == nullptr) std::abort();  // Notified about a queue that was never started.
    for (uint32_t popped = 0; popped < 2u * queue->size(); ++popped) {
      std::optional<virtio::PoppedChain> chain = queue->Pop();
      if (!chain) break;
      uint32_t written = 0;
      if (chain->chain) {
        virtio::ChainReader reader(*chain->chain);
        std::array<uint8_t, 64> request{};
        (void)reader.Read(std::span<uint8_t>(
            request.data(), static_cast<size_t>(std::min<uint64_t>(reader.remaining(), 64))));
        virtio::ChainWriter writer(*chain->chain);
        (void)writer.Write(std::span<const uint8_t>(
            request.data(), static_cast<size_t>(std::min<uint64_t>(writer.remaining(), 24))));
        written = static_cast<uint32_t>(writer.bytes_written());
      }
      queue->PushUsed(chain->head_index, written);
    }
  }
  void QueueMemoryReplaced(uint32_t index, std::shared_ptr<const virtio::GuestMemory>) override {
    (void)queues_.at(index);  // Every chain is answered at once: nothing to keep.
  }
  void QueueStopping(uint32_t index) override { queues_.at(index) = nullptr; }
  void Reset() override { config_.fill(0); }

 private:
  std::array<uint8_t, 24> config_{};
  std::array<virtio::SplitVirtqueue*, 2> queues_{};
};

ConsumingDevice& Device() {
  static ConsumingDevice device;
  return device;
}

vhost_user::DeviceThread& Thread() {
  static vhost_user::DeviceThread* thread = [] {
    auto* started = new vhost_user::DeviceThread(Device());
    if (!started->Start()) FuzzSetupFailed("DeviceThread::Start");
    return started;
  }();
  return *thread;
}

std::array<UniqueFd, kPoolSize> MakePool() {
  std::array<UniqueFd, kPoolSize> pool;
  const uint64_t memfd_sizes[3] = {1 << 20, 1 << 20, 4096};
  for (int i = 0; i < 3; ++i) {
    pool[i] = UniqueFd(memfd_create("fuzz-vhost-ram", MFD_CLOEXEC));
    if (!pool[i].valid() || ftruncate(pool[i].get(), static_cast<off_t>(memfd_sizes[i])) != 0) {
      FuzzSetupFailed("memfd");
    }
  }
  for (int i = 3; i < 6; ++i) pool[i] = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) FuzzSetupFailed("socketpair");
  pool[6] = UniqueFd(pair[0]);
  close(pair[1]);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) FuzzSetupFailed("pipe");
  pool[7] = UniqueFd(pipe_fds[0]);
  close(pipe_fds[1]);
  for (const UniqueFd& fd : pool) {
    if (!fd.valid()) FuzzSetupFailed("fd pool");
  }
  return pool;
}

// Sends one message; false when the socket is full (the rest of the input is dropped).
bool SendMessage(int socket, std::span<const uint8_t> bytes, const std::vector<int>& fds) {
  iovec io{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr header{};
  header.msg_iov = &io;
  header.msg_iovlen = 1;
  std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    header.msg_control = control.data();
    header.msg_controllen = control.size();
    cmsghdr* item = CMSG_FIRSTHDR(&header);
    item->cmsg_level = SOL_SOCKET;
    item->cmsg_type = SCM_RIGHTS;
    item->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(item), fds.data(), sizeof(int) * fds.size());
  }
  return sendmsg(socket, &header, MSG_NOSIGNAL | MSG_DONTWAIT) ==
         static_cast<ssize_t>(bytes.size());
}

void DrainReplies(int socket) {
  uint8_t buffer[4096];
  while (recv(socket, buffer, sizeof(buffer), MSG_DONTWAIT) > 0) {
  }
}

}  // namespace
}  // namespace vgpu::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vgpu::fuzz::SetFuzzLogLevel();
  vgpu::fuzz::Thread();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vgpu;
  using namespace vgpu::fuzz;
  FuzzInput input(data, size);
  std::array<UniqueFd, kPoolSize> pool = MakePool();
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) FuzzSetupFailed("socketpair");
  UniqueFd frontend(pair[0]);
  vhost_user::Connection connection{UniqueFd(pair[1])};
  if (!connection.SetReceiveTimeout(100)) FuzzSetupFailed("SetReceiveTimeout");

  size_t messages = 0;
  bool socket_full = false;
  while (!input.empty() && messages < kMaxMessages) {
    const uint8_t kind = input.Take<uint8_t>();
    if (kind % 4 == 3) {
      const int memfd = pool[input.Take<uint8_t>() % 3].get();
      const uint32_t offset = input.Take<uint32_t>();
      std::span<const uint8_t> bytes = input.TakeBytes(input.Take<uint16_t>());
      // Past the end of a memfd this grows the file; keep the sizes the pool gave.
      struct stat status {};
      if (fstat(memfd, &status) == 0 && offset < static_cast<uint64_t>(status.st_size)) {
        const size_t room = static_cast<size_t>(status.st_size - offset);
        (void)!pwrite(memfd, bytes.data(), std::min(room, bytes.size()), offset);
      }
      continue;
    }
    std::vector<int> fds(input.Take<uint8_t>() % 11);
    for (int& fd : fds) fd = pool[input.Take<uint8_t>() % kPoolSize].get();
    vhost_user::MessageHeader header{};
    header.request = input.Take<uint32_t>();
    header.flags = input.Take<uint32_t>();
    std::span<const uint8_t> payload = input.TakeBytes(input.Take<uint16_t>() % kMaxPayload);
    header.size = static_cast<uint32_t>(payload.size());
    if (kind & 0x80) header.size = input.Take<uint32_t>();
    std::vector<uint8_t> bytes(sizeof(header) + payload.size());
    std::memcpy(bytes.data(), &header, sizeof(header));
    if (!payload.empty())
      std::memcpy(bytes.data() + sizeof(header), payload.data(), payload.size());
    if (!socket_full && !SendMessage(frontend.get(), bytes, fds)) socket_full = true;
    ++messages;
  }
  shutdown(frontend.get(), SHUT_WR);

  {
    vhost_user::BackendHandler handler(Device(), Thread(), [](UniqueFd) {});
    for (size_t handled = 0; handled <= messages; ++handled) {
      Result<vhost_user::ReceivedMessage> message = connection.Receive();
      if (!message) break;
      if (!handler.Handle(*message, connection)) break;
      DrainReplies(frontend.get());
    }
    handler.Disconnect();
  }
  return 0;
}
