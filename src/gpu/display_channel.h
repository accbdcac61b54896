// DisplayChannel: this back-end's side of the vhost-user GPU socket (the display output to the
// VMM). Device thread only.
//
//   DisplayChannel display(loop);                      // loop: the device thread's EventLoop.
//   display.Attach(std::move(socket));                 // From VHOST_USER_GPU_SET_SOCKET.
//   display.RequestDisplayInfo([](std::optional<RespDisplayInfo> info) { ... });
//   display.SendScanout(0, 1280, 800);
//   display.SendUpdate(0, 0, 0, 1280, 800, pixels, stride);   // x8r8g8b8 rows.
//   display.SendDmabufScanout(scanout, dmabuf.get());          // Or a dmabuf the VMM draws...
//   display.SendDmabufUpdate(update, [](bool drawn) { ... });  // ...and a reply when it has.
//
// Spec: QEMU docs/interop/vhost-user-gpu.rst; what QEMU does with the requests it answers is in
// docs/ARCHITECTURE.md, "What QEMU does that the daemon relies on".
//
// Handshake. Attach() sends GET_PROTOCOL_FEATURES and returns; when the reply comes (read in an
// EventLoop watch, never waited for) it sends SET_PROTOCOL_FEATURES with reply & (EDID|DMABUF2).
// Requests made before then wait for it. Fire-and-forget messages go out at once.
//
// Requests and replies. The protocol has no request ids: the VMM answers in request order, so
// replies are matched first-in first-out. A request without a reply within reply_timeout
// completes with nullopt. After such a timeout a late reply could be taken for the answer to a
// later request, so the channel stops asking: from then on, until the next Attach(), every
// request completes with nullopt at once and nothing more is sent for it, while fire-and-forget
// messages still go out (whatever the VMM sends back is read and thrown away). GET_EDID is sent
// only where QEMU is sure to answer (EDID negotiated, and a scanout that the VMM's last display
// info showed enabled, or scanout 0 before any): QEMU never answers one for scanout_id >=
// max_outputs.
//
// Callbacks. Each request's callback runs exactly once, on the device thread: from the event loop
// (a reply, a timeout, the VMM closing the socket), or synchronously inside the call that ends
// it: Request*() and SendDmabufUpdate() themselves when the answer is known to be nullopt (not
// attached, EDID not negotiated, replies no longer trusted), Attach()/Detach(), and any Send*()
// that fails and detaches. Callbacks may call back into the channel. Destroying the channel drops
// pending callbacks without running them.
//
// Sends. Each message is one sendmsg(MSG_NOSIGNAL) of header + payload (a lent UPDATE: see
// "Lending"): QEMU reads messages with blocking reads in its main loop, so a torn message would
// stall it. The socket
// is blocking with SO_SNDTIMEO = send_timeout, so a VMM that stops reading makes a send fail
// within about that time instead of blocking forever, and nothing is buffered here. A send that
// fails, times out or goes out partly (the stream is then corrupt) detaches the socket: the
// display is gone, the guest keeps running.
//
// Lending. A large UPDATE of pixels in pages the caller may lend (a HostImage's, a guest blob's)
// goes as its header (sendmsg) followed by references to those pages, not copies: vmsplice() puts
// them into a pipe and splice() moves them on into the socket, from where the VMM's read copies
// them out. That takes the largest part of a frame's cost, the kernel's copy into the socket, off
// the device thread (docs/PERFORMANCE.md). The VMM still reads one ordinary UPDATE; only these
// calls come between its header and its last byte, as a sendmsg waits while the socket's buffer
// is full. An UPDATE of the daemon's own pages is a loan: until MayStillRead() says the VMM has
// read it (the socket's queue, SIOCOUTQ, was seen empty since), the pages must not change; their
// owner moves its pixels to new pages instead (Renderer::MovePixelsToNewPages). A closed
// socket's loans never end: the VMM may still be reading what was queued on it. A guest's pages
// are the guest's to change, lent or copied. Where splicing fails before the message is whole (a
// kernel that cannot splice into this socket, a filter that refuses the call), the rest is copied
// and the channel copies from then on.
//
// Protocol errors (a reply that is unsolicited, oversized, of the wrong size or without the reply
// flag), EOF and connection resets also detach the socket.
//
// Dmabufs. DMABUF_SCANOUT(2) carries the dmabuf as SCM_RIGHTS on its one sendmsg; the VMM keeps
// its own reference. DMABUF_UPDATE is a request like the others: QEMU answers it (empty payload)
// once its UI has drawn the rectangle, and stops reading this socket until then, so its reply is
// awaited through the same queue and timeout, never by blocking the thread.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "base/event_loop.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "gpu/command_recorder.h"
#include "gpu/display_protocol.h"
#include "gpu/display_reply_parser.h"
#include "gpu/protocol.h"

