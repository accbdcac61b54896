#include "support/fake_display.h"

#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/sockios.h>
#include <pixman.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gpu/protocol.h"

namespace vgpu::test {
namespace {

using gpu::display::MessageHeader;
using gpu::display::Request;

constexpr size_t kReadChunk = 64 * 1024;
// A SCANOUT surface larger than this is recorded as an anomaly and not allocated.
constexpr uint64_t kMaxSurfaceBytes = 1ull << 30;
// DRM_FORMAT_XRGB8888 and DRM_FORMAT_ARGB8888 (drm_fourcc.h): the dmabufs the fake can read.
constexpr uint32_t kFourccXrgb8888 = 0x34325258;  // "XR24"
constexpr uint32_t kFourccArgb8888 = 0x34325241;  // "AR24"

bool TakesFd(Request request) {
  return request == Request::kDmabufScanout || request == Request::kDmabufScanout2;
}

// A read-only mapping of a dmabuf (or memfd), bracketed by DMA_BUF_IOCTL_SYNC as a CPU reader
// of a real dmabuf must be (the ioctl fails harmlessly on a memfd).
class DmabufView {
 public:
  DmabufView(int fd, size_t size) : fd_(fd), size_(size) {
    void* mapped = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) return;
    bytes_ = static_cast<const uint8_t*>(mapped);
    dma_buf_sync sync{DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ};
    (void)ioctl(fd_, DMA_BUF_IOCTL_SYNC, &sync);
  }
  ~DmabufView() {
    if (bytes_ == nullptr) return;
    dma_buf_sync sync{DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ};
    (void)ioctl(fd_, DMA_BUF_IOCTL_SYNC, &sync);
    munmap(const_cast<uint8_t*>(bytes_), size_);
  }
  DmabufView(const DmabufView&) = delete;
  DmabufView& operator=(const DmabufView&) = delete;

  const uint8_t* bytes() const { return bytes_; }

 private:
  int fd_;
  size_t size_;
  const uint8_t* bytes_ = nullptr;
};

std::string Format(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* format, ...) {
  char text[256];
  va_list arguments;
  va_start(arguments, format);
  std::vsnprintf(text, sizeof(text), format, arguments);
  va_end(arguments);
  return text;
}

// A fixed EDID 1.4 base block: manufacturer "FAK", a 1280x800@60 preferred timing, monitor name
// "FakeDisplay". Valid checksum.
std::vector<uint8_t> FixedEdid() {
  std::vector<uint8_t> edid(128, 0);
  const uint8_t header[8] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  std::memcpy(edid.data(), header, sizeof(header));
  edid[8] = 0x18;  // "FAK": 0 00110 00001 01011.
  edid[9] = 0x2b;
  edid[10] = 0x01;  // Product code.
  edid[16] = 1;     // Week.
  edid[17] = 34;    // 2024.
  edid[18] = 1;     // EDID 1.4.
  edid[19] = 4;
  edid[20] = 0x80;  // Digital input.
  edid[21] = 26;    // 26 x 16 cm.
  edid[22] = 16;
  edid[23] = 120;                                // Gamma 2.2.
  edid[24] = 0x06;                               // sRGB, preferred timing is native.
  for (int i = 38; i < 54; ++i) edid[i] = 0x01;  // No standard timings.
  // Detailed timing: 1280x800, 71 MHz, CVT reduced blanking.
  const uint8_t timing[18] = {0xbc, 0x1b, 0x00, 0xa0, 0x50, 0x20, 0x17, 0x30, 0x30,
                              0x20, 0x36, 0x00, 0x05, 0xa3, 0x10, 0x00, 0x00, 0x1a};
  std::memcpy(edid.data() + 54, timing, sizeof(timing));
  const uint8_t name[18] = {0x00, 0x00, 0x00, 0xfc, 0x00, 'F', 'a', 'k',  'e',
                            'D',  'i',  's',  'p',  'l',  'a', 'y', '\n', ' '};
  std::memcpy(edid.data() + 72, name, sizeof(name));
  edid[93] = 0x10;  // Dummy descriptors.
  edid[111] = 0x10;
  uint8_t sum = 0;
  for (int i = 0; i < 127; ++i) sum = static_cast<uint8_t>(sum + edid[i]);
  edid[127] = static_cast<uint8_t>(0x100 - sum);
  return edid;
}

std::optional<uint32_t> FixedSize(Request request) {
  switch (request) {
    case Request::kGetProtocolFeatures:
    case Request::kGetDisplayInfo:
      return 0;
    case Request::kSetProtocolFeatures:
      return sizeof(uint64_t);
    case Request::kCursorPos:
    case Request::kCursorPosHide:
      return sizeof(gpu::display::CursorPos);
    case Request::kCursorUpdate:
      return sizeof(gpu::display::CursorUpdate);
    case Request::kScanout:
      return sizeof(gpu::display::Scanout);
    case Request::kDmabufScanout:
      return sizeof(gpu::display::DmabufScanout);
    case Request::kDmabufUpdate:
      return sizeof(gpu::display::Update);
    case Request::kGetEdid:
      return sizeof(gpu::display::EdidRequest);
    case Request::kDmabufScanout2:
      return sizeof(gpu::display::DmabufScanout2);
    default:
      return std::nullopt;  // UPDATE (variable) and unknown requests.
  }
}

template <class T>
void AppendReply(std::vector<uint8_t>& out, Request request, const T& payload) {
  const MessageHeader header{static_cast<uint32_t>(request), gpu::display::kReplyFlag, sizeof(T)};
  const auto* header_bytes = reinterpret_cast<const uint8_t*>(&header);
  const auto* payload_bytes = reinterpret_cast<const uint8_t*>(&payload);
  // resize + memcpy rather than insert: g++ 12 at -O3 reports a false stringop-overflow on the
  // insert form.
  const size_t start = out.size();
  out.resize(start + sizeof(header) + sizeof(T));
  std::memcpy(out.data() + start, header_bytes, sizeof(header));
  std::memcpy(out.data() + start + sizeof(header), payload_bytes, sizeof(T));
}

}  // namespace

