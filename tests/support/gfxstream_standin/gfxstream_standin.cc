// A stand-in for Google's libgfxstream_backend.so.0, built only for the tests. It implements the
// stream_renderer contract as gfxstream's host library behaves, with no GPU (docs/SECURITY.md,
// "gfxstream", says what the daemon relies on and guards against):
//
// - Resources are a pipe, a buffer or a colour buffer, told apart by target, bind and format as
//   gfxstream does, with a host image of the bytes gfxstream keeps for them (its per-format sizes,
//   depth and layers ignored). While a backing is attached they have a copy of it sized like the
//   backing. Transfers move the box's byte range between the iovecs and that copy as gfxstream
//   does (the iovecs addressed as the whole resource; ctx_id, level, stride, layer_stride and
//   offset ignored; the range must fit the copy), and before (reads) or after (writes) that move
//   the WHOLE host image between it and the copy, without any length check. Where that copy is
//   too short (or absent) the real library writes or reads past a heap block: the stand-in
//   aborts there, with a line saying so, so that a daemon that lets it happen dies in the tests.
//   So it does for a colour buffer with an empty side or one over 16384 texels, which crashes
//   the real library's Vulkan path on lavapipe.
// - get_cap_set answers capsets 3 (gfxstream-vulkan) and 8 (gfxstream-gles) with their real
//   struct sizes and never writes max_ver; unknown capsets leave both outputs untouched.
// - SUBMIT_3D takes one command per submit, a little-endian opcode first, and copies the whole
//   struct of a known opcode out of the stream whatever the stream's size, as gfxstream does
//   (so a sanitizer sees a short stream read past its end):
//     0xf002 PLACEHOLDER_COMMAND_VK, pad, padding   gfxstream's own no-op
//     0xa003 RESOURCE_CREATE_3D + 13 words          accepted, does nothing here
//     FILL (0x4c4c4946), resource, x, y, width, height, colour
//                                                   the stand-in's own: fills a rectangle of a
//                                                   32-bit colour buffer attached to the context
//     0x1001 CONTEXT_CREATE, resource               the resource's ring memory becomes an
//                                                   address-space-graphics ring: "the host"
//                                                   writes host_version 1 at its start as
//                                                   gfxstream's consumer does; a blob smaller
//                                                   than the ring and its buffer aborts, as
//                                                   gfxstream's GFXSTREAM_FATAL does
//     0x1002 PING, resource                         consumes the ring's type-1 transfers: their
//                                                   read position moves to the write position
//                                                   and host_consumed_pos grows by their sizes
//   RESOURCE_CREATE_3D records its shape for a later blob of its (32-bit) blob id, once.
//   Anything else fails with -EINVAL. Every submit leaves work pending on the context's ring 0
//   and on the global timeline.
// - Blobs (create_blob always returns 0, as gfxstream does): blob_id 0 is ring memory, a sealed
//   memfd named as gfxstream names it ("gfxstream-ringblob-shmem-<resource>"), exported once as
//   SHM (gfxstream gives its handle up); a blob id with a recorded shape is a colour buffer or
//   buffer of that shape (aborting, as resource_create does, for one gfxstream cannot make) that
//   cannot be exported; any other blob id, or an unknown context, makes nothing. map_info answers
//   CACHED for a blob it made and fails otherwise.
// - Fences: a fence on a timeline with nothing pending signals synchronously, inside
//   stream_renderer_create_fence (as VirtioGpuTimelines::enqueueFence does); otherwise it is
//   queued and signalled, in order, from the stand-in's own worker thread.
//
// Knobs (read at stream_renderer_init): GFXSTREAM_STANDIN_CAPSETS ("3,8": the capsets answered),
// GFXSTREAM_STANDIN_LOG (a file that gets one line per call), GFXSTREAM_STANDIN_FENCE_GATE (a FIFO:
// the worker reads one byte from it before signalling each queued fence),
// GFXSTREAM_STANDIN_FAIL_INIT (init returns -EINVAL), GFXSTREAM_STANDIN_HANG_INIT (init never
// returns, as gfxstream does when its EGL display has no configs),
// GFXSTREAM_STANDIN_INIT_MESSAGES=N (N debug lines and an error line through the debug callback
// during init, as gfxstream's start-up logs). Built with
// STANDIN_OMIT_CREATE_FENCE it lacks stream_renderer_create_fence (the missing-symbol test). The
// gfxstream_standin_* functions let in-process tests look inside.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "renderer/gfxstream/stream_renderer_api.h"
#include "support/gfxstream_standin/asg_ring.h"

#define STANDIN_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr uint32_t kOpFill = 0x4c4c4946;  // "FILL"
constexpr uint32_t kOpPlaceholder = 0xf002;
constexpr uint32_t kOpResourceCreate3d = 0xa003;
namespace asg = vgpu::test::asg;
using asg::kOpContextCreate;
using asg::kOpContextPing;
constexpr uint32_t kMapCacheCached = 1;
constexpr uint32_t kBlobMemGuest = 1;
// sizeof(struct gfxstreamPlaceholderCommandVk) and sizeof(struct gfxstreamResourceCreate3d).
constexpr size_t kPlaceholderBytes = 12;
constexpr size_t kResourceCreate3dBytes = 56;
constexpr uint32_t kCapsetVulkan = 3;
constexpr uint32_t kCapsetGles = 8;
// gfxstream's struct vulkanCapset (26 uint32) and struct glesCapset (4 uint32).
constexpr uint32_t kVulkanCapsetSize = 26 * 4;
constexpr uint32_t kGlesCapsetSize = 4 * 4;
constexpr uint64_t kMaxResourceBytes = 256ull << 20;
constexpr uint32_t kMaxImageDimension = 16384;  // lavapipe's maxImageDimension2D.