namespace vgpu::gpu {

struct DisplayChannelOptions {
  // How long a request waits for its reply before it completes with nullopt.
  std::chrono::milliseconds reply_timeout{1000};
  // SO_SNDTIMEO: how long one send may wait for the VMM to make room in the socket.
  std::chrono::milliseconds send_timeout{1000};
  // Whether SendUpdateLending may lend pages (see the file comment); false: it copies, as
  // SendUpdate does. Pages are lent only where SIGPIPE is ignored when the channel is made.
  bool lend_pages = true;
};

struct DisplayChannelStatistics {
  uint64_t messages_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t updates_sent = 0;  // UPDATE messages.
  // Sends a signal cut short and that then went on with the rest (display_channel.cc).
  uint64_t partial_sends_resumed = 0;
  // UPDATEs whose rows went as lent pages, and their pixel bytes.
  uint64_t lent_updates = 0;
  uint64_t lent_bytes = 0;
};

class DisplayChannel {
 public:
  using DisplayInfoCallback = std::function<void(std::optional<RespDisplayInfo>)>;
  using EdidCallback = std::function<void(std::optional<RespEdid>)>;
  // True: the VMM replied (it has drawn). False: no reply will come (see the file comment).
  using DmabufUpdateCallback = std::function<void(bool drawn)>;

  explicit DisplayChannel(EventLoop& loop, DisplayChannelOptions options = {});
  // The device thread's loop the channel runs on (for timers of its users).
  EventLoop& loop() const { return loop_; }
  ~DisplayChannel();
  DisplayChannel(const DisplayChannel&) = delete;
  DisplayChannel& operator=(const DisplayChannel&) = delete;

  // Takes the VMM's GPU socket, replacing (and closing) any previous one, and starts the
  // handshake. An fd that cannot be set up is logged and dropped (attached() stays false).
  void Attach(UniqueFd socket);
  // Closes the socket; pending requests complete with nullopt. Harmless when not attached.
  void Detach();

  bool attached() const { return socket_.valid(); }
  // Changes with every Attach/Detach: whether the socket is still the one a scanout was
  // announced on.
  uint64_t generation() const { return generation_; }
  bool handshake_done() const { return handshake_done_; }
  bool supports_edid() const;
  bool supports_dmabuf2() const;
  // False after a request timed out on this socket (see the file comment).
  bool replies_trusted() const { return replies_trusted_; }
  const DisplayChannelStatistics& statistics() const { return statistics_; }

  // GET_DISPLAY_INFO: the VMM's window sizes.
  void RequestDisplayInfo(DisplayInfoCallback callback);
  // GET_EDID for `scanout_id`; nullopt at once when QEMU would not answer (see the file comment).
  void RequestEdid(uint32_t scanout_id, EdidCallback callback);

