// Host blobs mapped into the host-visible region through vhost-user SHMEM (§5.7.6.9, RESOURCE_
// MAP_BLOB / UNMAP_BLOB), with real virglrenderer and its Venus render server: the VMM's side is
// ShmemWindow, which mmaps each BACKEND_SHMEM_MAP's fd into a window as QEMU maps it into the BAR.
// Skipped, with the reason, where virglrenderer has no Venus here (no render server, no Vulkan).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "integration/hostile_guest_fixture.h"
#include "support/venus_client.h"

namespace vgpu::test {
namespace {

constexpr uint64_t kRegion = 64ull << 20;
constexpr uint32_t kVenusCapset = 4;
constexpr uint32_t kContext = 1;

class BlobMappingTest : public HostileGuestTest {
 protected:
  void StartVenusDaemonOrSkip() {
    Result<std::unique_ptr<DaemonProcess>> daemon =
        DaemonProcess::Start({.arguments = {"--gpu-mode", "virglrenderer", "--capset",
                                            "virgl2,venus", "--host-visible-memory", "64M"}});
    if (!daemon) GTEST_SKIP() << "virglrenderer does not start here: " << daemon.error().message;
    daemon_ = std::move(*daemon);
  }
  // Connects as a VMM with SHMEM; skips when the daemon offers no Venus capset.
  void ConnectVenusOrSkip(ShmemWindowOptions shmem_options = {}, bool shmem = true) {
    NegotiationOptions options;
    options.shmem = shmem;
    options.shmem_options = shmem_options;
    ConnectWithScratch(options);
    if (HasFatalFailure()) return;
    bool venus = false;
    for (uint32_t index = 0; index < 4; ++index) {
      std::optional<gpu::RespCapsetInfo> info = CapsetInfoAt(index);
      if (info && info->hdr.type == static_cast<uint32_t>(ResponseType::kOkCapsetInfo) &&
          info->capset_id == kVenusCapset) {
        venus = true;
      }
    }
    if (!venus)
      GTEST_SKIP() << "virglrenderer offers no Venus capset here (render server or "
                      "host Vulkan driver missing): see the daemon's log";
    ASSERT_EQ(CreateContextRaw(kContext, kVenusCapset), ResponseType::kOkNodata);
  }
  // The daemon with Venus and a connection (with SHMEM unless `shmem` is false) with a Venus
  // context; false when the test is skipped (no Venus here) or failed on the way.
  bool StartVenus(ShmemWindowOptions shmem_options = {}, bool shmem = true) {
    StartVenusDaemonOrSkip();
    if (IsSkipped()) return false;
    ConnectVenusOrSkip(shmem_options, shmem);
    return !IsSkipped() && !HasFatalFailure();
  }
  // A one-page guest blob (virglrenderer holds it too, for contexts to use).
  ResponseType CreateGuestBlob(uint32_t id) {
    if (guest_page_ == 0) guest_page_ = session().ram->Allocate(4096, 4096).value_or(0);
    gpu::ResourceCreateBlob create{};
    create.hdr = Header(CommandType::kResourceCreateBlob);
    create.resource_id = id;
    create.blob_mem = gpu::kBlobMemGuest;
    create.nr_entries = 1;
    create.size = 4096;
    const gpu::MemEntry entry{guest_page_, 4096, 0};
    return SendType(
        create, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&entry), sizeof(entry)));
  }
  ShmemWindow& window() { return *session().shmem; }
  // RESOURCE_MAP_BLOB + RESOURCE_UNMAP_BLOB pairs a second of a mapped blob, `pairs` of them
  // (unmapped first; left unmapped).
  double MapUnmapPairsPerSecond(uint32_t id, int pairs) {
    EXPECT_EQ(UnmapBlob(id), ResponseType::kOkNodata);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < pairs && !HasFailure(); ++i) {
      EXPECT_EQ(MapBlobType(id, 32 << 20), ResponseType::kOkMapInfo);
      EXPECT_EQ(UnmapBlob(id), ResponseType::kOkNodata);
    }
    return pairs / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  uint64_t guest_page_ = 0;
};