enum class Kind { kPipe, kBuffer, kColorBuffer };

// A ring blob's memory: a memfd mapped here, its fd handed out once.
class RingMemory {
 public:
  RingMemory(int fd, uint8_t* bytes, uint64_t size) : fd_(fd), bytes_(bytes), size_(size) {}
  RingMemory(RingMemory&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)),
        bytes_(std::exchange(other.bytes_, nullptr)),
        size_(other.size_) {}
  RingMemory& operator=(RingMemory&&) = delete;
  ~RingMemory() {
    if (bytes_ != nullptr) munmap(bytes_, size_);
    if (fd_ >= 0) close(fd_);
  }
  int ReleaseFd() { return std::exchange(fd_, -1); }
  uint8_t* bytes() const { return bytes_; }
  uint64_t size() const { return size_; }
  uint32_t Load(size_t offset) const {
    return __atomic_load_n(reinterpret_cast<uint32_t*>(bytes_ + offset), __ATOMIC_ACQUIRE);
  }
  void Store(size_t offset, uint32_t value) {
    __atomic_store_n(reinterpret_cast<uint32_t*>(bytes_ + offset), value, __ATOMIC_RELEASE);
  }

 private:
  int fd_;
  uint8_t* bytes_;
  uint64_t size_;
};

struct Resource {
  stream_renderer_resource_create_args args{};
  Kind kind = Kind::kColorBuffer;
  uint32_t bytes_per_pixel = 4;  // How transfers address rows (gfxstream's texel sizes).
  std::vector<uint8_t> host;     // The colour buffer, buffer or pipe bytes gfxstream keeps.
  std::vector<iovec> iovs;
  std::vector<uint8_t> linear;  // The copy of the attached backing.
  bool blob = false;
  std::optional<RingMemory> ring;  // Blob id 0.
  uint32_t ring_of = 0;            // The context whose CONTEXT_CREATE made it a ring.
};

// (context, ring); context 0 with ring kGlobalRing is the global timeline.
using TimelineKey = std::pair<uint32_t, uint32_t>;
constexpr uint32_t kGlobalRing = 0xffffffff;

struct Timeline {
  bool work_pending = false;
  size_t queued = 0;
};

struct ReadRecord {
  stream_renderer_box box{};
  uint64_t bytes_copied = 0;
  uint64_t iov_bytes = 0;
  int iov_count = 0;
};

struct State {
  std::mutex mutex;
  std::condition_variable changed;
  bool initialized = false;
  void* user_data = nullptr;
  stream_renderer_fence_callback fence_callback = nullptr;
  std::map<uint64_t, uint64_t> params;
  std::set<uint32_t> capsets;
  std::map<uint32_t, Resource> resources;
  std::map<uint32_t, std::set<uint32_t>> contexts;  // Context -> attached resources.
  // (context, blob id) -> the shape RESOURCE_CREATE_3D recorded.
  std::map<std::pair<uint32_t, uint32_t>, stream_renderer_resource_create_args> pending_shapes;
  std::map<TimelineKey, Timeline> timelines;
  std::deque<std::pair<TimelineKey, stream_renderer_fence>> fence_queue;
  bool hold_fences = false;
  bool stopping = false;
  int stop_fd = -1;
  int gate_fd = -1;
  FILE* log = nullptr;
  std::thread worker;
  std::vector<std::string> calls;
  ReadRecord last_read;
  size_t synchronous_fences = 0;
  size_t worker_fences = 0;
};

State& state() {
  static State* instance = new State();  // Never destroyed: tests may call in after exit starts.
  return *instance;
}

// Call with the mutex held.
void Record(State& s, const std::string& line) {
  s.calls.push_back(line);
  if (s.log != nullptr) {
    std::fprintf(s.log, "%s\n", line.c_str());
    std::fflush(s.log);
  }
}

std::string BoxText(const stream_renderer_box* box) {
  std::ostringstream text;
  text << "box=" << box->x << "," << box->y << "," << box->z << "," << box->w << "," << box->h
       << "," << box->d;
  return text.str();
}

void WaitForGate(State& s) {
  pollfd fds[2] = {{s.gate_fd, POLLIN, 0}, {s.stop_fd, POLLIN, 0}};
  while (poll(fds, 2, -1) < 0 && errno == EINTR) {
  }
  if ((fds[0].revents & POLLIN) != 0) {
    char byte;
    (void)read(s.gate_fd, &byte, 1);
  }
}

void WorkerLoop() {
  State& s = state();
  std::unique_lock lock(s.mutex);
  while (true) {
    s.changed.wait(lock, [&] { return s.stopping || (!s.hold_fences && !s.fence_queue.empty()); });
    if (s.stopping) return;
    if (s.gate_fd >= 0) {
      lock.unlock();
      WaitForGate(s);
      lock.lock();
      if (s.stopping) return;
    }
    auto [key, fence] = s.fence_queue.front();
    s.fence_queue.pop_front();
    --s.timelines[key].queued;
    ++s.worker_fences;
    Record(s, "fence_signalled " + std::to_string(fence.fence_id) + " worker");
    stream_renderer_fence_callback callback = s.fence_callback;
    void* user_data = s.user_data;
    lock.unlock();
    callback(user_data, &fence);
    lock.lock();
  }
}