  // SCANOUT: a width x height surface for the scanout; width 0 disables it.
  Result<void> SendScanout(uint32_t scanout_id, uint32_t width, uint32_t height);
  // UPDATE: a width x height rectangle at (x, y) of x8r8g8b8 pixels, rows `source_stride` bytes
  // apart starting at `first_pixel`. Rows are sent straight from there (one iovec when they are
  // contiguous, one per row when they fit in IOV_MAX); only an update of more rows than that
  // with gaps between them is copied into a staging buffer first.
  Result<void> SendUpdate(uint32_t scanout_id, uint32_t x, uint32_t y, uint32_t width,
                          uint32_t height, const uint8_t* first_pixel, size_t source_stride);
  // UPDATE as SendUpdate, with the rows' pages lent instead of copied where the update is at
  // least kMinLentUpdateBytes in pieces of kMinLentPieceBytes or more on average: rows that follow
  // one another are one piece (see the file comment, "Lending"). Only for rows the caller may
  // lend (renderer::DisplayRows::lendable). Returns the loan, for MayStillRead() before the rows
  // change; 0 when they were copied (nothing is lent).
  static constexpr uint32_t kMinLentUpdateBytes = 128 * 1024;
  // Lent, each piece is a piece of a page in the socket; reading many that are shorter than a
  // page costs the VMM more than their copy saves here (a 607-pixel-wide damage rectangle:
  // docs/PERFORMANCE.md).
  static constexpr uint32_t kMinLentPieceBytes = 4096;
  Result<uint64_t> SendUpdateLending(uint32_t scanout_id, uint32_t x, uint32_t y, uint32_t width,
                                     uint32_t height, const uint8_t* first_pixel,
                                     size_t source_stride);
  // Whether the VMM may still read the pages of `loan` (0: none): false once the socket's queue
  // was seen empty after it; true for a loan on a socket since closed.
  bool MayStillRead(uint64_t loan);
  // UPDATE whose width * height * 4 pixel bytes are `pixels`, in order (rows gathered from where
  // they are, such as a blob's guest pages). At most kMaxUpdateIovecs of them. Lent as
  // SendUpdateLending lends, without a loan to keep: these are guest pages, which the guest may
  // change while the VMM reads them whether they are lent or copied.
  static constexpr size_t kMaxUpdateIovecs = IOV_MAX - 1;  // One iovec is the message header's.
  Result<void> SendUpdateGathered(uint32_t scanout_id, uint32_t x, uint32_t y, uint32_t width,
                                  uint32_t height, std::span<const iovec> pixels);
  // CURSOR_POS (shown) and CURSOR_POS_HIDE.
  Result<void> SendCursorPos(uint32_t scanout_id, uint32_t x, uint32_t y);
  Result<void> SendCursorHide(uint32_t scanout_id, uint32_t x, uint32_t y);
  // CURSOR_UPDATE with a 64x64 a8r8g8b8 image (`pixels` points at 64 * 64 values); always the
  // full 16404-byte payload, because QEMU copies that much whatever `size` says.
  Result<void> SendCursorUpdate(uint32_t scanout_id, uint32_t x, uint32_t y, uint32_t hot_x,
                                uint32_t hot_y, const uint32_t* pixels);
  // DMABUF_SCANOUT2 when DMABUF2 was negotiated, else DMABUF_SCANOUT (the modifier is then left
  // to the VMM): from now on the scanout shows `dmabuf` (one plane at offset 0), sent along as
  // SCM_RIGHTS. The caller keeps its fd.
  Result<void> SendDmabufScanout(const display::DmabufScanout2& scanout, int dmabuf);
  // DMABUF_SCANOUT without an fd: the VMM stops showing the scanout's dmabuf and releases it.
  Result<void> SendDmabufScanoutDisable(uint32_t scanout_id);
  // DMABUF_UPDATE of a scanout-relative rectangle; `done` runs once, as any request's callback.
  void SendDmabufUpdate(const display::Update& update, DmabufUpdateCallback done);

 private:
  // A reply's validated payload (empty for DMABUF_UPDATE's), or nullopt when none will come.
  using ReplyPayload = std::optional<std::span<const uint8_t>>;
  // A request that expects a reply.
  struct PendingRequest {
    display::Request request = display::Request::kNone;
    uint32_t scanout_id = 0;   // GET_EDID only.
    display::Update update{};  // DMABUF_UPDATE only.
    std::function<void(ReplyPayload payload)> complete;
    std::chrono::steady_clock::time_point deadline{};
  };

  // Header plus the largest accepted reply: a complete reply always fits.
  static constexpr size_t kReadBufferSize =
      sizeof(display::MessageHeader) + display::kMaxReplyPayload;

  bool SetUpSocket(UniqueFd socket);
  void StartHandshake();
  void FinishHandshake(ReplyPayload payload);
  void Submit(PendingRequest request);
  void SendRequest(PendingRequest request);
  void ArmTimer();
  void OnTimer();
  void TimeOutRequests();
  void OnSocketReadable();
  // Parses and completes the replies in read_buffer_. False when the channel changed under it
  // (detached or re-attached by a callback or an error).
  bool ProcessReplies();
  void CompleteAll(std::deque<PendingRequest> requests);