size_t FakeDisplayState::Count(Request request) const {
  return static_cast<size_t>(
      std::count_if(messages.begin(), messages.end(), [request](const ReceivedMessage& message) {
        return message.request == static_cast<uint32_t>(request);
      }));
}

struct FakeDisplay::Shared {
  FakeDisplayOptions options;
  UniqueFd socket;  // QEMU's end, non-blocking.
  UniqueFd wake;    // eventfd: stop or a change of `reading`.
  std::thread thread;

  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  FakeDisplayState state;          // Guarded by mutex.
  bool reading = true;             // Guarded by mutex.
  bool reading_applied = true;     // Guarded by mutex: what the serving thread last acted on.
  bool stop = false;               // Guarded by mutex.
  bool release_requested = false;  // Guarded by mutex: ReleaseDmabufUpdates() waits for it.

  std::mutex write_mutex;  // Replies (thread) and SendRaw (test) do not interleave.

  // Serving thread only.
  std::vector<uint8_t> buffer;
  size_t length = 0;
  // fds received, by the buffer offset of the message they came with.
  std::vector<std::pair<size_t, UniqueFd>> received_fds;
  std::vector<UniqueFd> dmabuf_fds;  // Per output: the dmabuf shown (also read under mutex).

  void Wake() {
    const uint64_t one = 1;
    (void)!write(wake.get(), &one, sizeof(one));
  }
  void Run();
  bool ReadAvailable();
  // Handles the complete messages in `buffer`, up to one that blocks (DMABUF_UPDATE).
  void ProcessBuffered();
  void ReleaseBlocked();
  void Handle(const MessageHeader& header, std::span<const uint8_t> payload,
              std::vector<UniqueFd> fds);
  // Under mutex: updates the state, returns what to send back.
  std::vector<uint8_t> Apply(const MessageHeader& header, std::span<const uint8_t> payload,
                             std::vector<UniqueFd> fds);
  void Update(const gpu::display::Update& update, std::span<const uint8_t> pixels);
  void DmabufScanout(Request request, std::span<const uint8_t> payload, std::vector<UniqueFd> fds);
  void DmabufUpdate(const gpu::display::Update& update);
  bool ValidScanout(uint32_t scanout_id, const char* what);
  void Write(std::span<const uint8_t> bytes);
  void GiveUp(std::string reason);
};