std::set<uint32_t> CapsetsFromEnvironment() {
  const char* text = std::getenv("GFXSTREAM_STANDIN_CAPSETS");
  if (text == nullptr) return {kCapsetVulkan, kCapsetGles};
  std::set<uint32_t> capsets;
  std::istringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) {
    if (!item.empty())
      capsets.insert(static_cast<uint32_t>(std::strtoul(item.c_str(), nullptr, 10)));
  }
  return capsets;
}

// gfxstream's texel sizes per virgl format (unknown formats are RGBA8), as its transfers
// address rows; its Vulkan path moves R8G8B8 (66) as 4-byte RGBA.
uint32_t BytesPerPixel(uint32_t format) {
  switch (format) {
    case 94:   // R16G16B16A16_FLOAT
    case 126:  // Z32_FLOAT_S8X24_UINT
      return 8;
    case 7:   // B5G6R5
    case 16:  // Z16
    case 48:  // R16
    case 65:  // R8G8
      return 2;
    case 64:  // R8
      return 1;
    default:
      return 4;
  }
}

bool IsYuv(uint32_t format) { return format == 163 || format == 166 || format == 314; }

// gfxstream's GetResourceType.
Kind KindOf(const stream_renderer_resource_create_args& args) {
  constexpr uint32_t kBindCustom = 1u << 17, kBindLinear = 1u << 22;
  constexpr uint32_t kTextureBinds = (1u << 1) | (1u << 3) | (1u << 16) | (1u << 18);
  if (args.target == 0 && args.bind == kBindCustom) return Kind::kPipe;
  if (args.format != 64 || (args.bind & kTextureBinds) != 0 || (args.bind & kBindLinear) == 0) {
    return Kind::kColorBuffer;
  }
  return Kind::kBuffer;
}

// The bytes gfxstream moves between a resource and the copy of its backing on every transfer.
uint64_t HostBytes(const stream_renderer_resource_create_args& args, Kind kind) {
  const uint64_t width = args.width, height = std::max<uint32_t>(args.height, 1);
  if (kind == Kind::kColorBuffer && IsYuv(args.format)) {
    const uint64_t chroma_rows = (height + 1) / 2;
    if (args.format == 163) {  // YV12: luma rows 32-texel aligned, two half-width chroma planes.
      const uint64_t luma = (width + 31) / 32 * 32;
      return luma * height + luma / 2 * chroma_rows * 2;
    }
    const uint64_t stride = (width + 1) / 2 * 2 * (args.format == 314 ? 2 : 1);  // NV12, P010
    return stride * height + stride * chroma_rows;
  }
  return width * height * BytesPerPixel(args.format);
}

[[noreturn]] void Overflow(uint32_t handle, const char* what, uint64_t needed, uint64_t have) {
  std::fprintf(stderr,
               "gfxstream stand-in: resource %u: %s %llu bytes of a backing copy of %llu; the real "
               "library overflows its heap here\n",
               handle, what, static_cast<unsigned long long>(needed),
               static_cast<unsigned long long>(have));
  std::abort();
}

// VirtioGpuResource::TransferWithIov: copies the box's byte range between `iovs` and the linear
// copy. Returns 0 or -EINVAL; adds the bytes moved to *copied.
int TransferWithIov(Resource& resource, const stream_renderer_box* box,
                    const std::vector<iovec>& iovs, bool to_iov, uint64_t* copied) {
  const stream_renderer_resource_create_args& args = resource.args;
  if (box->x > args.width || box->y > args.height) return -EINVAL;
  if (box->w == 0 || box->h == 0) return -EINVAL;
  if (uint64_t{box->x} + box->w > args.width) return -EINVAL;
  const uint64_t stride = uint64_t{args.width} * resource.bytes_per_pixel;
  uint64_t start = box->y * stride + uint64_t{box->x} * resource.bytes_per_pixel;
  uint64_t length = (box->h - 1ull) * stride + uint64_t{box->w} * resource.bytes_per_pixel;
  if (resource.kind == Kind::kColorBuffer && IsYuv(args.format)) {
    start = 0;  // YUV moves every plane whatever the box.
    length = resource.host.size();
  }
  const uint64_t end = start + length;
  if (end > resource.linear.size()) return -EINVAL;
  uint64_t written = 0;
  uint64_t iov_offset = 0;
  size_t index = 0;
  uint8_t* linear = resource.linear.data();
  while (written < length) {
    if (index >= iovs.size()) return -EINVAL;
    auto* base = static_cast<uint8_t*>(iovs[index].iov_base);
    const uint64_t iov_end = iov_offset + iovs[index].iov_len;
    const uint64_t lower = std::max(iov_offset, start);
    const uint64_t upper = std::min(iov_end, end);
    if (lower < upper) {
      if (to_iov) {
        std::memcpy(base + (lower - iov_offset), linear + lower, upper - lower);
      } else {
        std::memcpy(linear + lower, base + (lower - iov_offset), upper - lower);
      }
      written += upper - lower;
    }
    ++index;
    iov_offset = iov_end;
  }
  *copied += written;
  return 0;
}

