// Fuzz target: the replies the VMM sends on the vhost-user GPU socket. First ParseDisplayReply
// (a pure function) over the input as a byte stream, then a DisplayChannel driven by the same
// input as a script, with the VMM's end of its socket played here: arbitrary reply bytes arrive
// between requests, so framing, FIFO matching, the handshake, detach and re-attach all meet
// hostile input.
//
// Input: u8 expected request (for the parser: 0 none, else the Request with that value), then
// the bytes. The parser reads them as replies one after the other. The channel reads them as
// operations, by u8 op % 8:
//   0  the VMM writes u16-length-prefixed bytes      4  SendUpdate of a small rectangle
//   1  RequestDisplayInfo                              5  cursor position, hide or image
//   2  RequestEdid(u8 scanout)                         6  attach a new socket (a guest reboot)
//   3  SendScanout(u8 scanout, u16 width, u16 height)  7  the VMM shuts its end
// After each operation the VMM's end is drained and the channel's event loop runs once.
//
// Oracles besides the sanitizers: a parsed reply lies inside the bytes and has exactly the size
// the expected request's reply has, and every request's callback runs at most once.
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "base/event_loop.h"
#include "base/log.h"
#include "fuzz_guest_memory.h"
#include "fuzz_input.h"
#include "fuzz_support.h"
#include "gpu/display_channel.h"
#include "gpu/display_reply_parser.h"

namespace vgpu::fuzz {
namespace {

namespace display = gpu::display;

void Check(bool condition, const char* what) {
  CheckInvariant("display_reply_fuzzer", condition, what);
}

void FuzzParser(std::optional<display::Request> expected, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    Result<std::optional<display::ParsedReply>> parsed =
        display::ParseDisplayReply(bytes, expected);
    if (!parsed || !*parsed) return;
    const display::ParsedReply& reply = **parsed;
    Check(expected.has_value(), "a reply parsed with no request pending");
    Check(reply.consumed >= sizeof(display::MessageHeader) && reply.consumed <= bytes.size(),
          "consumed outside the bytes");
    Check(reply.payload.data() >= bytes.data() &&
              reply.payload.data() + reply.payload.size() <= bytes.data() + bytes.size(),
          "payload outside the bytes");
    Check(reply.payload.size() == display::ReplyPayloadSize(*expected).value_or(~0u),
          "payload size differs from the request's reply size");
    bytes = bytes.subspan(reply.consumed);
  }
}

// Counts callback runs; a second run of the same callback is a bug.
std::function<void()> OnceChecker() {
  auto runs = std::make_shared<int>(0);
  return [runs] { Check(++*runs == 1, "a request callback ran twice"); };
}

class ChannelSession {
 public:
  ChannelSession() { Attach(); }
  ~ChannelSession() {
    channel_.reset();  // Before the VMM's end, as in the daemon.
  }

  void Run(FuzzInput& input) {
    const uint8_t op = input.Take<uint8_t>() % 8;
    switch (op) {
      case 0: {
        std::span<const uint8_t> bytes = input.TakeBytes(input.Take<uint16_t>());
        if (vmm_.valid())
          (void)!send(vmm_.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
      }
      case 1:
        channel_->RequestDisplayInfo(
            [once = OnceChecker()](std::optional<gpu::RespDisplayInfo>) { once(); });
        break;
      case 2:
        channel_->RequestEdid(input.Take<uint8_t>(),
                              [once = OnceChecker()](std::optional<gpu::RespEdid>) { once(); });
        break;
      case 3: {
        const uint8_t scanout = input.Take<uint8_t>();
        const uint16_t width = input.Take<uint16_t>();
        (void)channel_->SendScanout(scanout, width, input.Take<uint16_t>());
        break;
      }
      case 4: {
        const uint8_t scanout = input.Take<uint8_t>();
        const uint8_t x = input.Take<uint8_t>();
        const uint8_t y = input.Take<uint8_t>();
        const uint8_t size = input.Take<uint8_t>();
        static uint8_t pixels[8 * 8 * 4] = {};
        (void)channel_->SendUpdate(scanout, x, y, 1 + size % 8, 1 + (size >> 4) % 8, pixels, 8 * 4);
        break;
      }
      case 5: {
        const uint8_t which = input.Take<uint8_t>();
        const uint8_t scanout = input.Take<uint8_t>();
        static uint32_t cursor[64 * 64] = {};
        if (which % 3 == 0) (void)channel_->SendCursorPos(scanout, which, which);
        if (which % 3 == 1) (void)channel_->SendCursorHide(scanout, which, which);
        if (which % 3 == 2) (void)channel_->SendCursorUpdate(scanout, 1, 2, 3, 4, cursor);
        break;
      }
      case 6:
        Attach();
        break;
      case 7:
        if (vmm_.valid()) shutdown(vmm_.get(), SHUT_RDWR);
        break;
    }
    Drain();
    FuzzEventLoop().RunOnce(0);
  }

 private:
  void Attach() {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
      FuzzSetupFailed("socketpair");
    if (!channel_) {
      gpu::DisplayChannelOptions options;
      options.reply_timeout = std::chrono::seconds(600);  // Never within one input.
      channel_ = std::make_unique<gpu::DisplayChannel>(FuzzEventLoop(), options);
    }
    channel_->Attach(UniqueFd(pair[0]));
    vmm_ = UniqueFd(pair[1]);
  }

  void Drain() {
    if (!vmm_.valid()) return;
    uint8_t buffer[32768];
    while (recv(vmm_.get(), buffer, sizeof(buffer), MSG_DONTWAIT) > 0) {
    }
  }

  std::unique_ptr<gpu::DisplayChannel> channel_;
  UniqueFd vmm_;
};

}  // namespace
}  // namespace vgpu::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vgpu::fuzz::SetFuzzLogLevel();
  vgpu::fuzz::FuzzEventLoop();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vgpu::fuzz;
  FuzzInput input(data, size);
  const uint8_t expected_value = input.Take<uint8_t>();
  std::optional<display::Request> expected;
  if (expected_value != 0) expected = static_cast<display::Request>(expected_value);
  FuzzParser(expected, std::span<const uint8_t>(data, size).subspan(std::min<size_t>(size, 1)));

  ChannelSession session;
  for (int operations = 0; !input.empty() && operations < 256; ++operations) session.Run(input);
  return 0;
}