std::pair<FakeDisplay, UniqueFd> FakeDisplay::Create(FakeDisplayOptions options) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    std::perror("FakeDisplay: socketpair");
    std::abort();
  }
  UniqueFd daemon_end(fds[0]);
  auto shared = std::make_unique<Shared>();
  shared->socket = UniqueFd(fds[1]);
  shared->wake = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!shared->wake || fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0) {
    std::perror("FakeDisplay: eventfd/fcntl");
    std::abort();
  }
  if (options.daemon_send_buffer > 0) {
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &options.daemon_send_buffer,
               sizeof(options.daemon_send_buffer));
  }
  if (options.edid.empty()) options.edid = FixedEdid();
  shared->reading = options.reading;
  shared->state.framebuffers.resize(options.outputs.size());
  shared->state.cursors.resize(options.outputs.size());
  shared->state.dmabufs.resize(options.outputs.size());
  shared->dmabuf_fds.resize(options.outputs.size());
  shared->options = std::move(options);
  Shared* raw = shared.get();
  shared->thread = std::thread([raw] { raw->Run(); });
  return {FakeDisplay(std::move(shared)), std::move(daemon_end)};
}

FakeDisplay::FakeDisplay(std::unique_ptr<Shared> shared) : shared_(std::move(shared)) {}
FakeDisplay::FakeDisplay(FakeDisplay&&) noexcept = default;
FakeDisplay& FakeDisplay::operator=(FakeDisplay&&) noexcept = default;

FakeDisplay::~FakeDisplay() {
  if (!shared_) return;
  {
    std::lock_guard lock(shared_->mutex);
    shared_->stop = true;
  }
  shared_->Wake();
  shared_->thread.join();
}

void FakeDisplay::Shared::Run() {
  for (;;) {
    bool read_socket;
    bool release;
    {
      std::lock_guard lock(mutex);
      if (stop) return;
      release = release_requested;
      // Blocked on a DMABUF_UPDATE, QEMU removes the socket's read handler.
      read_socket = reading && !state.peer_closed && !state.blocked;
      // SetReading waits for this: from here on the socket is read only if `reading` says so.
      reading_applied = reading;
      changed.notify_all();
    }
    if (release) {
      ReleaseBlocked();
      continue;
    }
    pollfd fds[2] = {{read_socket ? socket.get() : -1, POLLIN, 0}, {wake.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("FakeDisplay: poll");
      return;
    }
    if (fds[1].revents != 0) {
      uint64_t count;
      (void)!read(wake.get(), &count, sizeof(count));
    }
    if (fds[0].revents != 0) ReadAvailable();
  }
}

void FakeDisplay::Shared::ReleaseBlocked() {
  bool was_blocked;
  {
    std::lock_guard lock(mutex);
    was_blocked = state.blocked;
  }
  if (was_blocked) {
    // QEMU's vhost_user_gpu_gl_flushed: the reply, then the read handler back.
    const MessageHeader reply{static_cast<uint32_t>(Request::kDmabufUpdate),
                              gpu::display::kReplyFlag, 0};
    Write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&reply), sizeof(reply)));
    {
      std::lock_guard lock(mutex);
      state.blocked = false;
      ++state.dmabuf_updates_answered;
    }
    ProcessBuffered();
  }
  std::lock_guard lock(mutex);
  release_requested = false;
  changed.notify_all();
}

bool FakeDisplay::Shared::ReadAvailable() {
  // Room for the message being read, at least one chunk.
  size_t wanted = length + kReadChunk;
  if (length >= sizeof(MessageHeader)) {
    MessageHeader header;
    std::memcpy(&header, buffer.data(), sizeof(header));
    wanted = std::max(wanted, sizeof(MessageHeader) + size_t{header.size});
  }
  if (buffer.size() < wanted) buffer.resize(wanted);

  iovec part{buffer.data() + length, buffer.size() - length};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t received = recvmsg(socket.get(), &message, MSG_CMSG_CLOEXEC);
  if (received < 0) {
    if (errno == EAGAIN || errno == EINTR) return true;
    GiveUp(Format("recvmsg: %s", std::strerror(errno)));
    return false;
  }
  if (received == 0) {
    std::lock_guard lock(mutex);
    state.peer_closed = true;
    changed.notify_all();
    return false;
  }
  std::vector<UniqueFd> fds;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
       header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(fd));
      fds.emplace_back(fd);
    }
  }
  const size_t old_length = length;
  length += static_cast<size_t>(received);
  if (!fds.empty()) {
    // Which message the fds came with: the kernel ends a read right after the bytes that carry
    // fds, and those bytes start the message their sendmsg sent, so it is the last message that
    // starts within this read.
    std::optional<size_t> owner;
    size_t start = 0;
    while (start < length) {
      if (start >= old_length) owner = start;
      if (length - start < sizeof(MessageHeader)) break;
      MessageHeader header;
      std::memcpy(&header, buffer.data() + start, sizeof(header));
      start += sizeof(MessageHeader) + size_t{header.size};
    }
    if (!owner) {
      std::lock_guard lock(mutex);
      state.anomalies.push_back("an fd came in the middle of a message");
      changed.notify_all();
    } else {
      for (UniqueFd& fd : fds) received_fds.emplace_back(*owner, std::move(fd));
    }
  }
  ProcessBuffered();
  return true;
}