// What gfxstream does before a read and after a write, with no length check: the whole host
// image into the copy (glReadPixels / a Vulkan copy of the whole colour buffer, readBuffer of
// the whole buffer), or all of it back; for a pipe, box.w bytes at box.x.
void HostToLinear(Resource& resource, const stream_renderer_box* box) {
  if (resource.kind == Kind::kPipe) {
    const uint64_t end = uint64_t{box->x} + box->w;
    if (end > resource.linear.size()) {
      Overflow(resource.args.handle, "a pipe read writes", end, resource.linear.size());
    }
    std::memcpy(resource.linear.data() + box->x, resource.host.data() + box->x, box->w);
    return;
  }
  if (resource.host.size() > resource.linear.size()) {
    Overflow(resource.args.handle, "a read-back writes", resource.host.size(),
             resource.linear.size());
  }
  std::memcpy(resource.linear.data(), resource.host.data(), resource.host.size());
}
void LinearToHost(Resource& resource, const stream_renderer_box* box) {
  if (resource.kind == Kind::kPipe) {
    const uint64_t end = uint64_t{box->x} + box->w;
    if (end > resource.linear.size()) {
      Overflow(resource.args.handle, "a pipe write reads", end, resource.linear.size());
    }
    std::memcpy(resource.host.data() + box->x, resource.linear.data() + box->x, box->w);
    return;
  }
  if (resource.host.size() > resource.linear.size()) {
    Overflow(resource.args.handle, "an upload reads", resource.host.size(), resource.linear.size());
  }
  std::memcpy(resource.host.data(), resource.linear.data(), resource.host.size());
}

uint32_t Word(const uint8_t* bytes, size_t index) {
  uint32_t word;
  std::memcpy(&word, bytes + index * 4, 4);
  return word;
}

// Call with the mutex held. One command, its struct copied out whole as gfxstream's DECODE does.
int RunCommand(State& s, uint32_t context, const uint8_t* bytes, uint32_t size) {
  if (size < 4) return -EINVAL;
  const uint32_t op = Word(bytes, 0);
  if (op == kOpPlaceholder) {
    uint8_t command[kPlaceholderBytes];
    std::memcpy(command, bytes, sizeof(command));
    return 0;
  }
  if (op == kOpResourceCreate3d) {
    uint8_t command[kResourceCreate3dBytes];
    std::memcpy(command, bytes, sizeof(command));
    uint32_t words[11];
    std::memcpy(words, command + 4, sizeof(words));
    uint64_t blob_id;
    std::memcpy(&blob_id, command + 48, sizeof(blob_id));
    const stream_renderer_resource_create_args shape{.handle = 0,
                                                     .target = words[0],
                                                     .format = words[1],
                                                     .bind = words[2],
                                                     .width = words[3],
                                                     .height = words[4],
                                                     .depth = words[5],
                                                     .array_size = words[6],
                                                     .last_level = words[7],
                                                     .nr_samples = words[8],
                                                     .flags = words[9]};
    const auto key = std::make_pair(context, static_cast<uint32_t>(blob_id));
    if (!s.pending_shapes.emplace(key, shape).second) return -EINVAL;
    Record(s, "shape_recorded blob_id=" + std::to_string(key.second));
    return 0;
  }
  if (op == kOpContextCreate || op == kOpContextPing) {
    uint32_t command[2];
    std::memcpy(command, bytes, sizeof(command));
    auto resource = s.resources.find(command[1]);
    if (resource == s.resources.end() || !resource->second.ring) return -EINVAL;
    RingMemory& ring = *resource->second.ring;
    if (op == kOpContextCreate) {
      // gfxstream stops a ring's reader only when the blob leaves the context that made it: a
      // ring made where the blob is not attached, or a second one (the first reader forgotten),
      // reads the memory after unref frees it.
      if (!s.contexts[context].contains(command[1]) || resource->second.ring_of != 0) {
        std::fprintf(stderr,
                     "gfxstream stand-in: CONTEXT_CREATE on blob %u in context %u (%s); the real "
                     "library's ring reader would read it after it is freed\n",
                     command[1], context,
                     resource->second.ring_of != 0 ? "already a ring" : "not attached there");
        std::abort();
      }
      if (ring.size() < asg::kRingBlobBytes) {
        std::fprintf(stderr,
                     "gfxstream stand-in: CONTEXT_CREATE on a %llu-byte blob; the real library "
                     "aborts (External address size too small)\n",
                     static_cast<unsigned long long>(ring.size()));
        std::abort();
      }
      resource->second.ring_of = context;
      ring.Store(asg::kHostVersion, 1);  // As ring_buffer_init writes it.
      Record(s, "asg_created " + std::to_string(command[1]));
      return 0;
    }
    if (resource->second.ring_of != context) return -EINVAL;
    // Type-1 transfers ({u32 offset, u32 size} in to_host's buf).
    const uint32_t write = ring.Load(asg::kWritePos);
    uint32_t read = ring.Load(asg::kReadPos);
    uint32_t consumed = 0;
    if (ring.Load(asg::kTransferMode) == 1) {
      for (; read + 8 <= write; read += 8) {
        uint32_t size;
        std::memcpy(&size, ring.bytes() + asg::kToHostBuf + (read + 4) % asg::kToHostBufBytes,
                    sizeof(size));
        consumed += size;
      }
    }
    ring.Store(asg::kReadPos, read);
    ring.Store(asg::kHostConsumedPos, ring.Load(asg::kHostConsumedPos) + consumed);
    Record(s, "asg_ping " + std::to_string(command[1]) + " consumed=" + std::to_string(consumed));
    return 0;
  }
  if (op != kOpFill || size < 7 * 4) return -EINVAL;
  const uint32_t id = Word(bytes, 1), x = Word(bytes, 2), y = Word(bytes, 3);
  const uint32_t width = Word(bytes, 4), height = Word(bytes, 5);
  const uint32_t colour = Word(bytes, 6);
  auto resource = s.resources.find(id);
  if (resource == s.resources.end() || !s.contexts[context].contains(id)) return -EINVAL;
  Resource& target = resource->second;
  if (target.kind != Kind::kColorBuffer || target.bytes_per_pixel != 4 ||
      IsYuv(target.args.format) || uint64_t{x} + width > target.args.width ||
      uint64_t{y} + height > target.args.height) {
    return -EINVAL;
  }
  for (uint32_t row = y; row < y + height; ++row) {
    for (uint32_t column = x; column < x + width; ++column) {
      std::memcpy(target.host.data() + (uint64_t{row} * target.args.width + column) * 4, &colour,
                  4);
    }
  }
  Record(s, "fill resource=" + std::to_string(id) + " rect=" + std::to_string(x) + "," +
                std::to_string(y) + "," + std::to_string(width) + "," + std::to_string(height));
  return 0;
}

