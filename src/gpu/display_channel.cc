#include "gpu/display_channel.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "base/checked_math.h"
#include "base/log.h"

namespace vgpu::gpu {
namespace {

using display::MessageHeader;
using display::Request;

constexpr uint64_t kNegotiableFeatures =
    (uint64_t{1} << display::kFeatureEdid) | (uint64_t{1} << display::kFeatureDmabuf2);
constexpr uint32_t kBytesPerPixel = 4;  // x8r8g8b8.
// The largest fixed payload part that SendMessage copies next to the header (DMABUF_SCANOUT2's).
constexpr size_t kMaxPayloadHeader =
    std::max(sizeof(display::Update), sizeof(display::DmabufScanout2));
// Reads per wake-up, so that a VMM flooding the socket cannot hold the device thread.
constexpr int kMaxReadsPerWakeup = 64;
// The send buffer asked for on the display socket (SO_SNDBUF; Linux doubles it for its
// bookkeeping and caps it at net.core.wmem_max). A 1080p UPDATE is 8 MB: through the default
// buffer (net.core.wmem_default, 208 KiB) it goes in ~40 rounds, each a wake-up of the VMM and
// then of the device thread; through 2 MiB, in 4. A 10% damage rectangle (830 KB) goes at once.
constexpr int kSendBufferBytes = 1 << 20;

template <class T>
std::span<const uint8_t> BytesOf(const T& value) {
  return {reinterpret_cast<const uint8_t*>(&value), sizeof(value)};
}

// Best effort: a smaller buffer works, only with more wake-ups per large UPDATE. A larger one
// (set by the VMM) is kept. Back-pressure is unchanged: a send still blocks, bounded by
// SO_SNDTIMEO, once the VMM stops reading and the buffer is full.
void RaiseSendBuffer(int socket) {
  int current = 0;
  socklen_t length = sizeof(current);
  if (getsockopt(socket, SOL_SOCKET, SO_SNDBUF, &current, &length) == 0 &&
      current >= 2 * kSendBufferBytes) {
    return;
  }
  const int wanted = kSendBufferBytes;
  if (setsockopt(socket, SOL_SOCKET, SO_SNDBUF, &wanted, sizeof(wanted)) != 0) {
    LogWarning("display: SO_SNDBUF on the display socket: %s", ErrnoText(errno).c_str());
  }
}

// Moves `iovecs` past `count` bytes that a partial send took.
void SkipBytes(std::span<iovec>& iovecs, size_t count) {
  while (count > 0 && !iovecs.empty()) {
    iovec& first = iovecs.front();
    if (count < first.iov_len) {
      first.iov_base = static_cast<uint8_t*>(first.iov_base) + count;
      first.iov_len -= count;
      return;
    }
    count -= first.iov_len;
    iovecs = iovecs.subspan(1);
  }
}

void SkipSentBytes(msghdr& message, size_t count) {
  std::span<iovec> rest(message.msg_iov, message.msg_iovlen);
  SkipBytes(rest, count);
  message.msg_iov = rest.data();
  message.msg_iovlen = rest.size();
}

// The pipe through which lent pages go into the socket (see the file comment, "Lending"). Its
// capacity is raised so that one vmsplice takes up to 1 MiB (fs.pipe-max-size allows that much
// by default); a smaller pipe works with more calls.
constexpr int kLendingPipeBytes = 1 << 20;

}  // namespace

DisplayChannel::DisplayChannel(EventLoop& loop, DisplayChannelOptions options)
    : loop_(loop), options_(options) {
  // Made here, during setup: the sandbox has no pipe2. splice() has no MSG_NOSIGNAL: a VMM that
  // exits mid-UPDATE would raise SIGPIPE, so pages are lent only where it is ignored (the daemon
  // ignores it, server.cc).
  struct sigaction sigpipe {};
  const bool sigpipe_ignored =
      sigaction(SIGPIPE, nullptr, &sigpipe) == 0 && sigpipe.sa_handler == SIG_IGN;
  int fds[2] = {-1, -1};
  if (options_.lend_pages && sigpipe_ignored && pipe2(fds, O_CLOEXEC) == 0) {
    lending_pipe_read_ = UniqueFd(fds[0]);
    lending_pipe_write_ = UniqueFd(fds[1]);
    (void)fcntl(fds[1], F_SETPIPE_SZ, kLendingPipeBytes);  // Best effort.
  }
}

DisplayChannel::~DisplayChannel() {
  // Pending callbacks are dropped, not run: their owners may be gone already.
  if (socket_watch_) loop_.Unwatch(*socket_watch_);
  if (timer_watch_) loop_.Unwatch(*timer_watch_);
}

bool DisplayChannel::supports_edid() const {
  return (protocol_features_ & (uint64_t{1} << display::kFeatureEdid)) != 0;
}

bool DisplayChannel::supports_dmabuf2() const {
  return (protocol_features_ & (uint64_t{1} << display::kFeatureDmabuf2)) != 0;
}

void DisplayChannel::Attach(UniqueFd socket) {
  // A guest reboot brings a new socket; the old one is finished (its requests end here).
  Detach();
  if (!SetUpSocket(std::move(socket))) {
    Detach();
    return;
  }
  LogInfo("display: socket attached");
  first_loan_on_socket_ = last_loan_ + 1;
  loans_read_before_socket_ = loans_read_;
  recorder_.RecordBytes({});  // Marks a new socket in the recording.
  StartHandshake();
}

bool DisplayChannel::SetUpSocket(UniqueFd socket) {
  if (!socket.valid()) {
    LogError("display: no socket to attach");
    return false;
  }
  // Sends block, bounded by SO_SNDTIMEO; reads use MSG_DONTWAIT.
  const int flags = fcntl(socket.get(), F_GETFL);
  if (flags < 0 || fcntl(socket.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    LogError("display: fcntl on the display socket: %s", ErrnoText(errno).c_str());
    return false;
  }
  const auto timeout_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.send_timeout).count();
  timeval send_timeout{};
  send_timeout.tv_sec = static_cast<time_t>(timeout_us / 1000000);
  send_timeout.tv_usec = static_cast<suseconds_t>(timeout_us % 1000000);
  if (setsockopt(socket.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout)) != 0) {
    LogError("display: SO_SNDTIMEO on the display socket: %s", ErrnoText(errno).c_str());
    return false;
  }
  RaiseSendBuffer(socket.get());
  UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer) {
    LogError("display: timerfd_create: %s", ErrnoText(errno).c_str());
    return false;
  }
  socket_ = std::move(socket);
  timer_ = std::move(timer);
  Result<WatchId> socket_watch =
      loop_.Watch(socket_.get(), EPOLLIN | EPOLLRDHUP, [this](uint32_t) { OnSocketReadable(); });
  if (!socket_watch) {
    LogError("display: %s", socket_watch.error().message.c_str());
    return false;
  }
  socket_watch_ = *socket_watch;
  Result<WatchId> timer_watch = loop_.Watch(timer_.get(), EPOLLIN, [this](uint32_t) { OnTimer(); });
  if (!timer_watch) {
    LogError("display: %s", timer_watch.error().message.c_str());
    return false;
  }
  timer_watch_ = *timer_watch;
  return true;
}