void FakeDisplay::Shared::ProcessBuffered() {
  size_t offset = 0;
  while (length - offset >= sizeof(MessageHeader)) {
    {
      std::lock_guard lock(mutex);
      if (state.blocked || state.peer_closed) break;
    }
    MessageHeader header;
    std::memcpy(&header, buffer.data() + offset, sizeof(header));
    if (header.size > options.max_message_size) {
      GiveUp(Format("%s with size %u: QEMU's g_malloc would abort",
                    gpu::display::RequestName(header.request), header.size));
      return;
    }
    const size_t total = sizeof(MessageHeader) + header.size;
    if (length - offset < total) break;
    std::vector<UniqueFd> fds;
    for (auto& [start, fd] : received_fds) {
      if (start == offset && fd) fds.push_back(std::move(fd));
    }
    std::erase_if(received_fds, [](const auto& entry) { return !entry.second; });
    Handle(header, std::span<const uint8_t>(buffer.data() + offset + sizeof(header), header.size),
           std::move(fds));
    offset += total;
  }
  std::memmove(buffer.data(), buffer.data() + offset, length - offset);
  length -= offset;
  for (auto& entry : received_fds) entry.first -= offset;
  // The buffer keeps its size: shrinking and regrowing would zero-fill every large frame again,
  // which QEMU (g_malloc, no zeroing) does not pay and which would throttle benchmarks.
}

void FakeDisplay::Shared::Handle(const MessageHeader& header, std::span<const uint8_t> payload,
                                 std::vector<UniqueFd> fds) {
  std::vector<uint8_t> reply;
  {
    std::lock_guard lock(mutex);
    ReceivedMessage message{header.request, header.flags, header.size, !fds.empty()};
    const size_t pixels_at = sizeof(gpu::display::Update);
    if (static_cast<Request>(header.request) == Request::kUpdate &&
        payload.size() >= pixels_at + 4) {
      std::memcpy(&message.first_pixel, payload.data() + pixels_at, 4);
      std::memcpy(&message.last_pixel, payload.data() + payload.size() - 4, 4);
    }
    state.messages.push_back(message);
    reply = Apply(header, payload, std::move(fds));
    changed.notify_all();
  }
  if (!reply.empty()) Write(reply);
}

bool FakeDisplay::Shared::ValidScanout(uint32_t scanout_id, const char* what) {
  if (scanout_id < options.outputs.size()) return true;
  // QEMU drops these (scanout_id >= max_outputs).
  state.anomalies.push_back(
      Format("%s for scanout %u, QEMU has %zu outputs", what, scanout_id, options.outputs.size()));
  return false;
}