// gfxstream's checks before it makes a colour buffer's Vulkan image: none. An empty one, or one
// over lavapipe's 16384 texels per side, crashes it; so does this.
void AbortOnImageGfxstreamCannotMake(uint32_t handle,
                                     const stream_renderer_resource_create_args& args, Kind kind) {
  if (kind == Kind::kColorBuffer &&
      (args.width == 0 || args.height == 0 || args.width > kMaxImageDimension ||
       args.height > kMaxImageDimension)) {
    std::fprintf(stderr,
                 "gfxstream stand-in: resource %u: a %ux%u colour buffer; the real library "
                 "crashes making its Vulkan image\n",
                 handle, args.width, args.height);
    std::abort();
  }
}

}  // namespace

STANDIN_EXPORT int stream_renderer_init(stream_renderer_param* params, uint64_t num_params) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (s.initialized) return -EBUSY;
  s.params.clear();
  for (uint64_t i = 0; i < num_params; ++i) s.params[params[i].key] = params[i].value;
  // GFXSTREAM_STANDIN_INIT_MESSAGES=N: N debug lines through the debug callback, then one
  // error line, as gfxstream reports its start-up.
  if (const char* count = std::getenv("GFXSTREAM_STANDIN_INIT_MESSAGES"); count != nullptr) {
    auto callback = reinterpret_cast<stream_renderer_debug_callback>(
        s.params[STREAM_RENDERER_PARAM_DEBUG_CALLBACK]);
    const void* user_data = reinterpret_cast<void*>(s.params[STREAM_RENDERER_PARAM_USER_DATA]);
    const unsigned long lines = std::strtoul(count, nullptr, 10);
    for (unsigned long line = 0; callback != nullptr && line <= lines; ++line) {
      const std::string text = line < lines ? "start-up line " + std::to_string(line + 1)
                                            : std::string("the start-up error");
      stream_renderer_debug debug{
          .debug_type = static_cast<uint32_t>(line < lines ? STREAM_RENDERER_DEBUG_DEBUG
                                                           : STREAM_RENDERER_DEBUG_ERROR),
          .message = text.c_str()};
      callback(const_cast<void*>(user_data), &debug);
    }
  }
  if (std::getenv("GFXSTREAM_STANDIN_FAIL_INIT") != nullptr) return -EINVAL;
  while (std::getenv("GFXSTREAM_STANDIN_HANG_INIT") != nullptr) pause();
  if (!s.params.contains(STREAM_RENDERER_PARAM_USER_DATA) ||
      !s.params.contains(STREAM_RENDERER_PARAM_RENDERER_FLAGS) ||
      !s.params.contains(STREAM_RENDERER_PARAM_FENCE_CALLBACK)) {
    return -EINVAL;
  }
  s.user_data = reinterpret_cast<void*>(s.params[STREAM_RENDERER_PARAM_USER_DATA]);
  s.fence_callback = reinterpret_cast<stream_renderer_fence_callback>(
      s.params[STREAM_RENDERER_PARAM_FENCE_CALLBACK]);
  s.capsets = CapsetsFromEnvironment();
  if (const char* path = std::getenv("GFXSTREAM_STANDIN_LOG"); path != nullptr) {
    s.log = std::fopen(path, "a");
  }
  if (const char* path = std::getenv("GFXSTREAM_STANDIN_FENCE_GATE"); path != nullptr) {
    // O_RDWR: a FIFO opened so never blocks here, whether or not the writer is there yet.
    s.gate_fd = open(path, O_RDWR | O_CLOEXEC);
  }
  s.stop_fd = eventfd(0, EFD_CLOEXEC);
  s.stopping = false;
  s.hold_fences = false;
  s.calls.clear();
  s.last_read = {};
  s.synchronous_fences = 0;
  s.worker_fences = 0;
  s.worker = std::thread(WorkerLoop);
  s.initialized = true;
  const char* egl_platform = std::getenv("EGL_PLATFORM");
  Record(s, "init flags=" + std::to_string(s.params[STREAM_RENDERER_PARAM_RENDERER_FLAGS]) +
                " EGL_PLATFORM=" + (egl_platform != nullptr ? egl_platform : "(unset)"));
  return 0;
}

