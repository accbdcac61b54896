// BackendChannel: BACKEND_SHMEM_MAP/UNMAP as the frontend sees them, with and without REPLY_ACK,
// and a frontend that fails, misanswers or never answers.
#include "vhost_user/backend_channel.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace vgpu::vhost_user {
namespace {

struct Received {
  MessageHeader header{};
  ShmemMap map{};
  UniqueFd fd;
};

class BackendChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    frontend_ = UniqueFd(pair[0]);
    backend_ = UniqueFd(pair[1]);
    memory_ = UniqueFd(memfd_create("blob", MFD_CLOEXEC));
    ASSERT_TRUE(memory_.valid());
  }
  // What the frontend reads: one request with its fd.
  Received Receive() {
    Received received;
    char control[CMSG_SPACE(sizeof(int))] = {};
    iovec parts[2] = {{&received.header, sizeof(received.header)},
                      {&received.map, sizeof(received.map)}};
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = 2;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    EXPECT_EQ(recvmsg(frontend_.get(), &message, MSG_WAITALL),
              static_cast<ssize_t>(sizeof(MessageHeader) + sizeof(ShmemMap)));
    if (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
      received.fd = UniqueFd(fd);
    }
    return received;
  }
  void Answer(uint32_t request, uint64_t value, uint32_t flags = kReplyFlags) {
    const MessageHeader header{request, flags, sizeof(value)};
    uint8_t bytes[sizeof(header) + sizeof(value)];
    std::memcpy(bytes, &header, sizeof(header));
    std::memcpy(bytes + sizeof(header), &value, sizeof(value));
    ASSERT_EQ(write(frontend_.get(), bytes, sizeof(bytes)), static_cast<ssize_t>(sizeof(bytes)));
  }
  static virtio::ShmemMapping Mapping(int fd) {
    return virtio::ShmemMapping{.shmid = 1,
                                .fd = fd,
                                .fd_offset = 4096,
                                .shm_offset = 1 << 20,
                                .length = 65536,
                                .writable = true};
  }

  UniqueFd frontend_;
  UniqueFd backend_;
  UniqueFd memory_;
};

TEST_F(BackendChannelTest, WithoutReplyAckARequestIsSentOnceAndCountsAsDone) {
  BackendChannel channel(std::move(backend_), /*reply_ack=*/false);
  ASSERT_TRUE(channel.Map(Mapping(memory_.get())));
  Received map = Receive();
  EXPECT_EQ(map.header.request, static_cast<uint32_t>(BackendRequest::kShmemMap));
  EXPECT_EQ(map.header.flags, kVersion);
  EXPECT_EQ(map.header.size, sizeof(ShmemMap));
  EXPECT_EQ(map.map.shmid, 1);
  EXPECT_EQ(map.map.fd_offset, 4096u);
  EXPECT_EQ(map.map.shm_offset, 1u << 20);
  EXPECT_EQ(map.map.len, 65536u);
  EXPECT_EQ(map.map.flags, kShmemMapReadWrite);
  EXPECT_TRUE(map.fd.valid());

  ASSERT_TRUE(channel.Unmap(1, 1 << 20, 65536));
  Received unmap = Receive();
  EXPECT_EQ(unmap.header.request, static_cast<uint32_t>(BackendRequest::kShmemUnmap));
  EXPECT_EQ(unmap.map.shm_offset, 1u << 20);
  EXPECT_EQ(unmap.map.len, 65536u);
  EXPECT_EQ(unmap.map.fd_offset, 0u);
  EXPECT_FALSE(unmap.fd.valid());
}

TEST_F(BackendChannelTest, WithReplyAckTheAnswerDecides) {
  BackendChannel channel(std::move(backend_), /*reply_ack=*/true);
  std::thread frontend([&] {
    Received first = Receive();
    EXPECT_EQ(first.header.flags, kVersion | kNeedReplyFlag);
    Answer(first.header.request, 0);
    Received second = Receive();
    Answer(second.header.request, 1);  // The VMM could not map it.
  });
  EXPECT_TRUE(channel.Map(Mapping(memory_.get())));
  Result<void> failed = channel.Map(Mapping(memory_.get()));
  frontend.join();
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("failed it"), std::string::npos);
  EXPECT_FALSE(channel.broken());  // A refusal is an answer: the channel still works.
}

TEST_F(BackendChannelTest, AnswerToAnotherRequestBreaksTheChannel) {
  BackendChannel channel(std::move(backend_), /*reply_ack=*/true);
  std::thread frontend([&] {
    Received first = Receive();
    Answer(static_cast<uint32_t>(BackendRequest::kShmemUnmap), 0);
  });
  EXPECT_FALSE(channel.Map(Mapping(memory_.get())));
  frontend.join();
  EXPECT_TRUE(channel.broken());
  // Later requests fail at once, nothing more is sent.
  EXPECT_FALSE(channel.Unmap(1, 0, 4096));
  char byte;
  EXPECT_EQ(recv(frontend_.get(), &byte, 1, MSG_DONTWAIT), -1);
}

TEST_F(BackendChannelTest, FrontendThatNeverAnswersCostsTheTimeout) {
  BackendChannel channel(std::move(backend_), /*reply_ack=*/true, std::chrono::milliseconds(100));
  const auto start = std::chrono::steady_clock::now();
  Result<void> mapped = channel.Map(Mapping(memory_.get()));
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(mapped);
  EXPECT_EQ(mapped.error().kind, ErrorKind::kTimedOut);
  EXPECT_TRUE(channel.broken());
  EXPECT_LT(waited, std::chrono::seconds(2));
}

TEST_F(BackendChannelTest, ClosedFrontendFailsTheRequest) {
  BackendChannel channel(std::move(backend_), /*reply_ack=*/false);
  frontend_.reset();
  EXPECT_FALSE(channel.Map(Mapping(memory_.get())));
  EXPECT_TRUE(channel.broken());
}

}  // namespace
}  // namespace vgpu::vhost_user