void DisplayChannel::Detach() {
  const bool was_attached = socket_.valid();
  ++generation_;
  if (socket_watch_) loop_.Unwatch(*socket_watch_);
  if (timer_watch_) loop_.Unwatch(*timer_watch_);
  socket_watch_.reset();
  timer_watch_.reset();
  socket_.reset();
  timer_.reset();
  handshake_done_ = false;
  replies_trusted_ = true;
  protocol_features_ = 0;
  edid_scanouts_ = 1;
  read_length_ = 0;
  if (was_attached) LogInfo("display: socket detached");
  // State first, callbacks last: they may call back into the channel.
  std::deque<PendingRequest> ended;
  ended.swap(in_flight_);
  for (PendingRequest& request : waiting_) ended.push_back(std::move(request));
  waiting_.clear();
  CompleteAll(std::move(ended));
}

void DisplayChannel::CompleteAll(std::deque<PendingRequest> requests) {
  for (PendingRequest& request : requests) request.complete(std::nullopt);
}

void DisplayChannel::StartHandshake() {
  PendingRequest request;
  request.request = Request::kGetProtocolFeatures;
  request.complete = [this](ReplyPayload payload) { FinishHandshake(payload); };
  SendRequest(std::move(request));
}

void DisplayChannel::FinishHandshake(ReplyPayload payload) {
  // No reply: the socket is gone (Detach already ended the waiting requests) or the request
  // timed out (TimeOutRequests did).
  if (!payload || payload->size() != sizeof(uint64_t)) return;
  uint64_t offered = 0;
  std::memcpy(&offered, payload->data(), sizeof(offered));
  // QEMU ignores SET_PROTOCOL_FEATURES, but the spec asks for it, and it tells the VMM which
  // messages (GET_EDID, DMABUF_SCANOUT2) may come.
  const uint64_t accepted = offered & kNegotiableFeatures;
  if (!SendMessage(Request::kSetProtocolFeatures, BytesOf(accepted), {})) return;
  protocol_features_ = accepted;
  handshake_done_ = true;
  LogInfo("display: VMM protocol features 0x%llx, using 0x%llx",
          static_cast<unsigned long long>(offered), static_cast<unsigned long long>(accepted));
  std::deque<PendingRequest> waiting;
  waiting.swap(waiting_);
  for (PendingRequest& request : waiting) {
    // A failed send detaches; Submit then ends the rest with nullopt.
    Submit(std::move(request));
  }
}