std::vector<uint8_t> FakeDisplay::Shared::Apply(const MessageHeader& header,
                                                std::span<const uint8_t> payload,
                                                std::vector<UniqueFd> fds) {
  std::vector<uint8_t> reply;
  const auto request = static_cast<Request>(header.request);
  const char* name = gpu::display::RequestName(header.request);
  if (!fds.empty() && !TakesFd(request)) {
    // QEMU would leave it open (or pass it to the next DMABUF_SCANOUT).
    state.anomalies.push_back(Format("%s carried %zu fd(s)", name, fds.size()));
    fds.clear();
  }
  const std::optional<uint32_t> fixed_size = FixedSize(request);
  if (request != Request::kUpdate && !fixed_size) {
    // QEMU: g_warning("unhandled message"), no reply.
    state.anomalies.push_back(Format("unknown request %u (size %u)", header.request, header.size));
    return reply;
  }
  if (fixed_size && header.size != *fixed_size) {
    state.anomalies.push_back(
        Format("%s with size %u, expected %u", name, header.size, *fixed_size));
    return reply;
  }
  const uint64_t negotiated = state.negotiated_features.value_or(0);
  switch (request) {
    case Request::kGetProtocolFeatures:
      if (options.answer_protocol_features) {
        AppendReply(reply, request, options.protocol_features);
      }
      break;
    case Request::kSetProtocolFeatures: {
      uint64_t features;
      std::memcpy(&features, payload.data(), sizeof(features));
      if ((features & ~options.protocol_features) != 0) {
        state.anomalies.push_back(
            Format("SET_PROTOCOL_FEATURES 0x%llx, offered 0x%llx",
                   static_cast<unsigned long long>(features),
                   static_cast<unsigned long long>(options.protocol_features)));
      }
      state.negotiated_features = features;
      break;
    }
    case Request::kGetDisplayInfo:
      if (options.answer_display_info) {
        gpu::RespDisplayInfo info{};
        info.hdr.type = static_cast<uint32_t>(gpu::ResponseType::kOkDisplayInfo);
        for (size_t i = 0; i < options.outputs.size() && i < gpu::kMaxScanouts; ++i) {
          if (!options.outputs[i].enabled) continue;
          info.pmodes[i].enabled = 1;
          info.pmodes[i].r.width = options.outputs[i].width;
          info.pmodes[i].r.height = options.outputs[i].height;
        }
        AppendReply(reply, request, info);
      }
      break;
    case Request::kCursorPos:
    case Request::kCursorPosHide: {
      gpu::display::CursorPos position;
      std::memcpy(&position, payload.data(), sizeof(position));
      if (!ValidScanout(position.scanout_id, name)) break;
      FakeCursor& cursor = state.cursors[position.scanout_id];
      cursor.x = position.x;
      cursor.y = position.y;
      cursor.visible = request == Request::kCursorPos;
      break;
    }
    case Request::kCursorUpdate: {
      gpu::display::CursorUpdate update;
      std::memcpy(&update, payload.data(), sizeof(update));
      if (!ValidScanout(update.pos.scanout_id, name)) break;
      FakeCursor& cursor = state.cursors[update.pos.scanout_id];
      cursor.defined = true;
      cursor.visible = true;
      cursor.x = update.pos.x;
      cursor.y = update.pos.y;
      cursor.hot_x = update.hot_x;
      cursor.hot_y = update.hot_y;
      cursor.image.resize(gpu::display::kCursorWidth * gpu::display::kCursorHeight);
      std::memcpy(cursor.image.data(), payload.data() + offsetof(gpu::display::CursorUpdate, data),
                  cursor.image.size() * sizeof(uint32_t));
      break;
    }
    case Request::kScanout: {
      gpu::display::Scanout scanout;
      std::memcpy(&scanout, payload.data(), sizeof(scanout));
      if (!ValidScanout(scanout.scanout_id, name)) break;
      std::optional<FakeFramebuffer>& framebuffer = state.framebuffers[scanout.scanout_id];
      if (scanout.width == 0) {
        framebuffer.reset();
        break;
      }
      if (uint64_t{scanout.width} * scanout.height * 4 > kMaxSurfaceBytes) {
        state.anomalies.push_back(
            Format("SCANOUT %ux%u is too large", scanout.width, scanout.height));
        framebuffer.reset();
        break;
      }
      framebuffer = FakeFramebuffer{};
      framebuffer->width = scanout.width;
      framebuffer->height = scanout.height;
      framebuffer->pixels.assign(size_t{scanout.width} * scanout.height, 0);
      break;
    }
    case Request::kUpdate: {
      gpu::display::Update update;
      if (header.size < sizeof(update)) {
        state.anomalies.push_back(Format("UPDATE with size %u", header.size));
        break;
      }
      std::memcpy(&update, payload.data(), sizeof(update));
      const uint64_t expected = sizeof(update) + uint64_t{update.width} * update.height * 4;
      if (header.size != expected) {
        state.anomalies.push_back(Format("UPDATE %ux%u with size %u, expected %llu", update.width,
                                         update.height, header.size,
                                         static_cast<unsigned long long>(expected)));
        break;
      }
      if (!ValidScanout(update.scanout_id, name)) break;
      Update(update, payload.subspan(sizeof(update)));
      break;
    }
    case Request::kDmabufScanout:
      DmabufScanout(request, payload, std::move(fds));
      break;
    case Request::kDmabufUpdate: {
      gpu::display::Update update;
      std::memcpy(&update, payload.data(), sizeof(update));
      // QEMU answers an invalid scanout at once; a valid one once its UI has drawn.
      const bool valid = ValidScanout(update.scanout_id, name);
      if (valid) DmabufUpdate(update);
      if (valid && options.dmabuf_update_reply != DmabufUpdateReply::kAtOnce) {
        state.blocked = true;
        break;
      }
      const MessageHeader empty{header.request, gpu::display::kReplyFlag, 0};
      const auto* bytes = reinterpret_cast<const uint8_t*>(&empty);
      reply.assign(bytes, bytes + sizeof(empty));
      ++state.dmabuf_updates_answered;
      break;
    }
    case Request::kGetEdid: {
      gpu::display::EdidRequest edid_request;
      std::memcpy(&edid_request, payload.data(), sizeof(edid_request));
      if ((negotiated & (uint64_t{1} << gpu::display::kFeatureEdid)) == 0) {
        state.anomalies.push_back("GET_EDID without the EDID protocol feature (no reply)");
        break;
      }
      if (!ValidScanout(edid_request.scanout_id, "GET_EDID (no reply)")) break;
      if (!options.answer_edid) break;
      gpu::RespEdid edid{};
      edid.hdr.type = static_cast<uint32_t>(gpu::ResponseType::kOkEdid);
      edid.size = options.edid_size_field;
      std::memcpy(edid.edid, options.edid.data(), std::min(options.edid.size(), sizeof(edid.edid)));
      AppendReply(reply, request, edid);
      break;
    }
    case Request::kDmabufScanout2:
      if ((negotiated & (uint64_t{1} << gpu::display::kFeatureDmabuf2)) == 0) {
        state.anomalies.push_back("DMABUF_SCANOUT2 without the DMABUF2 protocol feature");
      }
      DmabufScanout(request, payload, std::move(fds));
      break;
    default:
      break;
  }
  return reply;
}