STANDIN_EXPORT void stream_renderer_teardown(void) {
  State& s = state();
  {
    std::lock_guard lock(s.mutex);
    if (!s.initialized) return;
    s.stopping = true;
    uint64_t one = 1;
    (void)write(s.stop_fd, &one, sizeof(one));
  }
  s.changed.notify_all();
  s.worker.join();
  std::lock_guard lock(s.mutex);
  Record(s, "teardown");
  s.resources.clear();
  s.contexts.clear();
  s.pending_shapes.clear();
  s.timelines.clear();
  s.fence_queue.clear();
  close(s.stop_fd);
  if (s.gate_fd >= 0) close(s.gate_fd);
  if (s.log != nullptr) std::fclose(s.log);
  s.stop_fd = -1;
  s.gate_fd = -1;
  s.log = nullptr;
  s.initialized = false;
}

STANDIN_EXPORT int stream_renderer_resource_create(stream_renderer_resource_create_args* args,
                                                   iovec*, uint32_t) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  // gfxstream takes any format (unknown ones as RGBA8); the cap keeps the stand-in's own memory
  // bounded where the real library would fail to make a texture.
  const Kind kind = KindOf(*args);
  AbortOnImageGfxstreamCannotMake(args->handle, *args, kind);
  const uint64_t bytes = HostBytes(*args, kind);
  if (s.resources.contains(args->handle) || args->width == 0 || bytes > kMaxResourceBytes) {
    return -EINVAL;
  }
  Resource resource;
  resource.args = *args;
  resource.kind = kind;
  resource.bytes_per_pixel = BytesPerPixel(args->format);
  resource.host.assign(bytes, 0);
  s.resources.emplace(args->handle, std::move(resource));
  Record(s, "resource_create " + std::to_string(args->handle) + " " + std::to_string(args->width) +
                "x" + std::to_string(args->height) + " format=" + std::to_string(args->format));
  return 0;
}

STANDIN_EXPORT int stream_renderer_create_blob(uint32_t ctx_id, uint32_t handle,
                                               const struct stream_renderer_create_blob* blob,
                                               const iovec*, uint32_t,
                                               const stream_renderer_handle*) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  Record(s, "create_blob " + std::to_string(handle) + " ctx=" + std::to_string(ctx_id) +
                " mem=" + std::to_string(blob->blob_mem) + " id=" + std::to_string(blob->blob_id) +
                " size=" + std::to_string(blob->size));
  // gfxstream logs its failures here and returns 0 anyway.
  if (!s.contexts.contains(ctx_id) || s.resources.contains(handle)) return 0;
  Resource resource;
  resource.blob = true;
  if (blob->blob_id == 0) {
    const int fd = memfd_create(("gfxstream-ringblob-shmem-" + std::to_string(handle)).c_str(),
                                MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return 0;
    void* bytes = MAP_FAILED;
    if (ftruncate(fd, static_cast<off_t>(blob->size)) == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW) == 0) {
      bytes = mmap(nullptr, blob->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (bytes == MAP_FAILED) {
      close(fd);
      return 0;
    }
    resource.ring.emplace(fd, static_cast<uint8_t*>(bytes), blob->size);
  } else {
    auto shape = s.pending_shapes.find({ctx_id, static_cast<uint32_t>(blob->blob_id)});
    if (shape == s.pending_shapes.end() || blob->blob_mem == kBlobMemGuest) return 0;
    resource.args = shape->second;
    resource.args.handle = handle;
    s.pending_shapes.erase(shape);
    resource.kind = KindOf(resource.args);
    AbortOnImageGfxstreamCannotMake(handle, resource.args, resource.kind);
    const uint64_t bytes = HostBytes(resource.args, resource.kind);
    if (bytes > kMaxResourceBytes) return 0;
    resource.host.assign(bytes, 0);
  }
  s.resources.emplace(handle, std::move(resource));
  Record(s, "blob_made " + std::to_string(handle));
  return 0;
}

STANDIN_EXPORT int stream_renderer_export_blob(uint32_t handle, stream_renderer_handle* exported) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto resource = s.resources.find(handle);
  if (resource == s.resources.end() || !resource->second.ring) return -EINVAL;
  const int fd = resource->second.ring->ReleaseFd();
  Record(s, "export_blob " + std::to_string(handle) + (fd < 0 ? " already given" : ""));
  if (fd < 0) return -EINVAL;
  exported->os_handle = fd;
  exported->handle_type = STREAM_HANDLE_TYPE_MEM_SHM;
  return 0;
}

STANDIN_EXPORT int stream_renderer_resource_map_info(uint32_t handle, uint32_t* map_info) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto resource = s.resources.find(handle);
  if (resource == s.resources.end() || !resource->second.blob) return -EINVAL;
  *map_info = kMapCacheCached;
  return 0;
}

