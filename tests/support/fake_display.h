// FakeDisplay: QEMU's side of the vhost-user GPU socket, for tests.
//
//   auto [display, daemon_end] = test::FakeDisplay::Create({});   // Answers like QEMU 10.
//   frontend.SetGpuSocket(std::move(daemon_end));                  // VHOST_USER_GPU_SET_SOCKET.
//   ASSERT_TRUE(display.WaitFor([](const test::FakeDisplayState& state) {
//     return state.Count(gpu::display::Request::kUpdate) > 0;
//   }, std::chrono::seconds(5)));
//   std::optional<test::FakeFramebuffer> frame = display.Framebuffer(0);
//   EXPECT_TRUE(display.Snapshot().anomalies.empty());
//
// It owns one end of a socketpair and serves it on its own thread, the way
// hw/display/vhost-user-gpu.c does: it answers GET_PROTOCOL_FEATURES, GET_DISPLAY_INFO and
// GET_EDID (each can be switched off, as old QEMUs never answer what they do not know), keeps a
// framebuffer per scanout (SCANOUT creates it, UPDATE composites into it with pixman SRC and
// QEMU's clipping, SCANOUT with width 0 disables it), the cursor of each scanout, a log of every
// message, and a list of everything QEMU would choke on or silently drop ("anomalies"): a size
// that does not match the message type, an UPDATE without a surface, a scanout id out of range,
// a message that needs a protocol feature that was not negotiated, GET_EDID that QEMU would not
// answer, an fd on a message that takes none. A correct back-end leaves `anomalies` empty.
//
// Dmabufs, like a QEMU whose console has GL: DMABUF_SCANOUT(2) keeps the fd it carries (the
// previous one closed) and makes the scanout's framebuffer; DMABUF_UPDATE reads the rectangle
// through the fd (mmap, so a memfd serves as well as a real dmabuf) into it, flipped unless
// Y_0_TOP; DMABUF_SCANOUT without an fd drops both. QEMU answers DMABUF_UPDATE once its UI has
// drawn and reads nothing more from the socket until then: so does this fake, at once, when
// ReleaseDmabufUpdates() is called, or never (dmabuf_update_reply).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/unique_fd.h"
#include "gpu/display_protocol.h"

namespace vgpu::test {

// One VMM output (console) as GET_DISPLAY_INFO reports it.
struct FakeOutput {
  bool enabled = true;
  uint32_t width = 1280;
  uint32_t height = 800;
};

// When DMABUF_UPDATE is answered. Until then the fake reads nothing more (QEMU's gl_block).
enum class DmabufUpdateReply {
  kAtOnce,        // A console that draws synchronously (or has no GL).
  kWhenReleased,  // At the next ReleaseDmabufUpdates().
  kNever,         // A UI that never draws: the back-end's reply timeout must save it.
};

struct FakeDisplayOptions {
  // What GET_PROTOCOL_FEATURES answers: 0 like QEMU 7.2, EDID like 8.1, EDID|DMABUF2 like 8.2+.
  uint64_t protocol_features =
      (uint64_t{1} << gpu::display::kFeatureEdid) | (uint64_t{1} << gpu::display::kFeatureDmabuf2);
  // Whether each request is answered at all.
  bool answer_protocol_features = true;
  bool answer_display_info = true;
  bool answer_edid = true;
  // The VMM's outputs; their count is QEMU's max_outputs (default 1, 1280x800, like QEMU).
  std::vector<FakeOutput> outputs = {FakeOutput{}};
  // EDID bytes answered for every output; empty: a fixed 128-byte block (monitor name
  // "FakeDisplay", so tests can tell it from the daemon's own EDID).
  std::vector<uint8_t> edid;
  // The resp_edid.size field. QEMU sets 1024 (the whole array).
  uint32_t edid_size_field = 1024;
  // Start with reading switched off (see SetReading).
  bool reading = true;
  // SO_SNDBUF of the daemon's end, 0: the default. A small one makes back-pressure quick.
  int daemon_send_buffer = 0;
  // Largest message accepted before the fake gives up on the stream (QEMU would g_malloc it).
  uint32_t max_message_size = 256u << 20;
  DmabufUpdateReply dmabuf_update_reply = DmabufUpdateReply::kAtOnce;
};

// A surface created by SCANOUT, x8r8g8b8, `width` pixels per row, no padding.
struct FakeFramebuffer {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint32_t> pixels;
  // QEMU shows a new surface at its first UPDATE ("replace surface on next update").
  bool shown = false;
  uint64_t updates = 0;