void DisplayChannel::RequestDisplayInfo(DisplayInfoCallback callback) {
  PendingRequest request;
  request.request = Request::kGetDisplayInfo;
  request.complete = [this, callback = std::move(callback)](ReplyPayload payload) {
    if (!payload || payload->size() != sizeof(RespDisplayInfo)) {
      callback(std::nullopt);
      return;
    }
    RespDisplayInfo info;
    std::memcpy(&info, payload->data(), sizeof(info));
    // QEMU answers GET_EDID only for scanout_id < max_outputs, and reports as enabled only
    // outputs below that: those (and 0, which always exists) are safe to ask about.
    uint32_t scanouts = 1;
    for (uint32_t i = 0; i < kMaxScanouts; ++i) {
      if (info.pmodes[i].enabled != 0) scanouts |= 1u << i;
    }
    edid_scanouts_ = scanouts;
    callback(info);
  };
  Submit(std::move(request));
}

void DisplayChannel::RequestEdid(uint32_t scanout_id, EdidCallback callback) {
  PendingRequest request;
  request.request = Request::kGetEdid;
  request.scanout_id = scanout_id;
  request.complete = [callback = std::move(callback)](ReplyPayload payload) {
    if (!payload || payload->size() != sizeof(RespEdid)) {
      callback(std::nullopt);
      return;
    }
    RespEdid edid;
    std::memcpy(&edid, payload->data(), sizeof(edid));
    callback(edid);
  };
  Submit(std::move(request));
}

void DisplayChannel::Submit(PendingRequest request) {
  if (!attached() || !replies_trusted_) {
    request.complete(std::nullopt);
    return;
  }
  if (!handshake_done_) {
    waiting_.push_back(std::move(request));
    return;
  }
  if (request.request == Request::kGetEdid) {
    // A GET_EDID that QEMU would leave unanswered would cost the channel its replies.
    const bool known_scanout =
        request.scanout_id < kMaxScanouts && (edid_scanouts_ & (1u << request.scanout_id)) != 0;
    if (!supports_edid() || !known_scanout) {
      request.complete(std::nullopt);
      return;
    }
  }
  SendRequest(std::move(request));
}

void DisplayChannel::SendRequest(PendingRequest request) {
  const Request type = request.request;
  const display::EdidRequest edid_request{request.scanout_id};
  const display::Update update = request.update;
  std::span<const uint8_t> payload;
  if (type == Request::kGetEdid) payload = BytesOf(edid_request);
  if (type == Request::kDmabufUpdate) payload = BytesOf(update);
  request.deadline = std::chrono::steady_clock::now() + options_.reply_timeout;
  // Queued before the send, so that a failed send (which detaches) ends it too.
  const bool first = in_flight_.empty();
  in_flight_.push_back(std::move(request));
  if (first) ArmTimer();
  (void)SendMessage(type, payload, {});
}

void DisplayChannel::ArmTimer() {
  if (!timer_) return;
  itimerspec spec{};  // All zero: disarmed.
  if (!in_flight_.empty()) {
    // steady_clock is CLOCK_MONOTONIC on Linux.
    const auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 in_flight_.front().deadline.time_since_epoch())
                                 .count();
    spec.it_value.tv_sec = static_cast<time_t>(since_epoch / 1000000000);
    spec.it_value.tv_nsec = static_cast<long>(since_epoch % 1000000000);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  if (timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    LogError("display: timerfd_settime: %s", ErrnoText(errno).c_str());
  }
}