STANDIN_EXPORT void stream_renderer_resource_unref(uint32_t handle) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.resources.erase(handle);
  for (auto& [context, attached] : s.contexts) attached.erase(handle);
  Record(s, "resource_unref " + std::to_string(handle));
}

STANDIN_EXPORT int stream_renderer_context_create(uint32_t ctx_id, uint32_t nlen, const char* name,
                                                  uint32_t context_init) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (s.contexts.contains(ctx_id)) return -EINVAL;
  s.contexts[ctx_id];
  Record(s, "context_create " + std::to_string(ctx_id) + " name=" + std::string(name, nlen) +
                " init=" + std::to_string(context_init));
  return 0;
}

STANDIN_EXPORT void stream_renderer_context_destroy(uint32_t handle) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (auto context = s.contexts.find(handle); context != s.contexts.end()) {
    for (uint32_t attached : context->second) {
      if (auto resource = s.resources.find(attached);
          resource != s.resources.end() && resource->second.ring_of == handle) {
        resource->second.ring_of = 0;
      }
    }
  }
  s.contexts.erase(handle);
  std::erase_if(s.pending_shapes, [&](const auto& entry) { return entry.first.first == handle; });
  Record(s, "context_destroy " + std::to_string(handle));
}

STANDIN_EXPORT int stream_renderer_submit_cmd(stream_renderer_command* command) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (!s.contexts.contains(command->ctx_id)) return -EINVAL;
  Record(s, "submit " + std::to_string(command->ctx_id) +
                " bytes=" + std::to_string(command->cmd_size));
  const int result = RunCommand(s, command->ctx_id, command->cmd, command->cmd_size);
  if (result != 0) return result;
  s.timelines[TimelineKey{command->ctx_id, 0}].work_pending = true;
  s.timelines[TimelineKey{0, kGlobalRing}].work_pending = true;
  return 0;
}

STANDIN_EXPORT int stream_renderer_transfer_read_iov(uint32_t handle, uint32_t, uint32_t, uint32_t,
                                                     uint32_t, stream_renderer_box* box, uint64_t,
                                                     iovec* iov, int iovec_cnt) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto resource = s.resources.find(handle);
  if (resource == s.resources.end()) return EINVAL;  // Positive, as gfxstream does here.
  const bool own = iov != nullptr && iovec_cnt > 0;
  const std::vector<iovec> iovs =
      own ? std::vector<iovec>(iov, iov + iovec_cnt) : resource->second.iovs;
  HostToLinear(resource->second, box);
  ReadRecord record{.box = *box, .iov_count = static_cast<int>(iovs.size())};
  for (const iovec& entry : iovs) record.iov_bytes += entry.iov_len;
  const int result = TransferWithIov(resource->second, box, iovs, true, &record.bytes_copied);
  if (own) s.last_read = record;
  Record(s, std::string("transfer_read ") + std::to_string(handle) + " " + BoxText(box) +
                (own ? " host_iov" : " backing") + " copied=" +
                std::to_string(record.bytes_copied) + " result=" + std::to_string(result));
  return result;
}

STANDIN_EXPORT int stream_renderer_transfer_write_iov(uint32_t handle, uint32_t, int, uint32_t,
                                                      uint32_t, stream_renderer_box* box, uint64_t,
                                                      iovec* iov, unsigned int iovec_cnt) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto resource = s.resources.find(handle);
  if (resource == s.resources.end()) return EINVAL;
  const std::vector<iovec> iovs = (iov != nullptr && iovec_cnt > 0)
                                      ? std::vector<iovec>(iov, iov + iovec_cnt)
                                      : resource->second.iovs;
  uint64_t copied = 0;
  const int result = TransferWithIov(resource->second, box, iovs, false, &copied);
  if (result == 0) LinearToHost(resource->second, box);
  Record(s, "transfer_write " + std::to_string(handle) + " " + BoxText(box) +
                " copied=" + std::to_string(copied) + " result=" + std::to_string(result));
  return result;
}

STANDIN_EXPORT void stream_renderer_get_cap_set(uint32_t set, uint32_t*, uint32_t* max_size) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  Record(s, "get_cap_set " + std::to_string(set));
  if (!s.capsets.contains(set)) return;  // Unknown: both outputs untouched.
  *max_size = set == kCapsetVulkan ? kVulkanCapsetSize : kGlesCapsetSize;
}

STANDIN_EXPORT void stream_renderer_fill_caps(uint32_t set, uint32_t, void* caps) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  Record(s, "fill_caps " + std::to_string(set));
  if (!s.capsets.contains(set)) return;
  // protocolVersion 1, ringSize 12288, bufferSize 1 MiB, then blobAlignment (4096) where each
  // struct keeps it (field 5 of vulkanCapset, field 3 of glesCapset).
  uint32_t words[26] = {1, 12288, 1048576};
  if (set == kCapsetVulkan) {
    words[5] = 4096;
    std::memcpy(caps, words, kVulkanCapsetSize);
  } else {
    words[3] = 4096;
    std::memcpy(caps, words, kGlesCapsetSize);
  }
}