  // Sends header (+ payload_header) + `payload` iovecs as one message, with `fd` (if not -1)
  // attached as SCM_RIGHTS. `bytes_after`: payload bytes the header counts that the caller sends
  // right after (SpliceRows).
  Result<void> SendMessage(display::Request request, std::span<const uint8_t> payload_header,
                           std::span<const iovec> payload, int fd = -1, uint32_t bytes_after = 0);
  // Sends what `message` holds, bytes `sent_before` to `end` of a message (partial sends resumed
  // until the send timeout); a failure detaches (SendFailed).
  Result<void> SendAll(msghdr& message, display::Request request, uint64_t sent_before,
                       uint64_t end);
  // Logs why a send of `request` stopped after `sent` of `total` bytes, detaches, and returns the
  // error.
  Result<void> SendFailed(display::Request request, int error, uint64_t sent, uint64_t total);
  // SendUpdate, lending the rows' pages where `lendable` and WorthLending say so: the loan, or
  // 0 when they were copied.
  Result<uint64_t> SendRows(uint32_t scanout_id, uint32_t x, uint32_t y, uint32_t width,
                            uint32_t height, const uint8_t* first_pixel, size_t source_stride,
                            bool lendable);
  bool WorthLending(uint32_t pixel_bytes, size_t pieces) const;
  // A lent UPDATE of the pieces in iovecs_: its loan, or 0 when they ended up copied.
  Result<uint64_t> SendLentUpdate(const display::Update& update, uint32_t pixel_bytes);
  // The rows of a lent UPDATE whose header went, `message_bytes` in all: true when lent, false
  // when splicing failed and they were copied.
  Result<bool> SpliceRows(std::span<iovec> rows, uint64_t message_bytes);
  // Reads `bytes` left in the lending pipe after a failed splice; false if it cannot.
  bool DrainLendingPipe(size_t bytes);
  Result<void> SendCursorPosition(display::Request request, uint32_t scanout_id, uint32_t x,
                                  uint32_t y);

  EventLoop& loop_;
  const DisplayChannelOptions options_;

  UniqueFd socket_;
  UniqueFd timer_;  // timerfd for the oldest in-flight request's deadline.
  std::optional<WatchId> socket_watch_;
  std::optional<WatchId> timer_watch_;
  // Changes with every Attach/Detach, so that code running after a callback can tell whether
  // the connection it was serving is still the current one.
  uint64_t generation_ = 0;

  bool handshake_done_ = false;
  bool replies_trusted_ = true;
  uint64_t protocol_features_ = 0;  // Negotiated: sent in SET_PROTOCOL_FEATURES.
  // Scanouts QEMU is known to have (bit i: scanout i), for which GET_EDID gets an answer.
  uint32_t edid_scanouts_ = 1;

  std::deque<PendingRequest> waiting_;    // Made before the handshake finished; not sent yet.
  std::deque<PendingRequest> in_flight_;  // Sent; replies come in this order.

  std::array<uint8_t, kReadBufferSize> read_buffer_{};
  size_t read_length_ = 0;

  // Lending (see the file comment): the pipe, absent when lending is off or failed; loans are
  // numbered from 1.
  UniqueFd lending_pipe_read_;
  UniqueFd lending_pipe_write_;
  uint64_t last_loan_ = 0;
  uint64_t loans_read_ = 0;                // Every loan up to this one has been read.
  uint64_t first_loan_on_socket_ = 1;      // Loans before it were on a socket since closed...
  uint64_t loans_read_before_socket_ = 0;  // ...and those up to this one had been read.

  std::vector<iovec> iovecs_;     // Reused for UPDATE rows.
  std::vector<uint8_t> staging_;  // Reused when an UPDATE has too many strided rows.
  DisplayChannelStatistics statistics_;
  // Debug: what the VMM sends, when VHOST_DEVICE_GPU_RECORD_DISPLAY names a file
  // (command_recorder.h). The channel is made during setup, before the sandbox.
  CommandRecorder recorder_ = CommandRecorder::FromEnvironment(kRecordDisplayEnvironmentVariable);
};

}  // namespace vgpu::gpu