void FakeDisplay::Shared::Update(const gpu::display::Update& update,
                                 std::span<const uint8_t> pixels) {
  std::optional<FakeFramebuffer>& framebuffer = state.framebuffers[update.scanout_id];
  if (!framebuffer) {
    // QEMU would composite into a NULL surface.
    state.anomalies.push_back(Format("UPDATE for scanout %u before SCANOUT", update.scanout_id));
    return;
  }
  // Exactly what hw/display/vhost-user-gpu.c does, clipping and argument types included.
  pixman_image_t* source = pixman_image_create_bits(
      PIXMAN_x8r8g8b8, static_cast<int>(update.width), static_cast<int>(update.height),
      reinterpret_cast<uint32_t*>(const_cast<uint8_t*>(pixels.data())),
      static_cast<int>(update.width * 4));
  pixman_image_t* destination = pixman_image_create_bits(
      PIXMAN_x8r8g8b8, static_cast<int>(framebuffer->width), static_cast<int>(framebuffer->height),
      framebuffer->pixels.data(), static_cast<int>(framebuffer->width * 4));
  if (source != nullptr && destination != nullptr) {
    pixman_image_composite(PIXMAN_OP_SRC, source, nullptr, destination, 0, 0, 0, 0,
                           static_cast<int16_t>(update.x), static_cast<int16_t>(update.y),
                           static_cast<uint16_t>(update.width),
                           static_cast<uint16_t>(update.height));
  } else {
    state.anomalies.push_back(
        Format("UPDATE %ux%u: pixman could not wrap the image", update.width, update.height));
  }
  if (source != nullptr) pixman_image_unref(source);
  if (destination != nullptr) pixman_image_unref(destination);
  framebuffer->shown = true;
  ++framebuffer->updates;
}