  uint32_t At(uint32_t x, uint32_t y) const { return pixels[size_t{y} * width + x]; }
};

struct FakeCursor {
  bool defined = false;  // A CURSOR_UPDATE has come.
  bool visible = false;
  uint32_t x = 0;
  uint32_t y = 0;
  uint32_t hot_x = 0;
  uint32_t hot_y = 0;
  std::vector<uint32_t> image;  // 64 x 64 a8r8g8b8 once defined.
};

// The dmabuf a scanout shows (DMABUF_SCANOUT or DMABUF_SCANOUT2 with an fd).
struct FakeDmabuf {
  gpu::display::DmabufScanout scanout{};  // The message's fields.
  std::optional<uint64_t> modifier;       // DMABUF_SCANOUT2 only.
  uint64_t buffer_bytes = 0;              // The fd's size (lseek SEEK_END).
  uint64_t updates = 0;                   // DMABUF_UPDATEs drawn from it.
  // The last DMABUF_UPDATE could read the buffer and composite it (x8r8g8b8 or a8r8g8b8).
  bool readable = false;
};

struct ReceivedMessage {
  uint32_t request = 0;
  uint32_t flags = 0;
  uint32_t size = 0;
  bool had_fd = false;
  // An UPDATE's first and last pixels as sent (whatever its scanout shows later).
  uint32_t first_pixel = 0;
  uint32_t last_pixel = 0;
};

struct FakeDisplayState {
  std::vector<ReceivedMessage> messages;
  std::vector<std::string> anomalies;
  std::vector<std::optional<FakeFramebuffer>> framebuffers;  // Per output.
  std::vector<FakeCursor> cursors;                           // Per output.
  std::vector<std::optional<FakeDmabuf>> dmabufs;            // Per output.
  bool blocked = false;  // A DMABUF_UPDATE waits for its reply; nothing more is read.
  uint64_t dmabuf_updates_answered = 0;
  std::optional<uint64_t> negotiated_features;  // From SET_PROTOCOL_FEATURES.
  bool peer_closed = false;                     // EOF, a reset, or the stream given up on.

  size_t Count(gpu::display::Request request) const;
};

class FakeDisplay {
 public:
  // Makes the socketpair and starts serving one end. The UniqueFd is the daemon's end. Aborts
  // if the host cannot make a socketpair (no test could run).
  static std::pair<FakeDisplay, UniqueFd> Create(FakeDisplayOptions options = {});

  FakeDisplay(FakeDisplay&&) noexcept;
  FakeDisplay& operator=(FakeDisplay&&) noexcept;
  ~FakeDisplay();  // Stops the thread and closes QEMU's end.

  // Waits until `predicate` holds (checked under the state's lock after every message). False
  // when `timeout` passes first.
  bool WaitFor(const std::function<bool(const FakeDisplayState&)>& predicate,
               std::chrono::milliseconds timeout) const;

  FakeDisplayState Snapshot() const;
  size_t Count(gpu::display::Request request) const;
  std::optional<FakeFramebuffer> Framebuffer(uint32_t scanout_id) const;
  FakeCursor Cursor(uint32_t scanout_id) const;
  std::vector<std::string> Anomalies() const;

  // Switches reading the socket on or off (off: like QEMU blocked on a GL flush, the daemon's
  // sends pile up in the socket and then time out).
  void SetReading(bool reading);
  // Waits until bytes from the daemon wait unread in QEMU's end (FIONREAD > 0): with reading
  // off, the proof that a send has started. False when `timeout` passes first.
  bool WaitForUnreadBytes(std::chrono::milliseconds timeout) const;
  // Waits until the daemon has read everything this side sent (SIOCOUTQ of QEMU's end is 0): a
  // reply sent with SendRaw is then in the daemon's hands, being or been handled on its device
  // thread. False when `timeout` passes first.
  bool WaitUntilDaemonHasRead(std::chrono::milliseconds timeout) const;
  // Answers the DMABUF_UPDATE that waits (kWhenReleased, kNever) and reads on, until the next
  // one; returns once the reply went out (at once when none waits).
  void ReleaseDmabufUpdates();
  // Writes raw bytes to the daemon (malformed replies). Blocks until they are written.
  void SendRaw(std::span<const uint8_t> bytes);
  // Shuts QEMU's end down (like QEMU closing the chardev on reset): the daemon sees EOF.
  void Disconnect();

 private:
  struct Shared;
  explicit FakeDisplay(std::unique_ptr<Shared> shared);

  std::unique_ptr<Shared> shared_;
};

}  // namespace vgpu::test