void DisplayChannel::OnTimer() {
  uint64_t expirations = 0;
  if (read(timer_.get(), &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
    LogError("display: reading the timerfd: %s", ErrnoText(errno).c_str());
  }
  if (!in_flight_.empty() && in_flight_.front().deadline <= std::chrono::steady_clock::now()) {
    TimeOutRequests();
    return;
  }
  ArmTimer();
}

void DisplayChannel::TimeOutRequests() {
  LogWarning(
      "display: no reply to %s within %lld ms; no more requests on this display socket "
      "(a late reply could not be told from the next one)",
      display::RequestName(static_cast<uint32_t>(in_flight_.front().request)),
      static_cast<long long>(options_.reply_timeout.count()));
  replies_trusted_ = false;
  read_length_ = 0;
  std::deque<PendingRequest> ended;
  ended.swap(in_flight_);
  for (PendingRequest& request : waiting_) ended.push_back(std::move(request));
  waiting_.clear();
  ArmTimer();
  CompleteAll(std::move(ended));
}

void DisplayChannel::OnSocketReadable() {
  for (int reads = 0; reads < kMaxReadsPerWakeup && attached(); ++reads) {
    const ssize_t received = recv(socket_.get(), read_buffer_.data() + read_length_,
                                  read_buffer_.size() - read_length_, MSG_DONTWAIT);
    if (received == 0) {
      LogInfo("display: the VMM closed the display socket");
      Detach();
      return;
    }
    if (received < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      LogWarning("display: reading the display socket: %s", ErrnoText(errno).c_str());
      Detach();
      return;
    }
    recorder_.RecordBytes({read_buffer_.data() + read_length_, static_cast<size_t>(received)});
    if (!replies_trusted_) {
      // Late replies to timed-out requests: read (to see EOF) and drop.
      read_length_ = 0;
      continue;
    }
    read_length_ += static_cast<size_t>(received);
    if (!ProcessReplies()) return;
  }
}

bool DisplayChannel::ProcessReplies() {
  const uint64_t generation = generation_;
  size_t offset = 0;
  for (;;) {
    std::optional<Request> expected;
    if (!in_flight_.empty()) expected = in_flight_.front().request;
    Result<std::optional<display::ParsedReply>> parsed = display::ParseDisplayReply(
        std::span<const uint8_t>(read_buffer_.data() + offset, read_length_ - offset), expected);
    if (!parsed) {
      LogError("display: protocol error from the VMM: %s; dropping the display socket",
               parsed.error().message.c_str());
      Detach();
      return false;
    }
    if (!*parsed) break;
    PendingRequest request = std::move(in_flight_.front());
    in_flight_.pop_front();
    ArmTimer();
    offset += (*parsed)->consumed;
    // The payload still lies in read_buffer_; `complete` copies it before anything else runs.
    request.complete(ReplyPayload((*parsed)->payload));
    if (generation != generation_) return false;
  }
  std::memmove(read_buffer_.data(), read_buffer_.data() + offset, read_length_ - offset);
  read_length_ -= offset;
  return true;
}

namespace {

// UPDATE's pixel bytes for a width x height rectangle, if they fit the message's u32 size field.
std::optional<uint32_t> UpdatePixelBytes(uint32_t width, uint32_t height) {
  const std::optional<uint32_t> row_bytes = CheckedMul<uint32_t>(width, kBytesPerPixel);
  const std::optional<uint32_t> pixel_bytes =
      row_bytes ? CheckedMul<uint32_t>(*row_bytes, height) : std::nullopt;
  if (!pixel_bytes || !CheckedAdd<uint32_t>(*pixel_bytes, sizeof(display::Update))) {
    return std::nullopt;
  }
  return pixel_bytes;
}

}  // namespace

Result<void> DisplayChannel::SendScanout(uint32_t scanout_id, uint32_t width, uint32_t height) {
  const display::Scanout scanout{scanout_id, width, height};
  return SendMessage(Request::kScanout, BytesOf(scanout), {});
}

Result<void> DisplayChannel::SendUpdate(uint32_t scanout_id, uint32_t x, uint32_t y, uint32_t width,
                                        uint32_t height, const uint8_t* first_pixel,
                                        size_t source_stride) {
  Result<uint64_t> sent =
      SendRows(scanout_id, x, y, width, height, first_pixel, source_stride, /*lendable=*/false);
  if (!sent) return ErrorOf(sent);
  return {};
}

Result<uint64_t> DisplayChannel::SendUpdateLending(uint32_t scanout_id, uint32_t x, uint32_t y,
                                                   uint32_t width, uint32_t height,
                                                   const uint8_t* first_pixel,
                                                   size_t source_stride) {
  return SendRows(scanout_id, x, y, width, height, first_pixel, source_stride, /*lendable=*/true);
}

Result<uint64_t> DisplayChannel::SendRows(uint32_t scanout_id, uint32_t x, uint32_t y,
                                          uint32_t width, uint32_t height,
                                          const uint8_t* first_pixel, size_t source_stride,
                                          bool lendable) {
  const std::optional<uint32_t> pixel_bytes = UpdatePixelBytes(width, height);
  if (!pixel_bytes) {
    return MakeError(ErrorKind::kInvalidArgument, "UPDATE too large for the message size field");
  }
  const uint32_t row_bytes = width * kBytesPerPixel;  // Fits: so does the whole rectangle.
  if (*pixel_bytes != 0 && (first_pixel == nullptr || (height > 1 && source_stride < row_bytes))) {
    return MakeError(ErrorKind::kInvalidArgument, "UPDATE rows overlap or are missing");
  }
  const display::Update update{scanout_id, x, y, width, height};
  const bool contiguous = height == 1 || source_stride == row_bytes;
  // Rows that follow one another are one piece.
  const bool lend = lendable && WorthLending(*pixel_bytes, contiguous ? 1 : height);
  iovecs_.clear();
  if (*pixel_bytes == 0) {
    // Header only.
  } else if (contiguous) {
    iovecs_.push_back(iovec{const_cast<uint8_t*>(first_pixel), *pixel_bytes});
  } else if (lend || height <= IOV_MAX - 1) {  // One iovec is the message header's.
    for (uint32_t row = 0; row < height; ++row) {
      iovecs_.push_back(iovec{const_cast<uint8_t*>(first_pixel + row * source_stride), row_bytes});
    }
  } else {
    // More rows than sendmsg takes iovecs, with gaps between them: one copy, so that the
    // message still goes out in one sendmsg.
    staging_.resize(*pixel_bytes);
    for (uint32_t row = 0; row < height; ++row) {
      std::memcpy(staging_.data() + size_t{row} * row_bytes, first_pixel + row * source_stride,
                  row_bytes);
    }
    iovecs_.push_back(iovec{staging_.data(), *pixel_bytes});
  }
  if (lend) return SendLentUpdate(update, *pixel_bytes);
  Result<void> sent = SendMessage(Request::kUpdate, BytesOf(update), iovecs_);
  if (!sent) return ErrorOf(sent);
  ++statistics_.updates_sent;
  return 0;
}

bool DisplayChannel::WorthLending(uint32_t pixel_bytes, size_t pieces) const {
  return lending_pipe_write_.valid() && pixel_bytes >= kMinLentUpdateBytes &&
         pixel_bytes / pieces >= kMinLentPieceBytes;
}

Result<uint64_t> DisplayChannel::SendLentUpdate(const display::Update& update,
                                                uint32_t pixel_bytes) {
  // The header says how many bytes follow; the pieces in iovecs_ go right after it.
  if (Result<void> header = SendMessage(Request::kUpdate, BytesOf(update), {}, -1, pixel_bytes);
      !header) {
    return ErrorOf(header);
  }
  const uint64_t message_bytes = sizeof(MessageHeader) + sizeof(update) + pixel_bytes;
  Result<bool> lent = SpliceRows(iovecs_, message_bytes);
  if (!lent) return ErrorOf(lent);
  ++statistics_.updates_sent;
  if (!*lent) return 0;
  ++statistics_.lent_updates;
  statistics_.lent_bytes += pixel_bytes;
  return ++last_loan_;
}

Result<bool> DisplayChannel::SpliceRows(std::span<iovec> rows, uint64_t message_bytes) {
  uint64_t rows_bytes = 0;
  for (const iovec& row : rows) rows_bytes += row.iov_len;
  uint64_t moved = 0;  // Into the socket.
  int error = 0;
  const char* failed_call = nullptr;
  while (!rows.empty()) {
    const ssize_t in =
        vmsplice(lending_pipe_write_.get(), rows.data(), std::min<size_t>(rows.size(), IOV_MAX), 0);
    if (in < 0 && errno == EINTR) continue;
    if (in <= 0) {
      error = in < 0 ? errno : EIO;
      failed_call = "vmsplice";
      break;
    }
    size_t in_pipe = static_cast<size_t>(in);
    while (in_pipe > 0) {
      const ssize_t out =
          splice(lending_pipe_read_.get(), nullptr, socket_.get(), nullptr, in_pipe, 0);
      if (out < 0 && errno == EINTR) continue;
      if (out <= 0) {
        error = out < 0 ? errno : EIO;
        failed_call = "splice";
        break;
      }
      in_pipe -= static_cast<size_t>(out);
      moved += static_cast<uint64_t>(out);
    }
    if (failed_call != nullptr) {
      // What is still in the pipe goes back out of it (read copies it), so that the pipe starts
      // empty next time; the rows are resumed after what reached the socket.
      if (!DrainLendingPipe(in_pipe)) {
        lending_pipe_read_.reset();
        lending_pipe_write_.reset();
      }
      SkipBytes(rows, static_cast<size_t>(in) - in_pipe);
      break;
    }
    SkipBytes(rows, static_cast<size_t>(in));
  }
  if (failed_call != nullptr) {
    const uint64_t sent = message_bytes - rows_bytes + moved;
    if (error == EPIPE || error == ECONNRESET || error == EAGAIN || error == EWOULDBLOCK) {
      // The VMM went or stopped reading: as for any send (the message is torn either way).
      return ErrorOf(SendFailed(Request::kUpdate, error, sent, message_bytes));
    }
    // Splicing itself failed (a kernel that cannot splice into this socket, a filter that refuses
    // the call): the message is finished by copying, and pages are copied from now on.
    LogWarning("display: %s into the display socket: %s; UPDATE pixels are copied from now on",
               failed_call, ErrnoText(error).c_str());
    lending_pipe_read_.reset();
    lending_pipe_write_.reset();
    msghdr message{};
    message.msg_iov = rows.data();
    message.msg_iovlen = rows.size();
    if (Result<void> copied = SendAll(message, Request::kUpdate, sent, message_bytes); !copied) {
      return ErrorOf(copied);
    }
  }
  ++statistics_.messages_sent;
  statistics_.bytes_sent += message_bytes;
  return failed_call == nullptr;
}

bool DisplayChannel::DrainLendingPipe(size_t bytes) {
  std::array<uint8_t, 16384> scratch;
  while (bytes > 0) {
    const ssize_t got =
        read(lending_pipe_read_.get(), scratch.data(), std::min(bytes, scratch.size()));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    bytes -= static_cast<size_t>(got);
  }
  return true;
}

bool DisplayChannel::MayStillRead(uint64_t loan) {
  if (loan == 0) return false;
  // A closed socket's queue may still be read by the VMM, and cannot be asked: its loans end only
  // where they had been seen read before it closed.
  if (loan < first_loan_on_socket_) return loan > loans_read_before_socket_;
  if (loan <= loans_read_) return false;
  if (!attached()) return true;
  int queued = 0;
  if (ioctl(socket_.get(), SIOCOUTQ, &queued) == 0 && queued == 0) loans_read_ = last_loan_;
  return loan > loans_read_;
}

Result<void> DisplayChannel::SendUpdateGathered(uint32_t scanout_id, uint32_t x, uint32_t y,
                                                uint32_t width, uint32_t height,
                                                std::span<const iovec> pixels) {
  const std::optional<uint32_t> pixel_bytes = UpdatePixelBytes(width, height);
  if (!pixel_bytes) {
    return MakeError(ErrorKind::kInvalidArgument, "UPDATE too large for the message size field");
  }
  uint64_t total = 0;
  for (const iovec& piece : pixels) total += piece.iov_len;
  if (total != *pixel_bytes || pixels.size() > kMaxUpdateIovecs) {
    return MakeError(ErrorKind::kInvalidArgument, "UPDATE pieces do not make its rectangle");
  }
  const display::Update update{scanout_id, x, y, width, height};
  if (WorthLending(*pixel_bytes, pixels.size())) {
    iovecs_.assign(pixels.begin(), pixels.end());
    Result<uint64_t> lent = SendLentUpdate(update, *pixel_bytes);
    if (!lent) return ErrorOf(lent);
    return {};
  }
  Result<void> sent = SendMessage(Request::kUpdate, BytesOf(update), pixels);
  if (sent) ++statistics_.updates_sent;
  return sent;
}

Result<void> DisplayChannel::SendCursorPos(uint32_t scanout_id, uint32_t x, uint32_t y) {
  return SendCursorPosition(Request::kCursorPos, scanout_id, x, y);
}

Result<void> DisplayChannel::SendCursorHide(uint32_t scanout_id, uint32_t x, uint32_t y) {
  return SendCursorPosition(Request::kCursorPosHide, scanout_id, x, y);
}

Result<void> DisplayChannel::SendCursorPosition(Request request, uint32_t scanout_id, uint32_t x,
                                                uint32_t y) {
  const display::CursorPos position{scanout_id, x, y};
  return SendMessage(request, BytesOf(position), {});
}

Result<void> DisplayChannel::SendCursorUpdate(uint32_t scanout_id, uint32_t x, uint32_t y,
                                              uint32_t hot_x, uint32_t hot_y,
                                              const uint32_t* pixels) {
  if (pixels == nullptr) return MakeError(ErrorKind::kInvalidArgument, "CURSOR_UPDATE: no image");
  const display::CursorPos position{scanout_id, x, y};
  const struct {
    display::CursorPos position;
    uint32_t hot_x;
    uint32_t hot_y;
  } __attribute__((packed)) fixed{position, hot_x, hot_y};
  static_assert(sizeof(fixed) + sizeof(display::CursorUpdate::data) ==
                sizeof(display::CursorUpdate));
  const iovec image{const_cast<uint32_t*>(pixels), sizeof(display::CursorUpdate::data)};
  return SendMessage(Request::kCursorUpdate, BytesOf(fixed), std::span<const iovec>(&image, 1));
}

Result<void> DisplayChannel::SendDmabufScanout(const display::DmabufScanout2& scanout, int dmabuf) {
  if (dmabuf < 0) return MakeError(ErrorKind::kInvalidArgument, "DMABUF_SCANOUT without a dmabuf");
  // QEMU takes DMABUF_SCANOUT2 only with DMABUF2 negotiated (8.2+); older ones know just the
  // first 40 bytes, and import with DRM_FORMAT_MOD_INVALID.
  if (supports_dmabuf2()) {
    return SendMessage(Request::kDmabufScanout2, BytesOf(scanout), {}, dmabuf);
  }
  return SendMessage(Request::kDmabufScanout, BytesOf(scanout.dmabuf_scanout), {}, dmabuf);
}

Result<void> DisplayChannel::SendDmabufScanoutDisable(uint32_t scanout_id) {
  // QEMU: no fd disables the scanout (dpy_gl_scanout_disable), whatever the other fields say.
  display::DmabufScanout disable{};
  disable.scanout_id = scanout_id;
  return SendMessage(Request::kDmabufScanout, BytesOf(disable), {});
}

void DisplayChannel::SendDmabufUpdate(const display::Update& update, DmabufUpdateCallback done) {
  PendingRequest request;
  request.request = Request::kDmabufUpdate;
  request.update = update;
  request.complete = [done = std::move(done)](ReplyPayload payload) {
    // The parser checked the reply's size (0).
    done(payload.has_value());
  };
  Submit(std::move(request));
}

Result<void> DisplayChannel::SendMessage(Request request, std::span<const uint8_t> payload_header,
                                         std::span<const iovec> payload, int fd,
                                         uint32_t bytes_after) {
  if (!attached()) return MakeError(ErrorKind::kClosed, "display socket not attached");
  if (payload_header.size() > kMaxPayloadHeader || payload.size() > IOV_MAX - 1) {
    return MakeError(ErrorKind::kInternal, "display message layout");
  }
  uint64_t payload_size = payload_header.size() + uint64_t{bytes_after};
  for (const iovec& part : payload) payload_size += part.iov_len;
  if (payload_size > UINT32_MAX) {
    return MakeError(ErrorKind::kInvalidArgument, "display message too large");
  }
  // Header and fixed payload part side by side: one iovec.
  std::array<uint8_t, sizeof(MessageHeader) + kMaxPayloadHeader> prefix;
  const MessageHeader header{static_cast<uint32_t>(request), 0,
                             static_cast<uint32_t>(payload_size)};
  std::memcpy(prefix.data(), &header, sizeof(header));
  if (!payload_header.empty()) {
    std::memcpy(prefix.data() + sizeof(header), payload_header.data(), payload_header.size());
  }
  std::array<iovec, IOV_MAX> message_iovecs;
  message_iovecs[0] = iovec{prefix.data(), sizeof(header) + payload_header.size()};
  std::copy(payload.begin(), payload.end(), message_iovecs.begin() + 1);
  msghdr message{};
  message.msg_iov = message_iovecs.data();
  message.msg_iovlen = 1 + payload.size();
  const uint64_t total = sizeof(header) + payload_size;
  // The fd rides on the message's first bytes: QEMU picks it up with the header
  // (qemu_chr_fe_get_msgfd).
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  if (fd >= 0) {
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    cmsghdr* rights = CMSG_FIRSTHDR(&message);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(rights), &fd, sizeof(int));
  }
  if (Result<void> sent = SendAll(message, request, 0, total - bytes_after); !sent) return sent;
  if (bytes_after == 0) {  // Otherwise counted when its last byte is sent.
    ++statistics_.messages_sent;
    statistics_.bytes_sent += total;
  }
  return {};
}