void FakeDisplay::Shared::DmabufScanout(Request request, std::span<const uint8_t> payload,
                                        std::vector<UniqueFd> fds) {
  gpu::display::DmabufScanout scanout;
  std::memcpy(&scanout, payload.data(), sizeof(scanout));
  std::optional<uint64_t> modifier;
  if (request == Request::kDmabufScanout2) {
    modifier.emplace();
    std::memcpy(&*modifier, payload.data() + offsetof(gpu::display::DmabufScanout2, modifier),
                sizeof(uint64_t));
  }
  // QEMU closes the fd of a message for an unknown scanout.
  if (!ValidScanout(scanout.scanout_id, gpu::display::RequestName(static_cast<uint32_t>(request))))
    return;
  std::optional<FakeDmabuf>& dmabuf = state.dmabufs[scanout.scanout_id];
  std::optional<FakeFramebuffer>& framebuffer = state.framebuffers[scanout.scanout_id];
  UniqueFd& held = dmabuf_fds[scanout.scanout_id];
  if (fds.empty()) {
    // dpy_gl_scanout_disable, and the previous dmabuf released.
    held.reset();
    dmabuf.reset();
    framebuffer.reset();
    return;
  }
  if (fds.size() > 1) state.anomalies.push_back(Format("DMABUF_SCANOUT with %zu fds", fds.size()));
  held = std::move(fds[0]);
  FakeDmabuf received;
  received.scanout = scanout;
  received.modifier = modifier;
  const off_t size = lseek(held.get(), 0, SEEK_END);
  received.buffer_bytes = size > 0 ? static_cast<uint64_t>(size) : 0;
  const uint64_t needed = uint64_t{scanout.fd_stride} * scanout.fd_height;
  if (scanout.width == 0 || scanout.height == 0 || scanout.width > scanout.fd_width ||
      scanout.height > scanout.fd_height) {
    state.anomalies.push_back(Format("DMABUF_SCANOUT %ux%u of a %ux%u buffer", scanout.width,
                                     scanout.height, scanout.fd_width, scanout.fd_height));
  } else if (needed > received.buffer_bytes || scanout.fd_stride < uint64_t{scanout.fd_width} * 4) {
    state.anomalies.push_back(Format(
        "DMABUF_SCANOUT: stride %u x %u rows does not fit the %llu-byte buffer", scanout.fd_stride,
        scanout.fd_height, static_cast<unsigned long long>(received.buffer_bytes)));
  }
  dmabuf = received;
  if (uint64_t{scanout.width} * scanout.height * 4 > kMaxSurfaceBytes) {
    framebuffer.reset();
    return;
  }
  framebuffer = FakeFramebuffer{};
  framebuffer->width = scanout.width;
  framebuffer->height = scanout.height;
  framebuffer->pixels.assign(size_t{scanout.width} * scanout.height, 0);
}

void FakeDisplay::Shared::DmabufUpdate(const gpu::display::Update& update) {
  std::optional<FakeDmabuf>& dmabuf = state.dmabufs[update.scanout_id];
  std::optional<FakeFramebuffer>& framebuffer = state.framebuffers[update.scanout_id];
  if (!dmabuf || !framebuffer) {
    state.anomalies.push_back(
        Format("DMABUF_UPDATE for scanout %u without a dmabuf", update.scanout_id));
    return;
  }
  ++dmabuf->updates;
  dmabuf->readable = false;
  const gpu::display::DmabufScanout& layout = dmabuf->scanout;
  const auto fourcc = static_cast<uint32_t>(layout.fd_drm_fourcc);
  const uint64_t needed = uint64_t{layout.fd_stride} * layout.fd_height;
  if ((fourcc != kFourccXrgb8888 && fourcc != kFourccArgb8888) || needed == 0 ||
      needed > dmabuf->buffer_bytes || layout.fd_stride < uint64_t{layout.fd_width} * 4 ||
      layout.width > layout.fd_width || layout.height > layout.fd_height) {
    return;  // Not a layout this fake reads (the anomaly, if any, was noted at DMABUF_SCANOUT).
  }
  DmabufView view(dmabuf_fds[update.scanout_id].get(), needed);
  if (view.bytes() == nullptr) return;
  // Clipped to the scanout, as QEMU's GL blit is. Row r of the scanout is row r of the buffer
  // when Y_0_TOP is set; otherwise QEMU flips the buffer.
  const uint64_t right = std::min<uint64_t>(uint64_t{update.x} + update.width, framebuffer->width);
  const uint64_t bottom =
      std::min<uint64_t>(uint64_t{update.y} + update.height, framebuffer->height);
  const bool y0_top = (layout.fd_flags & gpu::display::kDmabufFlagY0Top) != 0;
  for (uint64_t y = update.y; y < bottom; ++y) {
    const uint64_t source_row = y0_top ? y : layout.fd_height - 1 - y;
    for (uint64_t x = update.x; x < right; ++x) {
      uint32_t pixel;
      std::memcpy(&pixel, view.bytes() + source_row * layout.fd_stride + x * 4, sizeof(pixel));
      framebuffer->pixels[y * framebuffer->width + x] = pixel;
    }
  }
  dmabuf->readable = true;
  framebuffer->shown = true;
  ++framebuffer->updates;
}

