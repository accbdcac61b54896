// FakeDisplay's own checks: the anomalies it must report when a back-end gets the protocol wrong.
#include "support/fake_display.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "gpu/display_protocol.h"

namespace vgpu::test {
namespace {

using gpu::display::MessageHeader;
using gpu::display::Request;
constexpr std::chrono::milliseconds kWait{5000};

void Send(const UniqueFd& socket, Request request, const void* payload, uint32_t size,
          uint32_t declared_size) {
  const MessageHeader header{static_cast<uint32_t>(request), 0, declared_size};
  std::vector<uint8_t> bytes(sizeof(header) + size);
  std::memcpy(bytes.data(), &header, sizeof(header));
  if (size > 0) std::memcpy(bytes.data() + sizeof(header), payload, size);
  ASSERT_EQ(send(socket.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

template <class T>
void Send(const UniqueFd& socket, Request request, const T& payload) {
  Send(socket, request, &payload, sizeof(T), sizeof(T));
}

bool WaitForMessages(const FakeDisplay& display, size_t count) {
  return display.WaitFor(
      [count](const FakeDisplayState& state) { return state.messages.size() >= count; }, kWait);
}

TEST(FakeDisplayTest, UpdateBeforeScanoutIsAnAnomaly) {
  auto [display, socket] = FakeDisplay::Create({});
  struct {
    gpu::display::Update update;
    uint32_t pixel;
  } __attribute__((packed)) message{{0, 0, 0, 1, 1}, 0xffffffff};

  Send(socket, Request::kUpdate, message);

  ASSERT_TRUE(WaitForMessages(display, 1));
  EXPECT_EQ(display.Anomalies().size(), 1u);
}

TEST(FakeDisplayTest, SizeNotMatchingTheTypeIsAnAnomaly) {
  auto [display, socket] = FakeDisplay::Create({});
  const gpu::display::Scanout scanout{0, 4, 4};

  Send(socket, Request::kScanout, &scanout, sizeof(scanout), sizeof(scanout));
  Send(socket, Request::kCursorPos, &scanout, 8, 8);
  struct {
    gpu::display::Update update;
    uint32_t pixel;
  } __attribute__((packed)) short_update{{0, 0, 0, 2, 2}, 0};
  Send(socket, Request::kUpdate, short_update);

  ASSERT_TRUE(WaitForMessages(display, 3));
  EXPECT_EQ(display.Anomalies().size(), 2u);
  EXPECT_EQ(display.Framebuffer(0)->updates, 0u);
}

TEST(FakeDisplayTest, ScanoutOutOfRangeIsAnAnomaly) {
  auto [display, socket] = FakeDisplay::Create({});
  const gpu::display::CursorPos position{1, 0, 0};

  Send(socket, Request::kCursorPos, position);

  ASSERT_TRUE(WaitForMessages(display, 1));
  EXPECT_EQ(display.Anomalies().size(), 1u);
}

TEST(FakeDisplayTest, GetEdidWithoutNegotiationIsAnAnomalyAndUnanswered) {
  auto [display, socket] = FakeDisplay::Create({});
  const gpu::display::EdidRequest request{0};

  Send(socket, Request::kGetEdid, request);

  ASSERT_TRUE(WaitForMessages(display, 1));
  EXPECT_EQ(display.Anomalies().size(), 1u);
  uint8_t byte;
  EXPECT_EQ(recv(socket.get(), &byte, 1, MSG_DONTWAIT), -1);
}

TEST(FakeDisplayTest, AnswersGetProtocolFeaturesLikeQemu) {
  auto [display, socket] = FakeDisplay::Create({.protocol_features = 3});

  Send(socket, Request::kGetProtocolFeatures, nullptr, 0, 0);

  struct {
    MessageHeader header;
    uint64_t features;
  } __attribute__((packed)) reply{};
  ASSERT_EQ(recv(socket.get(), &reply, sizeof(reply), MSG_WAITALL),
            static_cast<ssize_t>(sizeof(reply)));
  EXPECT_EQ(reply.header.request, 1u);
  EXPECT_EQ(reply.header.flags, gpu::display::kReplyFlag);
  EXPECT_EQ(reply.header.size, 8u);
  EXPECT_EQ(reply.features, 3u);
  EXPECT_TRUE(display.Anomalies().empty());
}

// --- Dmabufs -------------------------------------------------------------------------------------

// Sends one message with `fd` attached as SCM_RIGHTS, as the back-end's one sendmsg does.
template <class T>
void SendWithFd(const UniqueFd& socket, Request request, const T& payload, int fd) {
  struct {
    MessageHeader header;
    T payload;
  } __attribute__((packed)) message{{static_cast<uint32_t>(request), 0, sizeof(T)}, payload};
  iovec part{&message, sizeof(message)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr header{};
  header.msg_iov = &part;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof(control);
  cmsghdr* rights = CMSG_FIRSTHDR(&header);
  rights->cmsg_level = SOL_SOCKET;
  rights->cmsg_type = SCM_RIGHTS;
  rights->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(rights), &fd, sizeof(int));
  ASSERT_EQ(sendmsg(socket.get(), &header, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(message)));
}

// A memfd of width x height x8r8g8b8 pixels, pixel (x, y) = 0x00yyxx + `tag` << 16.
UniqueFd Pixels(uint32_t width, uint32_t height, uint32_t tag) {
  UniqueFd fd(memfd_create("fake-display-test", MFD_CLOEXEC));
  std::vector<uint32_t> pixels(size_t{width} * height);
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) pixels[size_t{y} * width + x] = tag << 16 | y << 8 | x;
  }
  EXPECT_EQ(write(fd.get(), pixels.data(), pixels.size() * 4),
            static_cast<ssize_t>(pixels.size() * 4));
  return fd;
}

gpu::display::DmabufScanout Layout(uint32_t width, uint32_t height, uint32_t flags) {
  return gpu::display::DmabufScanout{0,     0,      0,         width, height,
                                     width, height, width * 4, flags, 0x34325258};
}

TEST(FakeDisplayTest, DmabufUpdateIsReadThroughTheFdAndFlippedWithoutY0Top) {
  auto [display, socket] = FakeDisplay::Create({});
  UniqueFd pixels = Pixels(8, 4, 0x11);
  SendWithFd(socket, Request::kDmabufScanout, Layout(8, 4, 0), pixels.get());
  Send(socket, Request::kDmabufUpdate, gpu::display::Update{0, 0, 0, 8, 4});

  MessageHeader reply{};
  ASSERT_EQ(recv(socket.get(), &reply, sizeof(reply), MSG_WAITALL),
            static_cast<ssize_t>(sizeof(reply)));
  EXPECT_EQ(reply.request, static_cast<uint32_t>(Request::kDmabufUpdate));
  EXPECT_EQ(reply.flags, gpu::display::kReplyFlag);
  EXPECT_EQ(reply.size, 0u);
  const FakeDisplayState state = display.Snapshot();
  ASSERT_TRUE(state.dmabufs[0]);
  EXPECT_TRUE(state.dmabufs[0]->readable);
  EXPECT_TRUE(state.messages[0].had_fd);
  // No Y_0_TOP: the buffer's last row is the top one (QEMU flips it).
  EXPECT_EQ(state.framebuffers[0]->At(2, 0), 0x110302u);
  EXPECT_EQ(state.framebuffers[0]->At(2, 3), 0x110002u);
  EXPECT_TRUE(state.anomalies.empty());
}

TEST(FakeDisplayTest, FdBelongsToTheMessageThatCarriedItWhenOneReadTakesSeveral) {
  // The kernel delivers bytes before an fd-carrying send together with it: the fd is the last
  // message's, not the first's (a disable without fd, then a new dmabuf).
  auto [display, socket] = FakeDisplay::Create({.reading = false});
  UniqueFd pixels = Pixels(4, 4, 0x22);
  Send(socket, Request::kDmabufScanout, gpu::display::DmabufScanout{});
  SendWithFd(socket, Request::kDmabufScanout, Layout(4, 4, gpu::display::kDmabufFlagY0Top),
             pixels.get());
  display.SetReading(true);
  ASSERT_TRUE(WaitForMessages(display, 2));
  const FakeDisplayState state = display.Snapshot();
  EXPECT_FALSE(state.messages[0].had_fd);
  EXPECT_TRUE(state.messages[1].had_fd);
  ASSERT_TRUE(state.dmabufs[0]);
  EXPECT_EQ(state.dmabufs[0]->buffer_bytes, 64u);
  EXPECT_TRUE(state.anomalies.empty());
}

TEST(FakeDisplayTest, FdOnAMessageThatTakesNoneIsAnAnomaly) {
  auto [display, socket] = FakeDisplay::Create({});
  UniqueFd pixels = Pixels(4, 4, 0);
  SendWithFd(socket, Request::kCursorPos, gpu::display::CursorPos{0, 1, 1}, pixels.get());
  ASSERT_TRUE(WaitForMessages(display, 1));
  EXPECT_EQ(display.Anomalies().size(), 1u);
}

TEST(FakeDisplayTest, HeldDmabufUpdateStopsReadingUntilReleased) {
  auto [display, socket] =
      FakeDisplay::Create({.dmabuf_update_reply = DmabufUpdateReply::kWhenReleased});
  UniqueFd pixels = Pixels(4, 4, 0);
  SendWithFd(socket, Request::kDmabufScanout, Layout(4, 4, 0), pixels.get());
  Send(socket, Request::kDmabufUpdate, gpu::display::Update{0, 0, 0, 4, 4});
  Send(socket, Request::kCursorPos, gpu::display::CursorPos{0, 5, 6});
  ASSERT_TRUE(display.WaitFor([](const FakeDisplayState& state) { return state.blocked; }, kWait));
  EXPECT_EQ(display.Snapshot().messages.size(), 2u) << "QEMU reads nothing while it owes a reply";

  display.ReleaseDmabufUpdates();
  MessageHeader reply{};
  ASSERT_EQ(recv(socket.get(), &reply, sizeof(reply), MSG_WAITALL),
            static_cast<ssize_t>(sizeof(reply)));
  EXPECT_EQ(reply.request, static_cast<uint32_t>(Request::kDmabufUpdate));
  ASSERT_TRUE(WaitForMessages(display, 3));
  EXPECT_EQ(display.Cursor(0).x, 5u);
  EXPECT_EQ(display.Snapshot().dmabuf_updates_answered, 1u);
}

TEST(FakeDisplayTest, DmabufScanoutWithoutFdDisablesAndDropsTheBuffer) {
  auto [display, socket] = FakeDisplay::Create({});
  UniqueFd pixels = Pixels(4, 4, 0);
  SendWithFd(socket, Request::kDmabufScanout, Layout(4, 4, 0), pixels.get());
  Send(socket, Request::kDmabufScanout, gpu::display::DmabufScanout{});
  ASSERT_TRUE(WaitForMessages(display, 2));
  EXPECT_FALSE(display.Snapshot().dmabufs[0]);
  EXPECT_FALSE(display.Framebuffer(0));
  EXPECT_TRUE(display.Anomalies().empty());
}

}  // namespace
}  // namespace vgpu::test