Result<void> DisplayChannel::SendAll(msghdr& message, Request request, uint64_t sent_before,
                                     uint64_t end) {
  // One sendmsg normally carries the whole message (the socket's buffer is raised above). It may
  // return a partial count twice over: when SO_SNDTIMEO ran out with some bytes sent (the VMM
  // stopped reading), and when a signal (a debugger, `strace -p`) interrupted it after some bytes.
  // Only the first is a failure: the rest is sent until the message is whole or the send timeout,
  // counted from the first call, has passed. EINTR with nothing sent is retried the same way.
  const auto deadline = std::chrono::steady_clock::now() + options_.send_timeout;
  uint64_t sent_total = sent_before;
  ssize_t sent = 0;
  while (true) {
    sent = sendmsg(socket_.get(), &message, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) break;
    sent_total += static_cast<uint64_t>(sent);
    if (sent_total == end || std::chrono::steady_clock::now() >= deadline) break;
    ++statistics_.partial_sends_resumed;
    SkipSentBytes(message, static_cast<size_t>(sent));
    // The fd went with the first part (a failed or interrupted call passes none).
    message.msg_control = nullptr;
    message.msg_controllen = 0;
  }
  if (sent_total == end) return {};
  // Here either the last call failed (sent < 0, errno says why) or it sent only part of the
  // rest after the send timeout had passed.
  return SendFailed(request, sent < 0 ? errno : EAGAIN, sent_total, end);
}

Result<void> DisplayChannel::SendFailed(Request request, int error, uint64_t sent, uint64_t total) {
  Result<void> failure;
  if (error == EPIPE || error == ECONNRESET) {
    // QEMU exiting or resetting the device, also in the middle of a message.
    LogInfo("display: the VMM closed the display socket");
    failure = MakeError(ErrorKind::kClosed, "display socket closed");
  } else if (error == EAGAIN || error == EWOULDBLOCK) {
    LogError(
        "display: %s timed out after %lld ms with %llu of %llu bytes sent: the VMM stopped "
        "reading its display socket; dropping it",
        display::RequestName(static_cast<uint32_t>(request)),
        static_cast<long long>(options_.send_timeout.count()),
        static_cast<unsigned long long>(sent), static_cast<unsigned long long>(total));
    failure = MakeError(ErrorKind::kTimedOut, "display send timed out");
  } else {
    LogError("display: sending %s: %s", display::RequestName(static_cast<uint32_t>(request)),
             ErrnoText(error).c_str());
    failure = MakeSystemError("sendmsg(display)", error);
  }
  Detach();
  return failure;
}

}  // namespace vgpu::gpu
