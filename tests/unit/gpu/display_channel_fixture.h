// A DisplayChannel test: the daemon's event loop, pumped by the test thread, and FakeDisplay
// (QEMU's side of the GPU socket) on its own thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <utility>

#include "base/event_loop.h"
#include "gpu/display_channel.h"
#include "loop_pump.h"
#include "support/fake_display.h"

namespace vgpu::gpu::testing {

class DisplayChannelFixture : public ::testing::Test {
 protected:
  static constexpr std::chrono::milliseconds kPumpTimeout{5000};

  void SetUp() override { ASSERT_TRUE(loop_.Init()); }

  // Runs the loop until `condition` holds; false after `timeout`.
  bool PumpUntil(const std::function<bool()>& condition,
                 std::chrono::milliseconds timeout = kPumpTimeout) {
    return PumpLoopUntil(loop_, condition, timeout);
  }

  // Attaches a FakeDisplay made with `options`; the handshake is left to run.
  test::FakeDisplay Connect(DisplayChannel& channel, test::FakeDisplayOptions options = {}) {
    auto [display, socket] = test::FakeDisplay::Create(std::move(options));
    channel.Attach(std::move(socket));
    return std::move(display);
  }

  // Attaches and waits for the handshake.
  test::FakeDisplay ConnectAndHandshake(DisplayChannel& channel,
                                        test::FakeDisplayOptions options = {}) {
    test::FakeDisplay display = Connect(channel, std::move(options));
    EXPECT_TRUE(PumpUntil([&] { return channel.handshake_done(); }));
    return display;
  }

  EventLoop loop_;
};

}  // namespace vgpu::gpu::testing
