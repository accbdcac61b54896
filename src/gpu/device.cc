#include "gpu/device.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "gpu/command_decoder.h"
#include "gpu/reply.h"
#include "virtio/chain_io.h"
#include "virtio/ring_record.h"

namespace vgpu::gpu {

GpuDevice::GpuDevice(const GpuDeviceConfig& config) : config_(config) {}

GpuDevice::~GpuDevice() = default;

uint64_t GpuDevice::DeviceFeatures() const {
  // RESOURCE_BLOB in every mode: guest blobs need nothing of the VMM; mapping host blobs needs
  // SHMEM, which the transport negotiates separately.
  uint64_t features = (1ull << kFeatureResourceUuid) | (1ull << kFeatureResourceBlob);
  if (!config_.headless) features |= 1ull << kFeatureEdid;
  if (config_.renderer_factory) {
    features |= 1ull << kFeatureVirgl;
    if (config_.context_init) features |= 1ull << kFeatureContextInit;
  }
  return features;
}

uint32_t GpuDevice::ConfigSize() const { return sizeof(Config); }

uint64_t GpuDevice::HostVisibleSize() const {
  // Only a renderer that makes host blobs has anything to map (set before any connection).
  return renderer_makes_blobs_.load() ? config_.host_visible_size : 0;
}

std::vector<uint64_t> GpuDevice::SharedMemoryRegions() const {
  if (HostVisibleSize() == 0) return {};
  std::vector<uint64_t> regions(kShmIdHostVisible + 1, 0);
  regions[kShmIdHostVisible] = HostVisibleSize();
  return regions;
}

void GpuDevice::SetSharedMemoryMapper(std::shared_ptr<virtio::SharedMemoryMapper> mapper) {
  if (model_) model_->SetSharedMemoryMapper(std::move(mapper));
}

void GpuDevice::ReadConfig(uint32_t offset, std::span<uint8_t> destination) const {
  Config config{};
  uint32_t num_capsets;
  {
    std::lock_guard lock(config_mutex_);
    config.events_read = events_read_;
    num_capsets = num_capsets_;
  }
  // QEMU replaces num_scanouts with its max_outputs (docs/ARCHITECTURE.md, "What QEMU does that the
  // daemon relies on"); 16 is what we can serve.
  config.num_scanouts = kMaxScanouts;
  config.num_capsets = num_capsets;
  // Bounds: the vhost-user layer checked offset + size <= ConfigSize().
  std::memcpy(destination.data(), reinterpret_cast<const uint8_t*>(&config) + offset,
              destination.size());
}

void GpuDevice::WriteConfig(uint32_t offset, std::span<const uint8_t> source) {
  // Only events_clear is writable (§5.7.4): each 1 bit clears that bit of events_read.
  Config written{};
  std::memcpy(reinterpret_cast<uint8_t*>(&written) + offset, source.data(), source.size());
  const size_t clear_offset = offsetof(Config, events_clear);
  if (offset <= clear_offset && offset + source.size() >= clear_offset + sizeof(uint32_t)) {
    std::lock_guard lock(config_mutex_);
    events_read_ &= ~written.events_clear;
  }
}

Result<void> GpuDevice::SetEventLoop(EventLoop& loop) {
  loop_ = &loop;
  display_ = std::make_unique<DisplayChannel>(
      loop, DisplayChannelOptions{.lend_pages = config_.lend_display_pages});
  // A command that held the control queue was answered: go on with the ones behind it, from the
  // loop rather than from inside the answer.
  in_flight_[kControlQueue].set_on_released(
      [this] { loop_->Post([this] { ProcessControlQueue(); }); });
  if (config_.renderer_factory) {
    Result<std::unique_ptr<renderer::Renderer>> renderer = config_.renderer_factory();
    if (!renderer) return ErrorOf(renderer);
    renderer_ = std::move(*renderer);
    renderer_makes_blobs_ = renderer_->HasBlobs();
    renderer_->SetFenceHandler(
        [this](const renderer::FenceSignal& fence) { model_->OnFenceSignalled(fence); });
    if (renderer_->PollFd() >= 0) {
      Result<WatchId> watch =
          loop.Watch(renderer_->PollFd(), EPOLLIN, [this](uint32_t) { OnRendererReadable(); });
      if (!watch) return ErrorOf(watch);
      renderer_watch_ = *watch;
    }
    {
      std::lock_guard lock(config_mutex_);
      num_capsets_ = renderer_->CapsetCount();
    }
    LogInfo("%s renderer ready: %u capsets", renderer_->name(), renderer_->CapsetCount());
  }
  model_ = std::make_unique<CommandDispatcher>(
      DispatcherConfig{.max_host_memory = config_.max_host_memory,
                       .edid_offered = !config_.headless,
                       .readback_interval = config_.readback_interval,
                       .host_visible_size = HostVisibleSize()},
      config_.headless ? nullptr : display_.get(), renderer_.get());
  return {};
}

void GpuDevice::OnRendererReadable() {
  // Fence callbacks answer held commands; their chains go back through the in-flight table,
  // which notifies the driver once for the batch.
  virtio::InFlightChains::Batch batch(in_flight_[kControlQueue]);
  renderer_->Poll();
}

void GpuDevice::Activate(uint64_t acked_features) { model_->set_acked_features(acked_features); }

void GpuDevice::QueueStarted(uint32_t queue_index, virtio::SplitVirtqueue* queue, bool enabled) {
  queues_[queue_index] = queue;
  in_flight_[queue_index].Start(queue, enabled);
}

void GpuDevice::QueueEnabled(uint32_t queue_index, bool enabled) {
  // Disabled: processed without side effects; answers that come meanwhile are parked and go out
  // when it is enabled again (pending_chain.h).
  in_flight_[queue_index].SetEnabled(enabled);
}

void GpuDevice::QueueStopping(uint32_t queue_index) {
  if (queue_index == kControlQueue) {
    // Finished fences are answered first; what the VMM or the renderer still owes goes back
    // unanswered, so that the ring stops with nothing in flight (vhost-user GET_VRING_BASE).
    if (renderer_ && queues_[kControlQueue] != nullptr) OnRendererReadable();
    if (model_) model_->DropHeld();
  }
  in_flight_[queue_index].Stop();
  queues_[queue_index] = nullptr;
}

void GpuDevice::Reset() {
  if (model_ && model_->statistics().commands > 0) {
    const CommandStatistics& totals = model_->statistics();
    LogInfo(
        "totals so far: %llu control commands (%llu rejected), %llu cursor commands, "
        "%llu display updates sent",
        static_cast<unsigned long long>(totals.commands),
        static_cast<unsigned long long>(totals.errors),
        static_cast<unsigned long long>(totals.cursor_commands),
        static_cast<unsigned long long>(totals.display_updates));
  }
  for (virtio::InFlightChains& chains : in_flight_) chains.Stop();
  queues_ = {};
  if (model_) model_->Reset();
  if (display_) display_->Detach();
  headless_socket_.reset();
}

void GpuDevice::Shutdown() {
  // The model refers to the renderer; both go here, on the thread that owns the renderer's GL
  // contexts (virgl_renderer_cleanup from another thread aborts in libepoxy).
  model_.reset();
  if (renderer_watch_) loop_->Unwatch(*renderer_watch_);
  renderer_watch_.reset();
  renderer_.reset();
  display_.reset();
}

void GpuDevice::SetDisplaySocket(UniqueFd socket) {
  if (config_.headless) {
    // Kept open but never written: closing it would look like a broken backend to QEMU.
    LogInfo("headless: holding the VMM's display socket without sending display output");
    headless_socket_ = std::move(socket);
    return;
  }
  if (display_) display_->Attach(std::move(socket));
}

void GpuDevice::QueueNotified(uint32_t queue_index) {
  if (ring_recorder_.enabled()) RecordRing(queue_index);
  if (queue_index == kControlQueue) {
    ProcessControlQueue();
  } else {
    ProcessCursorQueue();
  }
}

void GpuDevice::RecordRing(uint32_t queue_index) {
  const virtio::SplitVirtqueue* queue = queues_[queue_index];
  if (queue == nullptr || recorded_kicks_[queue_index] >= kMaxRecordedKicks) return;
  std::vector<uint8_t> record = virtio::EncodeRingRecord(*queue, queue_index);
  if (record.empty()) return;
  ring_recorder_.RecordBytes(record);
  ++recorded_kicks_[queue_index];
}

void GpuDevice::RecordControlRequest(const virtio::DescriptorChain& chain) {
  virtio::ChainReader reader(chain);
  std::vector<uint8_t> bytes(std::min<uint64_t>(reader.remaining(), kMaxRecordedRequest));
  (void)reader.Read(bytes);  // As long as what remains: cannot fail.
  control_recorder_.RecordBytes(bytes);
}

void GpuDevice::ProcessControlQueue() {
  virtio::SplitVirtqueue* queue = queues_[kControlQueue];
  if (queue == nullptr) return;
  virtio::InFlightChains& in_flight = in_flight_[kControlQueue];
  virtio::InFlightChains::Batch batch(in_flight);  // The driver is notified once, at the end.
  uint32_t handled = 0;
  do {
    while (!in_flight.held()) {
      if (handled == kControlBatch) {
        // Yield to the loop (its wake-up fd is polled with the others) and come back.
        loop_->Post([this] { ProcessControlQueue(); });
        return;
      }
      std::optional<virtio::PoppedChain> popped = queue->Pop();
      if (!popped) break;
      ++handled;
      if (!popped->chain) {
        guest_log_.Log(LogLevel::kWarning, "control queue: %s",
                       popped->chain.error().message.c_str());
        in_flight.Admit(popped->head_index, {}, 0).Cancel();
        continue;
      }
      virtio::DescriptorChain& chain = *popped->chain;
      if (control_recorder_.enabled()) RecordControlRequest(chain);
      DecodedCommand decoded = DecodeControl(chain, model_->decode_policy());
      const CtrlHdr header = decoded.header;
      Reply reply(
          in_flight.Admit(chain.head_index, std::move(chain.writable), chain.writable_length),
          header);
      model_->Dispatch(std::move(decoded), std::move(reply));
    }
  } while (!in_flight.held() && queue->EnableKickAndRecheck());
}

void GpuDevice::ProcessCursorQueue() {
  virtio::SplitVirtqueue* queue = queues_[kCursorQueue];
  if (queue == nullptr) return;
  virtio::InFlightChains& in_flight = in_flight_[kCursorQueue];
  virtio::InFlightChains::Batch batch(in_flight);
  uint32_t handled = 0;
  do {
    while (true) {
      if (handled == kCursorBatch) {
        loop_->Post([this] { ProcessCursorQueue(); });
        return;
      }
      std::optional<virtio::PoppedChain> popped = queue->Pop();
      if (!popped) break;
      ++handled;
      // Like QEMU, cursor commands go back with nothing written.
      virtio::PendingChain pending = in_flight.Admit(popped->head_index, {}, 0);
      if (popped->chain) {
        model_->DispatchCursor(DecodeCursor(*popped->chain));
      } else {
        guest_log_.Log(LogLevel::kWarning, "cursor queue: %s",
                       popped->chain.error().message.c_str());
      }
      pending.Cancel();
    }
  } while (queue->EnableKickAndRecheck());
}

}  // namespace vgpu::gpu