TEST_F(BlobMappingTest, VenusBlobIsMappedIntoTheWindowAndKeepsItsBytesAcrossMappings) {
  if (!StartVenus()) return;
  ASSERT_TRUE(session().shmem_config);
  EXPECT_EQ(session().shmem_config->region_count, 1u);
  EXPECT_EQ(session().shmem_config->memory_sizes[1], kRegion);

  // Venus's blob_id 0 is a blob of shared memory (a reply or ring buffer).
  constexpr uint64_t kSize = 64 << 10;
  ASSERT_EQ(CreateHostBlob(kContext, 10, kSize, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  RawOutcome mapped = MapBlob(10, 1 << 20);
  ASSERT_EQ(static_cast<ResponseType>(mapped.type()), ResponseType::kOkMapInfo);
  gpu::RespMapInfo info;
  std::memcpy(&info, mapped.response.data(), sizeof(info));
  EXPECT_EQ(info.map_info, gpu::kMapCacheCached);
  ASSERT_EQ(window().live_mappings(), 1u);
  std::vector<ShmemRequestRecord> requests = window().requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].map.shmid, 1);
  EXPECT_EQ(requests[0].map.shm_offset, 1u << 20);
  EXPECT_EQ(requests[0].map.len, kSize);
  EXPECT_EQ(requests[0].map.flags, vhost_user::kShmemMapReadWrite);
  EXPECT_TRUE(requests[0].had_fd);

  // The guest writes through its mapping; unmapped and mapped elsewhere, the bytes are still
  // there: both mappings are the renderer's memory, not copies.
  std::span<uint8_t> bytes = window().Bytes(1 << 20, kSize);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + 7);
  ASSERT_EQ(UnmapBlob(10), ResponseType::kOkNodata);
  EXPECT_EQ(window().live_mappings(), 0u);
  ASSERT_EQ(static_cast<ResponseType>(MapBlob(10, 8 << 20).type()), ResponseType::kOkMapInfo);
  std::span<uint8_t> again = window().Bytes(8 << 20, kSize);
  for (size_t i = 0; i < again.size(); ++i) {
    ASSERT_EQ(again[i], static_cast<uint8_t>(i * 31 + 7)) << "at " << i;
  }
  // UNREF of a mapped blob unmaps it first.
  ASSERT_EQ(Unref(10), ResponseType::kOkNodata);
  EXPECT_EQ(window().live_mappings(), 0u);
  EXPECT_TRUE(window().anomalies().empty());
}