void FakeDisplay::Shared::Write(std::span<const uint8_t> bytes) {
  std::lock_guard lock(write_mutex);
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t sent =
        send(socket.get(), bytes.data() + written, bytes.size() - written, MSG_NOSIGNAL);
    if (sent > 0) {
      written += static_cast<size_t>(sent);
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && errno == EAGAIN) {
      pollfd writable{socket.get(), POLLOUT, 0};
      if (poll(&writable, 1, 5000) > 0) continue;
    }
    std::lock_guard state_lock(mutex);
    state.anomalies.push_back(
        Format("writing to the daemon: %s", sent < 0 ? std::strerror(errno) : "timed out"));
    changed.notify_all();
    return;
  }
}

void FakeDisplay::Shared::GiveUp(std::string reason) {
  std::lock_guard lock(mutex);
  state.anomalies.push_back(std::move(reason));
  state.peer_closed = true;
  shutdown(socket.get(), SHUT_RDWR);
  changed.notify_all();
}

bool FakeDisplay::WaitFor(const std::function<bool(const FakeDisplayState&)>& predicate,
                          std::chrono::milliseconds timeout) const {
  std::unique_lock lock(shared_->mutex);
  return shared_->changed.wait_for(lock, timeout, [&] { return predicate(shared_->state); });
}

void FakeDisplay::ReleaseDmabufUpdates() {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->release_requested = true;
  }
  shared_->Wake();
  std::unique_lock lock(shared_->mutex);
  shared_->changed.wait(lock, [&] {
    return !shared_->release_requested || shared_->stop || shared_->state.peer_closed;
  });
}

FakeDisplayState FakeDisplay::Snapshot() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->state;
}

size_t FakeDisplay::Count(Request request) const {
  std::lock_guard lock(shared_->mutex);
  return shared_->state.Count(request);
}

std::optional<FakeFramebuffer> FakeDisplay::Framebuffer(uint32_t scanout_id) const {
  std::lock_guard lock(shared_->mutex);
  if (scanout_id >= shared_->state.framebuffers.size()) return std::nullopt;
  return shared_->state.framebuffers[scanout_id];
}

FakeCursor FakeDisplay::Cursor(uint32_t scanout_id) const {
  std::lock_guard lock(shared_->mutex);
  if (scanout_id >= shared_->state.cursors.size()) return {};
  return shared_->state.cursors[scanout_id];
}

std::vector<std::string> FakeDisplay::Anomalies() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->state.anomalies;
}

void FakeDisplay::SetReading(bool reading) {
  {
    std::lock_guard lock(shared_->mutex);
    shared_->reading = reading;
  }
  shared_->Wake();
  // Returns once the serving thread has acted on it, so that no read is still under way when the
  // caller goes on to make the daemon send.
  std::unique_lock lock(shared_->mutex);
  shared_->changed.wait(lock, [&] {
    return shared_->reading_applied == reading || shared_->stop || shared_->state.peer_closed;
  });
}

bool FakeDisplay::WaitForUnreadBytes(std::chrono::milliseconds timeout) const {
  // The daemon's send wakes no one on this side while reading is off, so poll for readability
  // (an event), then check the byte count.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int unread = 0;
    if (ioctl(shared_->socket.get(), FIONREAD, &unread) == 0 && unread > 0) return true;
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) return false;
    pollfd readable{shared_->socket.get(), POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(remaining.count())) > 0 &&
        (readable.revents & (POLLHUP | POLLERR)) != 0) {
      return false;
    }
  }
}

bool FakeDisplay::WaitUntilDaemonHasRead(std::chrono::milliseconds timeout) const {
  // A Unix socket's sent bytes stay charged to the sender until the receiver has read them; no
  // event marks the count reaching 0, hence the short slices.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int unsent = 0;
    if (ioctl(shared_->socket.get(), SIOCOUTQ, &unsent) != 0) return false;
    if (unsent == 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    pollfd hangup{shared_->socket.get(), 0, 0};
    if (poll(&hangup, 1, 1) > 0 && (hangup.revents & (POLLHUP | POLLERR)) != 0) return false;
  }
}

void FakeDisplay::SendRaw(std::span<const uint8_t> bytes) { shared_->Write(bytes); }

void FakeDisplay::Disconnect() { shutdown(shared_->socket.get(), SHUT_RDWR); }

}  // namespace vgpu::test
