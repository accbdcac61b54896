// FakeDisplay's own checks: the anomalies it must report when a back-end gets the protocol wrong.
#include "support/fake_display.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

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

}  // namespace
}  // namespace vgpu::test