STANDIN_EXPORT int stream_renderer_resource_attach_iov(int handle, iovec* iov, int num_iovs) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto resource = s.resources.find(static_cast<uint32_t>(handle));
  if (resource == s.resources.end() || num_iovs <= 0) return -EINVAL;
  resource->second.iovs.assign(iov, iov + num_iovs);
  uint64_t total = 0;
  for (int i = 0; i < num_iovs; ++i) total += iov[i].iov_len;
  resource->second.linear.assign(total, 0);
  Record(s, "attach_iov " + std::to_string(handle) + " bytes=" + std::to_string(total));
  return 0;
}

STANDIN_EXPORT void stream_renderer_resource_detach_iov(int handle, iovec**, int*) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto resource = s.resources.find(static_cast<uint32_t>(handle));
  if (resource == s.resources.end()) return;
  resource->second.iovs.clear();
  resource->second.linear.clear();
  Record(s, "detach_iov " + std::to_string(handle));
}

STANDIN_EXPORT void stream_renderer_ctx_attach_resource(int ctx_id, int handle) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto context = s.contexts.find(static_cast<uint32_t>(ctx_id));
  if (context == s.contexts.end() || !s.resources.contains(static_cast<uint32_t>(handle))) return;
  context->second.insert(static_cast<uint32_t>(handle));
  Record(s, "ctx_attach_resource " + std::to_string(ctx_id) + " " + std::to_string(handle));
}

STANDIN_EXPORT void stream_renderer_ctx_detach_resource(int ctx_id, int handle) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto context = s.contexts.find(static_cast<uint32_t>(ctx_id));
  if (context != s.contexts.end()) context->second.erase(static_cast<uint32_t>(handle));
  // gfxstream stops the ring's reader here (one context per ring, checked at CONTEXT_CREATE).
  if (auto resource = s.resources.find(static_cast<uint32_t>(handle));
      resource != s.resources.end() && resource->second.ring_of == static_cast<uint32_t>(ctx_id)) {
    resource->second.ring_of = 0;
  }
  Record(s, "ctx_detach_resource " + std::to_string(ctx_id) + " " + std::to_string(handle));
}

#ifndef STANDIN_OMIT_CREATE_FENCE
STANDIN_EXPORT int stream_renderer_create_fence(const stream_renderer_fence* fence) {
  State& s = state();
  std::unique_lock lock(s.mutex);
  const bool per_context = (fence->flags & STREAM_RENDERER_FLAG_FENCE_RING_IDX) != 0;
  if (per_context && !s.contexts.contains(fence->ctx_id)) return -EINVAL;
  const TimelineKey key =
      per_context ? TimelineKey{fence->ctx_id, fence->ring_idx} : TimelineKey{0, kGlobalRing};
  Timeline& timeline = s.timelines[key];
  stream_renderer_fence signalled{};
  signalled.flags = STREAM_RENDERER_FLAG_FENCE;
  signalled.fence_id = fence->fence_id;
  if (per_context) {
    signalled.flags |= STREAM_RENDERER_FLAG_FENCE_RING_IDX;
    signalled.ctx_id = fence->ctx_id;
    signalled.ring_idx = fence->ring_idx;
  }
  if (!timeline.work_pending && timeline.queued == 0) {
    // Nothing ahead of it: signalled right here, on the caller's thread.
    ++s.synchronous_fences;
    Record(s, "fence_signalled " + std::to_string(fence->fence_id) + " synchronous");
    stream_renderer_fence_callback callback = s.fence_callback;
    void* user_data = s.user_data;
    lock.unlock();
    callback(user_data, &signalled);
    return 0;
  }
  timeline.work_pending = false;  // This fence covers the work submitted so far.
  ++timeline.queued;
  s.fence_queue.emplace_back(key, signalled);
  Record(s, "fence_queued " + std::to_string(fence->fence_id));
  lock.unlock();
  s.changed.notify_all();
  return 0;
}
#endif

// Test hooks (not part of gfxstream's API).

STANDIN_EXPORT uint64_t gfxstream_standin_init_param(uint64_t key) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto found = s.params.find(key);
  return found == s.params.end() ? 0 : found->second;
}

// Newline-separated calls since init, copied into `buffer`; returns the length needed.
STANDIN_EXPORT size_t gfxstream_standin_calls(char* buffer, size_t size) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  std::string text;
  for (const std::string& call : s.calls) text += call + "\n";
  if (buffer != nullptr && size > 0) {
    const size_t copied = std::min(size - 1, text.size());
    std::memcpy(buffer, text.data(), copied);
    buffer[copied] = '\0';
  }
  return text.size() + 1;
}

// The last read into caller-given iovecs (the read-back path).
STANDIN_EXPORT void gfxstream_standin_last_host_read(stream_renderer_box* box,
                                                     uint64_t* bytes_copied, uint64_t* iov_bytes,
                                                     int* iov_count) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  *box = s.last_read.box;
  *bytes_copied = s.last_read.bytes_copied;
  *iov_bytes = s.last_read.iov_bytes;
  *iov_count = s.last_read.iov_count;
}

STANDIN_EXPORT size_t gfxstream_standin_fences_signalled(int synchronous) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  return synchronous != 0 ? s.synchronous_fences : s.worker_fences;
}

// While held, the worker thread signals nothing.
STANDIN_EXPORT void gfxstream_standin_hold_fences(int hold) {
  State& s = state();
  {
    std::lock_guard lock(s.mutex);
    s.hold_fences = hold != 0;
  }
  s.changed.notify_all();
}