TEST_F(BlobMappingTest, BadMappingsGetTheirErrorsAndLeakNothing) {
  if (!StartVenus()) return;
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(CreateHostBlob(kContext, 10, 64 << 10, gpu::kBlobFlagUseMappable),
                  ResponseType::kOkNodata);
        ASSERT_EQ(CreateHostBlob(kContext, 11, 64 << 10, gpu::kBlobFlagUseMappable),
                  ResponseType::kOkNodata);
        ASSERT_EQ(CreateGuestBlob(12), ResponseType::kOkNodata);
        // Host blobs: an unknown context, entries where none belong, a blob_id the context never
        // made.
        ASSERT_EQ(CreateHostBlob(99, 13, 64 << 10, 0, 0), ResponseType::kErrInvalidContextId);
        ASSERT_EQ(CreateHostBlob(kContext, 13, 64 << 10, gpu::kBlobFlagUseMappable, 12345),
                  ResponseType::kErrInvalidParameter);
        // A guest blob is not mappable; an unknown resource.
        ASSERT_EQ(MapBlobType(12, 0), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(MapBlobType(77, 0), ResponseType::kErrInvalidResourceId);
        // Outside the region, not page-aligned, running past its end.
        ASSERT_EQ(MapBlobType(10, kRegion), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(MapBlobType(10, 100), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(MapBlobType(10, kRegion - 4096), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(MapBlobType(10, ~0ull - 4095), ResponseType::kErrInvalidParameter);
        // Mapped; twice; another over it.
        ASSERT_EQ(MapBlobType(10, 0), ResponseType::kOkMapInfo);
        ASSERT_EQ(MapBlobType(10, 1 << 20), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(MapBlobType(11, 32 << 10), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(MapBlobType(11, 64 << 10), ResponseType::kOkMapInfo);
        // Unmap what is not mapped.
        ASSERT_EQ(UnmapBlob(12), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(UnmapBlob(77), ResponseType::kErrInvalidResourceId);
        ASSERT_EQ(UnmapBlob(10), ResponseType::kOkNodata);
        ASSERT_EQ(UnmapBlob(10), ResponseType::kErrInvalidParameter);
        for (uint32_t id : {10u, 11u, 12u}) ASSERT_EQ(Unref(id), ResponseType::kOkNodata);
        ASSERT_EQ(window().live_mappings(), 0u);
      },
      100);
  EXPECT_TRUE(window().anomalies().empty());
}

TEST_F(BlobMappingTest, FrontendThatFailsOrNeverAnswersCostsAnErrorNotTheDaemon) {
  if (!StartVenus(ShmemWindowOptions{.answer = ShmemWindowOptions::Answer::kFail})) return;
  ASSERT_EQ(CreateHostBlob(kContext, 10, 64 << 10, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  EXPECT_EQ(MapBlobType(10, 0), ResponseType::kErrUnspec);
  EXPECT_EQ(UnmapBlob(10), ResponseType::kErrInvalidParameter);  // Nothing was mapped.
  EXPECT_EQ(window().live_mappings(), 0u);

  // A frontend that never answers: the request times out (bounded), the channel is given up,
  // later maps fail at once, and the daemon keeps serving.
  connected_.reset();
  ConnectVenusOrSkip(ShmemWindowOptions{.answer = ShmemWindowOptions::Answer::kNever});
  if (HasFatalFailure()) return;
  ASSERT_EQ(CreateHostBlob(kContext, 10, 64 << 10, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  EXPECT_EQ(MapBlobType(10, 0), ResponseType::kErrUnspec);
  EXPECT_EQ(MapBlobType(10, 0), ResponseType::kErrUnspec);
  EXPECT_EQ(window().requests().size(), 1u);  // The second never went out.
  EXPECT_EQ(Unref(10), ResponseType::kOkNodata);
}

TEST_F(BlobMappingTest, DeviceResetWithMappingsLiveForgetsThemAndTheRegionIsFreeAgain) {
  if (!StartVenus()) return;
  ASSERT_EQ(CreateHostBlob(kContext, 10, 64 << 10, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  ASSERT_EQ(MapBlobType(10, 0), ResponseType::kOkMapInfo);
  const size_t requests_before = window().requests().size();
  // The guest driver resets the device (QEMU sends RESET_DEVICE); the VMM drops its mappings.
  ASSERT_TRUE(connected_->frontend.ResetDevice());
  window().DropAll();
  ASSERT_TRUE(connected_->frontend.RestartAfterReset(session(), {}));
  // The daemon asked nothing of the VMM for the reset, and forgot the mapping: the blob and its
  // context are gone, and the same place can be mapped again.
  EXPECT_EQ(window().requests().size(), requests_before);
  EXPECT_EQ(MapBlobType(10, 0), ResponseType::kErrInvalidResourceId);
  ASSERT_EQ(CreateContextRaw(kContext, kVenusCapset), ResponseType::kOkNodata);
  ASSERT_EQ(CreateHostBlob(kContext, 10, 64 << 10, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  EXPECT_EQ(MapBlobType(10, 0), ResponseType::kOkMapInfo);
  EXPECT_EQ(window().live_mappings(), 1u);
  EXPECT_EQ(Unref(10), ResponseType::kOkNodata);
  EXPECT_EQ(window().live_mappings(), 0u);
  EXPECT_TRUE(window().anomalies().empty());
}

TEST_F(BlobMappingTest, WithoutShmemNothingIsMappedAndDisconnectDropsMappings) {
  if (!StartVenus({}, /*shmem=*/false)) return;
  EXPECT_FALSE(session().shmem_config);
  ASSERT_EQ(CreateHostBlob(kContext, 10, 64 << 10, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  EXPECT_EQ(MapBlobType(10, 0), ResponseType::kErrUnspec);
  const ResourceSample before = Sample();
  const std::vector<std::string> fds_before = daemon_->OpenFdTargets();

  // Connections that leave mappings live: the next connection starts clean, nothing leaks.
  for (int round = 0; round < 5; ++round) {
    connected_.reset();
    ConnectVenusOrSkip();
    if (HasFatalFailure()) return;
    ASSERT_EQ(CreateHostBlob(kContext, 10, 64 << 10, gpu::kBlobFlagUseMappable),
              ResponseType::kOkNodata);
    ASSERT_EQ(MapBlobType(10, 0), ResponseType::kOkMapInfo);
    ASSERT_EQ(window().live_mappings(), 1u);
  }
  connected_.reset();
  ConnectVenusOrSkip({}, /*shmem=*/false);
  if (HasFatalFailure()) return;
  ASSERT_EQ(CreateHostBlob(kContext, 10, 64 << 10, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  const ResourceSample after = Sample();
  EXPECT_EQ(after.open_fds, before.open_fds);
  if (after.open_fds != before.open_fds) PrintFdChanges(fds_before);
}

// vkSeekReplyCommandStreamMESA to 0: a Venus command that does nothing a test could notice.
std::span<const uint8_t> SeekReplyStream() {
  static constexpr uint32_t kSeek[4] = {179, 0, 0, 0};  // Type, flags, u64 position.
  return {reinterpret_cast<const uint8_t*>(kSeek), sizeof(kSeek)};
}

// The guest's side of Venus through the daemon (the client's transport): SUBMIT_3D on the Venus
// context, blobs attached to it and mapped through the ShmemWindow at increasing offsets.
class VenusClientTest : public BlobMappingTest, public VenusTransport {
 protected:
  Result<void> Submit(std::span<const uint8_t> commands) override {
    gpu::CmdSubmit submit{};
    submit.hdr = Header(CommandType::kSubmit3d);
    submit.hdr.ctx_id = kContext;
    submit.size = static_cast<uint32_t>(commands.size());
    return Expect("SUBMIT_3D", SendType(submit, commands), ResponseType::kOkNodata);
  }
  Result<std::span<uint8_t>> CreateAndMapBlob(uint32_t resource_id, uint64_t blob_id,
                                              uint32_t flags, uint64_t size) override {
    if (Result<void> made = Expect("RESOURCE_CREATE_BLOB",
                                   CreateHostBlob(kContext, resource_id, size, flags, blob_id),
                                   ResponseType::kOkNodata);
        !made) {
      return ErrorOf(made);
    }
    // As Linux does for every blob a context's process opens (in-process Venus needs it for the
    // reply stream; the render server attached it already).
    gpu::CtxResource attach{};
    attach.hdr = Header(CommandType::kCtxAttachResource);
    attach.hdr.ctx_id = kContext;
    attach.resource_id = resource_id;
    if (Result<void> attached =
            Expect("CTX_ATTACH_RESOURCE", SendType(attach), ResponseType::kOkNodata);
        !attached) {
      return ErrorOf(attached);
    }
    const uint64_t offset = next_offset_;
    if (Result<void> mapped =
            Expect("RESOURCE_MAP_BLOB", MapBlobType(resource_id, offset), ResponseType::kOkMapInfo);
        !mapped) {
      return ErrorOf(mapped);
    }
    next_offset_ += (size + 0xffff) & ~uint64_t{0xffff};
    mapped_at_[resource_id] = offset;
    return window().Bytes(offset, size);
  }

  // `count` empty submits, each fenced with a Vulkan fence that is polled until it signals; per
  // second.
  double PolledFencesPerSecond(VenusClient& client, int count) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < count && !HasFailure(); ++i) {
      Result<void> fenced = client.SubmitAndWaitForFence(std::chrono::seconds(10));
      EXPECT_TRUE(fenced) << fenced.error().message;
    }
    return count / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  // `client`'s instance and device (its queue bound to `queue_ring`, 0 for none); the physical
  // device, or nullopt after a test failure.
  std::optional<VenusPhysicalDevice> BringUp(VenusClient& client, uint32_t queue_ring) {
    Result<void> instance = client.CreateInstance();
    EXPECT_TRUE(instance) << instance.error().message << "; see the daemon's log";
    if (!instance) return std::nullopt;
    Result<VenusPhysicalDevice> device = client.FirstPhysicalDevice();
    EXPECT_TRUE(device) << device.error().message;
    if (!device) return std::nullopt;
    Result<void> created = client.CreateDevice(*device, queue_ring);
    EXPECT_TRUE(created) << created.error().message;
    if (!created) return std::nullopt;
    return *device;
  }

  // SUBMIT_3D of `commands` with a virtio-gpu fence on the context's ring `ring` (§5.7.6.7,
  // VIRTIO_GPU_FLAG_INFO_RING_IDX); the response's header, once it came.
  gpu::CtrlHdr SubmitFencedOnRing(uint8_t ring, uint64_t fence_id,
                                  std::span<const uint8_t> commands) {
    gpu::CmdSubmit submit{};
    submit.hdr = Header(CommandType::kSubmit3d);
    submit.hdr.flags = gpu::kFlagFence | gpu::kFlagInfoRingIdx;
    submit.hdr.fence_id = fence_id;
    submit.hdr.ctx_id = kContext;
    submit.hdr.ring_idx = ring;
    submit.size = static_cast<uint32_t>(commands.size());
    RawOutcome answered = Send(submit, sizeof(gpu::CtrlHdr), commands);
    gpu::CtrlHdr response{};
    EXPECT_GE(answered.response.size(), sizeof(response));
    if (answered.response.size() >= sizeof(response)) {
      std::memcpy(&response, answered.response.data(), sizeof(response));
    }
    return response;
  }
  static void ExpectFenceAnswered(const gpu::CtrlHdr& response, uint8_t ring, uint64_t fence_id) {
    EXPECT_EQ(response.type, static_cast<uint32_t>(ResponseType::kOkNodata));
    EXPECT_EQ(response.flags & (gpu::kFlagFence | gpu::kFlagInfoRingIdx),
              gpu::kFlagFence | gpu::kFlagInfoRingIdx);
    EXPECT_EQ(response.fence_id, fence_id);
    EXPECT_EQ(response.ctx_id, kContext);
    EXPECT_EQ(response.ring_idx, ring);
  }

 private:
  static Result<void> Expect(const char* command, ResponseType got, ResponseType wanted) {
    if (got == wanted) return {};
    return MakeError(ErrorKind::kInternal, std::string(command) + " answered " +
                                               gpu::CommandName(static_cast<uint32_t>(got)));
  }

  uint64_t next_offset_ = 0;

 protected:
  std::map<uint32_t, uint64_t> mapped_at_;  // Where CreateAndMapBlob mapped each blob.
};

TEST_F(VenusClientTest, CopiesAndFillsOnTheHostGpuThroughMappedMemory) {
  if (!StartVenus()) return;
  using Clock = std::chrono::steady_clock;
  constexpr std::chrono::milliseconds kFenceTimeout{10000};
  VenusClient client(*this, /*reply_resource_id=*/100);

  const Clock::time_point start = Clock::now();
  std::optional<VenusPhysicalDevice> device = BringUp(client, /*queue_ring=*/0);
  ASSERT_TRUE(device);
  std::printf("Venus device: %s (type %u, Vulkan %u.%u, vendor 0x%04x)\n", device->name.c_str(),
              device->device_type, device->api_version >> 22, (device->api_version >> 12) & 0x3ff,
              device->vendor_id);
  RecordProperty("venus_device", device->name);
  EXPECT_FALSE(device->name.empty());

  // 64 KiB of host-visible memory: the guest writes a pattern into the first 16 KiB through its
  // mapping; the host's Vulkan copies it to 16..32 KiB and fills 32..48 KiB; the guest reads the
  // results through the same mapping.
  constexpr uint64_t kSize = 64 << 10, kQuarter = 16 << 10;
  Result<VenusMappedBuffer> buffer = client.CreateMappedBuffer(101, kSize);
  ASSERT_TRUE(buffer) << buffer.error().message;
  for (size_t i = 0; i < kSize; ++i)
    buffer->bytes[i] = i < kQuarter ? static_cast<uint8_t>(i * 7 + 3) : 0;
  Result<void> ran = client.CopyAndFill(*buffer, 0, kQuarter, kQuarter, 2 * kQuarter, kQuarter,
                                        0xc0ffee11u, kFenceTimeout);
  ASSERT_TRUE(ran) << ran.error().message;
  const double first_fence_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  for (size_t i = 0; i < kQuarter; ++i) {
    ASSERT_EQ(buffer->bytes[kQuarter + i], static_cast<uint8_t>(i * 7 + 3)) << "copy, byte " << i;
  }
  for (size_t i = 0; i < kQuarter; i += 4) {
    uint32_t word;
    std::memcpy(&word, buffer->bytes.data() + 2 * kQuarter + i, 4);
    ASSERT_EQ(word, 0xc0ffee11u) << "fill, byte " << i;
  }
  for (size_t i = 3 * kQuarter; i < kSize; ++i) ASSERT_EQ(buffer->bytes[i], 0) << i;

  // Figures: fences a second (an empty submit with a fence, polled) and map/unmap pairs a
  // second of the memory's blob.
  const double fences_per_second = PolledFencesPerSecond(client, 50);
  ASSERT_FALSE(HasFailure());
  const double maps_per_second = MapUnmapPairsPerSecond(101, 200);
  ASSERT_FALSE(HasFailure());
  std::printf(
      "Venus figures: instance to first fence %.1f ms, %.0f fences/s, %.0f map/unmap "
      "pairs/s\n",
      first_fence_ms, fences_per_second, maps_per_second);
  RecordProperty("instance_to_first_fence_ms", std::to_string(first_fence_ms));
  RecordProperty("fences_per_second", std::to_string(fences_per_second));
  RecordProperty("map_unmap_pairs_per_second", std::to_string(maps_per_second));

  ASSERT_TRUE(client.Destroy());
  for (uint32_t id : {100u, 101u}) EXPECT_EQ(Unref(id), ResponseType::kOkNodata);
  EXPECT_EQ(window().live_mappings(), 0u);
  EXPECT_TRUE(window().anomalies().empty());
}

TEST_F(VenusClientTest, FencesOnTheHostDevice) {
  if (!StartVenus()) return;
  using Clock = std::chrono::steady_clock;
  constexpr std::chrono::milliseconds kFenceTimeout{10000};
  VenusClient client(*this, /*reply_resource_id=*/100);
  const Clock::time_point start = Clock::now();
  constexpr uint8_t kQueueRing = 1;
  std::optional<VenusPhysicalDevice> device = BringUp(client, kQueueRing);
  ASSERT_TRUE(device);
  Result<void> first = client.SubmitAndWaitForFence(kFenceTimeout);
  ASSERT_TRUE(first) << first.error().message;
  const double first_fence_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  constexpr int kFences = 200;
  const double fences_per_second = PolledFencesPerSecond(client, kFences);
  ASSERT_FALSE(HasFailure());
  // Fences on the queue's ring, as Mesa's driver fences its submits: an empty vkQueueSubmit in a
  // SUBMIT_3D fenced on the ring, answered when the queue has run it.
  const std::vector<uint8_t> empty = client.QueueSubmitCommand(/*with_commands=*/false);
  const Clock::time_point ring_start = Clock::now();
  for (int i = 0; i < kFences && !HasFailure(); ++i) {
    ExpectFenceAnswered(SubmitFencedOnRing(kQueueRing, 1000 + i, empty), kQueueRing, 1000 + i);
  }
  const double ring_fences_per_second =
      kFences / std::chrono::duration<double>(Clock::now() - ring_start).count();
  // Map/unmap pairs a second of the reply blob (shared memory virglrenderer makes, so mappable
  // whatever the Vulkan driver exports), then mapped back where the client reads its replies.
  const double maps_per_second = MapUnmapPairsPerSecond(100, 200);
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(MapBlobType(100, mapped_at_.at(100)), ResponseType::kOkMapInfo);
  std::printf(
      "Venus on %s: instance to first fence %.1f ms, %.0f fences/s (Vulkan fence polled), %.0f "
      "fences/s (virtio-gpu fence on the queue's ring), %.0f map/unmap pairs/s (reply blob)\n",
      device->name.c_str(), first_fence_ms, fences_per_second, ring_fences_per_second,
      maps_per_second);
  RecordProperty("venus_device", device->name);
  RecordProperty("fences_per_second", std::to_string(fences_per_second));
  RecordProperty("queue_ring_fences_per_second", std::to_string(ring_fences_per_second));
  RecordProperty("reply_blob_map_unmap_pairs_per_second", std::to_string(maps_per_second));

  // A virtio-gpu fence on the context's ring 0 (§5.7.6.7, VIRTIO_GPU_FLAG_INFO_RING_IDX): the
  // SUBMIT_3D is answered once the ring has consumed it, the fence echoed with its ring.
  for (uint64_t fence_id : {uint64_t{77}, uint64_t{78}, uint64_t{1} << 40}) {
    ExpectFenceAnswered(SubmitFencedOnRing(0, fence_id, SeekReplyStream()), 0, fence_id);
  }
  ASSERT_TRUE(client.Destroy());
  EXPECT_EQ(Unref(100), ResponseType::kOkNodata);
}

TEST_F(VenusClientTest, FencesOnAQueuesRingAreAnsweredWhenTheQueueHasRunItsWork) {
  if (!StartVenus()) return;
  constexpr uint8_t kQueueRing = 1;
  VenusClient client(*this, /*reply_resource_id=*/100);
  ASSERT_TRUE(BringUp(client, kQueueRing));

  // The copy and fill of CopiesAndFillsOnTheHostGpuThroughMappedMemory, submitted as Mesa's
  // Venus driver submits: vkQueueSubmit without a Vulkan fence, in a SUBMIT_3D fenced on the
  // queue's ring. Its answer is the proof that the queue ran the work: no Vulkan call is made
  // before the bytes are read.
  constexpr uint64_t kSize = 64 << 10, kQuarter = 16 << 10;
  Result<VenusMappedBuffer> buffer = client.CreateMappedBuffer(101, kSize);
  ASSERT_TRUE(buffer) << buffer.error().message;
  for (size_t i = 0; i < kSize; ++i)
    buffer->bytes[i] = i < kQuarter ? static_cast<uint8_t>(i * 5 + 1) : 0;
  ASSERT_TRUE(client.RecordCopyAndFill(*buffer, 0, kQuarter, kQuarter, 2 * kQuarter, kQuarter,
                                       0x600dcafeu));
  const std::vector<uint8_t> work = client.QueueSubmitCommand(/*with_commands=*/true);
  ExpectFenceAnswered(SubmitFencedOnRing(kQueueRing, 500, work), kQueueRing, 500);
  for (size_t i = 0; i < kQuarter; ++i) {
    ASSERT_EQ(buffer->bytes[kQuarter + i], static_cast<uint8_t>(i * 5 + 1)) << "copy, byte " << i;
  }
  for (size_t i = 0; i < kQuarter; i += 4) {
    uint32_t word;
    std::memcpy(&word, buffer->bytes.data() + 2 * kQuarter + i, 4);
    ASSERT_EQ(word, 0x600dcafeu) << "fill, byte " << i;
  }

  // Fences on the queue's ring and on ring 0 (the CPU timeline) in turn: each answered with its
  // own ring.
  const std::vector<uint8_t> empty = client.QueueSubmitCommand(/*with_commands=*/false);
  for (uint64_t fence_id = 1000; fence_id < 1040 && !HasFailure(); fence_id += 2) {
    ExpectFenceAnswered(SubmitFencedOnRing(kQueueRing, fence_id, empty), kQueueRing, fence_id);
    ExpectFenceAnswered(SubmitFencedOnRing(0, fence_id + 1, SeekReplyStream()), 0, fence_id + 1);
  }

  ASSERT_TRUE(client.Destroy());
  for (uint32_t id : {100u, 101u}) EXPECT_EQ(Unref(id), ResponseType::kOkNodata);
  EXPECT_TRUE(window().anomalies().empty());
}

TEST_F(VenusClientTest, FenceOnARingWithoutAQueueIsAnsweredByTheContextsEndAtTheLatest) {
  if (!StartVenus()) return;
  VenusClient client(*this, /*reply_resource_id=*/100);
  ASSERT_TRUE(BringUp(client, /*queue_ring=*/1));

  // A fence on ring 2, where no queue is bound. In-process, virglrenderer refuses it and the
  // command is answered at once; the render server's worker gives the whole context up instead,
  // and nothing ever signals it. Either way the guest gets its command back when it destroys the
  // context, before the destroy's own answer.
  Result<uint64_t> memory = session().ram->Allocate(4096, 4096);
  ASSERT_TRUE(memory);
  gpu::CmdSubmit submit{};
  submit.hdr = Header(CommandType::kSubmit3d);
  submit.hdr.flags = gpu::kFlagFence | gpu::kFlagInfoRingIdx;
  submit.hdr.fence_id = 5000;
  submit.hdr.ctx_id = kContext;
  submit.hdr.ring_idx = 2;
  submit.size = static_cast<uint32_t>(SeekReplyStream().size());
  ASSERT_TRUE(session().ram->WriteObject(*memory, submit));
  ASSERT_TRUE(session().ram->Write(*memory + sizeof(submit), SeekReplyStream()));
  const uint64_t response_address = *memory + 2048;
  Result<uint16_t> fenced = session().control_queue->AddChain(
      {{*memory, static_cast<uint32_t>(sizeof(submit) + SeekReplyStream().size())}},
      {{response_address, sizeof(gpu::CtrlHdr)}});
  ASSERT_TRUE(fenced);
  session().control_queue->Kick();

  gpu::CtrlHdr destroy = Header(CommandType::kCtxDestroy);
  destroy.ctx_id = kContext;
  Result<uint64_t> destroy_memory = session().ram->Allocate(4096, 4096);
  ASSERT_TRUE(destroy_memory && session().ram->WriteObject(*destroy_memory, destroy));
  Result<uint16_t> destroyed = session().control_queue->AddChain(
      {{*destroy_memory, sizeof(destroy)}}, {{*destroy_memory + 2048, sizeof(gpu::CtrlHdr)}});
  ASSERT_TRUE(destroyed);
  session().control_queue->Kick();
  std::vector<UsedElement> earlier;
  ASSERT_TRUE(session().control_queue->WaitForUsedHead(*destroyed, kCommandTimeout, &earlier));
  EXPECT_TRUE(std::any_of(earlier.begin(), earlier.end(), [&](const UsedElement& used) {
    return used.id == *fenced;
  })) << "the fenced command was not answered before the context's destroy";
  Result<gpu::CtrlHdr> response = session().ram->ReadObject<gpu::CtrlHdr>(response_address);
  ASSERT_TRUE(response);
  ExpectFenceAnswered(*response, 2, 5000);

  // The daemon serves a new Venus context.
  ASSERT_EQ(CreateContextRaw(kContext, kVenusCapset), ResponseType::kOkNodata);
  VenusClient again(*this, /*reply_resource_id=*/200);
  ASSERT_TRUE(again.CreateInstance());
  ASSERT_TRUE(again.Destroy());
  for (uint32_t id : {100u, 200u}) EXPECT_EQ(Unref(id), ResponseType::kOkNodata);
}

}  // namespace
}  // namespace vgpu::test
