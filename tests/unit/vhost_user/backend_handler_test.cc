#include "vhost_user/backend_handler.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>

#include "message_channel.h"

namespace vgpu::vhost_user {
namespace {

using testing::MessageChannel;

// Records what the vhost-user layer asks of the device.
class RecordingDevice final : public virtio::Device {
 public:
  explicit RecordingDevice(std::vector<uint64_t> shared_memory_regions = {})
      : regions(std::move(shared_memory_regions)) {}
  uint64_t DeviceFeatures() const override { return 1ull << 1; }
  uint32_t QueueCount() const override { return 2; }
  uint32_t MaxQueueSize(uint32_t) const override { return 1024; }
  uint32_t ConfigSize() const override { return 16; }
  void ReadConfig(uint32_t offset, std::span<uint8_t> destination) const override {
    for (size_t i = 0; i < destination.size(); ++i)
      destination[i] = static_cast<uint8_t>(offset + i);
  }
  void WriteConfig(uint32_t offset, std::span<const uint8_t> source) override {
    last_config_write_offset = offset;
    last_config_write_size = static_cast<uint32_t>(source.size());
  }
  Result<void> SetEventLoop(EventLoop&) override { return {}; }
  void Activate(uint64_t features) override { activated_features = features; }
  void QueueStarted(uint32_t index, virtio::SplitVirtqueue* queue, bool) override {
    queues[index] = queue;
    ++started;
  }
  void QueueEnabled(uint32_t, bool) override {}
  void QueueNotified(uint32_t) override { ++notified; }
  void QueueMemoryReplaced(uint32_t, std::shared_ptr<const virtio::GuestMemory>) override {}
  void QueueStopping(uint32_t index) override {
    queues[index] = nullptr;
    ++stopped;
  }
  void Reset() override { ++resets; }
  std::vector<uint64_t> SharedMemoryRegions() const override { return regions; }
  void SetSharedMemoryMapper(std::shared_ptr<virtio::SharedMemoryMapper> given) override {
    mapper = std::move(given);
    ++mapper_changes;
  }

  const std::vector<uint64_t> regions;
  std::shared_ptr<virtio::SharedMemoryMapper> mapper;
  std::atomic<int> mapper_changes{0};

  std::atomic<uint64_t> activated_features{0};
  std::atomic<int> started{0}, notified{0}, stopped{0}, resets{0};
  std::array<virtio::SplitVirtqueue*, 2> queues{};
  uint32_t last_config_write_offset = 0, last_config_write_size = 0;
};

class BackendHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(device_thread_.Start());
    memfd_ = UniqueFd(memfd_create("guest", MFD_CLOEXEC));
    ASSERT_EQ(ftruncate(memfd_.get(), kMemorySize), 0);
  }

  // Sends a message and lets the handler process it; returns whether the handler kept the
  // connection.
  bool Exchange() {
    Result<ReceivedMessage> message = channel_.backend().Receive();
    if (!message) return false;
    return static_cast<bool>(handler_.Handle(*message, channel_.backend()));
  }
  template <class T>
  bool Request(vhost_user::Request request, const T& payload, const std::vector<int>& fds = {},
               uint32_t flags = kVersion) {
    channel_.SendObject(request, payload, fds, flags);
    return Exchange();
  }
  bool Empty(vhost_user::Request request, const std::vector<int>& fds = {},
             uint32_t flags = kVersion) {
    channel_.Send(request, nullptr, 0, fds, flags);
    return Exchange();
  }
  uint64_t ReadU64Reply(vhost_user::Request request) {
    auto reply = channel_.ReadReply();
    EXPECT_TRUE(reply);
    if (!reply) return ~0ull;
    EXPECT_EQ(reply->first.flags, kReplyFlags);
    EXPECT_EQ(reply->first.request, static_cast<uint32_t>(request));
    EXPECT_EQ(reply->second.size(), 8u);
    uint64_t value = 0;
    std::memcpy(&value, reply->second.data(), 8);
    return value;
  }
  void NegotiateProtocol(uint64_t features = kOfferedProtocolFeatures) {
    ASSERT_TRUE(Request(Request::kSetProtocolFeatures, U64Payload{features}));
  }
  MemoryRegionDescription Region(uint64_t guest, uint64_t size, uint64_t offset = 0) {
    return MemoryRegionDescription{guest, size, kUserBase + guest, offset};
  }
  bool AddRegion(const MemoryRegionDescription& region, uint32_t flags = kVersion) {
    return Request(Request::kAddMemReg, SingleMemoryRegion{0, region}, {memfd_.get()}, flags);
  }
  // Sets up queue 0 with rings at fixed guest addresses and returns whether it started.
  bool StartQueue0(UniqueFd& kick) {
    if (!Request(Request::kSetVringNum, VringState{0, 64})) return false;
    VringAddress address{0, 0, kUserBase + 0x1000, kUserBase + 0x3000, kUserBase + 0x2000, 0};
    if (!Request(Request::kSetVringAddr, address)) return false;
    if (!Request(Request::kSetVringBase, VringState{0, 0})) return false;
    kick = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    return Request(Request::kSetVringKick, U64Payload{0}, {kick.get()});
  }

  static constexpr uint64_t kMemorySize = 1 << 20;
  static constexpr uint64_t kUserBase = 0x7f0000000000ull;

  RecordingDevice device_;
  DeviceThread device_thread_{device_};
  std::vector<UniqueFd> received_gpu_sockets_;
  BackendHandler handler_{device_, device_thread_,
                          [this](UniqueFd fd) { received_gpu_sockets_.push_back(std::move(fd)); }};
  MessageChannel channel_;
  UniqueFd memfd_;
};

TEST_F(BackendHandlerTest, GetFeaturesOffersTransportAndDeviceBits) {
  ASSERT_TRUE(Empty(Request::kGetFeatures));
  const uint64_t features = ReadU64Reply(Request::kGetFeatures);
  EXPECT_TRUE(features & kFeatureVersion1);
  EXPECT_TRUE(features & kFeatureRingIndirectDesc);
  EXPECT_TRUE(features & kFeatureRingEventIdx);
  EXPECT_TRUE(features & kFeatureProtocolFeatures);
  EXPECT_TRUE(features & (1ull << 1));  // The device's own bit.
}

TEST_F(BackendHandlerTest, ProtocolFeaturesNeverIncludeInbandNotifications) {
  ASSERT_TRUE(Empty(Request::kGetProtocolFeatures));
  const uint64_t features = ReadU64Reply(Request::kGetProtocolFeatures);
  EXPECT_EQ(features & kProtocolInbandNotifications, 0u);
  EXPECT_TRUE(features & kProtocolConfig);
  EXPECT_TRUE(features & kProtocolReplyAck);
  EXPECT_TRUE(features & kProtocolMq);
  EXPECT_TRUE(features & kProtocolResetDevice);
  EXPECT_TRUE(features & kProtocolConfigureMemSlots);
}

TEST_F(BackendHandlerTest, WithoutRegionsNeitherShmemNorTheBackendChannelIsOffered) {
  ASSERT_TRUE(Empty(Request::kGetProtocolFeatures));
  const uint64_t features = ReadU64Reply(Request::kGetProtocolFeatures);
  EXPECT_EQ(features & kShmemProtocolFeatures, 0u);
  NegotiateProtocol();
  EXPECT_FALSE(Empty(Request::kGetShmemConfig));
}

// A device with a host-visible region (shmid 1), as the GPU device has in the 3D modes.
class ShmemBackendHandlerTest : public BackendHandlerTest {
 protected:
  bool ExchangeShmem() {
    Result<ReceivedMessage> message = channel_.backend().Receive();
    if (!message) return false;
    return static_cast<bool>(shmem_handler_.Handle(*message, channel_.backend()));
  }
  bool SetProtocol(uint64_t features) {
    channel_.SendObject(Request::kSetProtocolFeatures, U64Payload{features}, {}, kVersion);
    return ExchangeShmem();
  }

  RecordingDevice shmem_device_{{0, 64ull << 20}};
  DeviceThread shmem_thread_{shmem_device_};
  BackendHandler shmem_handler_{shmem_device_, shmem_thread_, [](UniqueFd) {}};
};

TEST_F(ShmemBackendHandlerTest, RegionsAreOfferedAndReportedAndTheChannelReachesTheDevice) {
  ASSERT_TRUE(shmem_thread_.Start());
  const uint64_t offered = shmem_handler_.offered_protocol_features();
  EXPECT_EQ(offered & kShmemProtocolFeatures, kShmemProtocolFeatures);
  EXPECT_EQ(kProtocolShmem, 1ull << 22);

  // Before SHMEM is negotiated neither request is allowed.
  channel_.Send(Request::kGetShmemConfig, nullptr, 0, {}, kVersion);
  EXPECT_FALSE(ExchangeShmem());
  ASSERT_TRUE(SetProtocol(offered));
  channel_.Send(Request::kGetShmemConfig, nullptr, 0, {}, kVersion);
  ASSERT_TRUE(ExchangeShmem());
  auto reply = channel_.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->first.flags, kReplyFlags);
  ASSERT_EQ(reply->second.size(), sizeof(ShmemConfig));
  ShmemConfig config;
  std::memcpy(&config, reply->second.data(), sizeof(config));
  EXPECT_EQ(config.region_count, 1u);
  EXPECT_EQ(config.memory_sizes[0], 0u);
  EXPECT_EQ(config.memory_sizes[1], 64ull << 20);
  EXPECT_EQ(config.memory_sizes[2], 0u);

  // SET_BACKEND_REQ_FD: one fd, no payload; the device gets a mapper, and loses it on disconnect.
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]), theirs(pair[1]);
  channel_.Send(Request::kSetBackendReqFd, nullptr, 0, {}, kVersion);
  EXPECT_FALSE(ExchangeShmem());  // Without its fd: malformed.
  channel_.Send(Request::kSetBackendReqFd, nullptr, 0, {theirs.get()}, kVersion);
  ASSERT_TRUE(ExchangeShmem());
  EXPECT_NE(shmem_device_.mapper, nullptr);
  shmem_handler_.Disconnect();
  EXPECT_EQ(shmem_device_.mapper, nullptr);
}

TEST_F(ShmemBackendHandlerTest, ChannelWithoutShmemIsKeptButGivesTheDeviceNoMapper) {
  ASSERT_TRUE(shmem_thread_.Start());
  ASSERT_TRUE(SetProtocol(kOfferedProtocolFeatures | kProtocolBackendReq));
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]), theirs(pair[1]);
  channel_.Send(Request::kSetBackendReqFd, nullptr, 0, {theirs.get()}, kVersion);
  ASSERT_TRUE(ExchangeShmem());
  EXPECT_EQ(shmem_device_.mapper_changes.load(), 0);
  channel_.Send(Request::kGetShmemConfig, nullptr, 0, {}, kVersion);
  EXPECT_FALSE(ExchangeShmem());
}

TEST_F(BackendHandlerTest, SetProtocolFeaturesRejectsUnofferedBits) {
  EXPECT_FALSE(Request(Request::kSetProtocolFeatures, U64Payload{kProtocolInbandNotifications}));
}

TEST_F(BackendHandlerTest, WrongPayloadSizeClosesTheConnection) {
  const uint32_t four_bytes = 0;
  EXPECT_FALSE(Request(Request::kSetFeatures, four_bytes));
}

TEST_F(BackendHandlerTest, ExtraFdOnGetFeaturesClosesTheConnection) {
  UniqueFd extra(eventfd(0, EFD_CLOEXEC));
  EXPECT_FALSE(Empty(Request::kGetFeatures, {extra.get()}));
}

TEST_F(BackendHandlerTest, UnknownRequestClosesTheConnection) {
  EXPECT_FALSE(Empty(static_cast<vhost_user::Request>(999)));
}

TEST_F(BackendHandlerTest, SetFeaturesToleratesRingResetAndRequiresVersion1) {
  EXPECT_TRUE(Request(Request::kSetFeatures,
                      U64Payload{kFeatureVersion1 | kFeatureRingReset | kFeatureProtocolFeatures}));
  EXPECT_FALSE(Request(Request::kSetFeatures, U64Payload{kFeatureProtocolFeatures}));
}

TEST_F(BackendHandlerTest, MemTableRegionCountIsValidated) {
  struct {
    MemoryTableHeader header;
    MemoryRegionDescription regions[2];
  } __attribute__((packed)) table{{2, 0}, {Region(0, 0x80000), Region(0x80000, 0x80000, 0x80000)}};
  // Two regions but one fd.
  channel_.Send(Request::kSetMemTable, &table, sizeof(table), {memfd_.get()});
  EXPECT_FALSE(Exchange());
}

TEST_F(BackendHandlerTest, MemTableWithHugeRegionCountClosesTheConnection) {
  struct {
    MemoryTableHeader header;
    MemoryRegionDescription region;
  } __attribute__((packed)) table{{1000, 0}, Region(0, 0x1000)};
  channel_.Send(Request::kSetMemTable, &table, sizeof(table), {memfd_.get()});
  EXPECT_FALSE(Exchange());
}

TEST_F(BackendHandlerTest, MemTableSizeMustMatchRegionCount) {
  struct {
    MemoryTableHeader header;
    MemoryRegionDescription region;
    uint8_t trailing[8];
  } __attribute__((packed)) table{{1, 0}, Region(0, 0x1000), {}};
  channel_.Send(Request::kSetMemTable, &table, sizeof(table), {memfd_.get()});
  EXPECT_FALSE(Exchange());
}

TEST_F(BackendHandlerTest, AddMemRegNeedsTheProtocolFeature) {
  EXPECT_FALSE(AddRegion(Region(0, kMemorySize)));
}

TEST_F(BackendHandlerTest, OverlappingRegionIsNackedWhenAReplyWasRequested) {
  NegotiateProtocol();
  ASSERT_TRUE(AddRegion(Region(0, 0x80000), kVersion | kNeedReplyFlag));
  EXPECT_EQ(ReadU64Reply(Request::kAddMemReg), 0u);
  // Overlaps in guest-physical space: refused, connection kept.
  ASSERT_TRUE(AddRegion(MemoryRegionDescription{0x40000, 0x80000, kUserBase + 0x100000, 0},
                        kVersion | kNeedReplyFlag));
  EXPECT_NE(ReadU64Reply(Request::kAddMemReg), 0u);
}

TEST_F(BackendHandlerTest, RegionLargerThanItsFileIsRefused) {
  NegotiateProtocol();
  ASSERT_TRUE(AddRegion(Region(0, kMemorySize * 2), kVersion | kNeedReplyFlag));
  EXPECT_NE(ReadU64Reply(Request::kAddMemReg), 0u);
  // Without a reply requested, the frontend must not believe it succeeded: close.
  EXPECT_FALSE(AddRegion(Region(0, kMemorySize * 2)));
}

TEST_F(BackendHandlerTest, RegionThatWrapsIsMalformed) {
  NegotiateProtocol();
  EXPECT_FALSE(AddRegion(MemoryRegionDescription{~0ull - 0x10, 0x1000, kUserBase, 0},
                         kVersion | kNeedReplyFlag));
}

TEST_F(BackendHandlerTest, RemovingAnUnknownRegionIsRefused) {
  NegotiateProtocol();
  ASSERT_TRUE(Request(Request::kRemMemReg, SingleMemoryRegion{0, Region(0, 0x1000)}, {},
                      kVersion | kNeedReplyFlag));
  EXPECT_NE(ReadU64Reply(Request::kRemMemReg), 0u);
}

TEST_F(BackendHandlerTest, VringIndexAndSizeAreValidated) {
  EXPECT_FALSE(Request(Request::kSetVringNum, VringState{5, 64}));
}

TEST_F(BackendHandlerTest, VringSizeZeroIsRejected) {
  EXPECT_FALSE(Request(Request::kSetVringNum, VringState{0, 0}));
}

TEST_F(BackendHandlerTest, VringSizeOverTheDeviceMaximumIsRejected) {
  EXPECT_FALSE(Request(Request::kSetVringNum, VringState{0, 65536}));
}

TEST_F(BackendHandlerTest, MisalignedRingAddressIsRejected) {
  VringAddress address{0, 0, kUserBase + 0x1008, kUserBase + 0x3000, kUserBase + 0x2000, 0};
  EXPECT_FALSE(Request(Request::kSetVringAddr, address));
}

TEST_F(BackendHandlerTest, KickWithoutFdAndWithoutNoFdFlagIsRejected) {
  EXPECT_FALSE(Request(Request::kSetVringKick, U64Payload{0}));
}

TEST_F(BackendHandlerTest, KickWithUnknownFlagBitsIsRejected) {
  UniqueFd kick(eventfd(0, EFD_CLOEXEC));
  EXPECT_FALSE(Request(Request::kSetVringKick, U64Payload{0x200}, {kick.get()}));
}

TEST_F(BackendHandlerTest, KickBeforeMemoryIsRefused) {
  UniqueFd kick;
  EXPECT_FALSE(StartQueue0(kick));
}

TEST_F(BackendHandlerTest, RingOutsideMemoryIsRefusedAtStart) {
  NegotiateProtocol();
  ASSERT_TRUE(AddRegion(Region(0, 0x2000)));  // Used ring at 0x3000 is not mapped.
  UniqueFd kick;
  EXPECT_FALSE(StartQueue0(kick));
}

TEST_F(BackendHandlerTest, RingAddressOutsideMemoryIsNackedAtSetVringAddr) {
  NegotiateProtocol();
  ASSERT_TRUE(AddRegion(Region(0, 0x2000)));
  VringAddress address{0, 0, kUserBase + 0x1000, kUserBase + 0x3000, kUserBase + 0x1800, 0};
  ASSERT_TRUE(Request(Request::kSetVringAddr, address, {}, kVersion | kNeedReplyFlag));
  EXPECT_NE(ReadU64Reply(Request::kSetVringAddr), 0u);
}

TEST_F(BackendHandlerTest, RingStartsKicksAndStops) {
  NegotiateProtocol();
  ASSERT_TRUE(Request(Request::kSetFeatures, U64Payload{kFeatureVersion1 | kFeatureRingEventIdx |
                                                        kFeatureProtocolFeatures}));
  ASSERT_TRUE(AddRegion(Region(0, kMemorySize)));
  UniqueFd kick;
  ASSERT_TRUE(StartQueue0(kick));
  EXPECT_EQ(device_.started, 1);
  EXPECT_EQ(device_.activated_features & kFeatureRingEventIdx, kFeatureRingEventIdx);
  // With VHOST_USER_F_PROTOCOL_FEATURES, the ring starts disabled: kicks wait for the enable.
  const int notified_before = device_.notified;
  ASSERT_TRUE(Request(Request::kSetVringEnable, VringState{0, 1}));
  EXPECT_GT(device_.notified, notified_before);
  ASSERT_TRUE(Request(Request::kGetVringBase, VringState{0, 0}));
  auto reply = channel_.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->first.flags, kReplyFlags);
  VringState state;
  ASSERT_EQ(reply->second.size(), sizeof(state));
  std::memcpy(&state, reply->second.data(), sizeof(state));
  EXPECT_EQ(state.index, 0u);
  EXPECT_EQ(state.num, 0u);
  EXPECT_EQ(device_.stopped, 1);
}

TEST_F(BackendHandlerTest, NeedReplyGetsAnAckWhenNegotiated) {
  NegotiateProtocol();
  ASSERT_TRUE(Request(Request::kSetVringNum, VringState{1, 16}, {}, kVersion | kNeedReplyFlag));
  EXPECT_EQ(ReadU64Reply(Request::kSetVringNum), 0u);
}

TEST_F(BackendHandlerTest, NeedReplyIsIgnoredWithoutReplyAck) {
  NegotiateProtocol(kProtocolConfig);
  ASSERT_TRUE(Request(Request::kSetVringNum, VringState{1, 16}, {}, kVersion | kNeedReplyFlag));
  EXPECT_TRUE(channel_.NoReplyPending());
}

TEST_F(BackendHandlerTest, GetConfigReturnsTheRequestedBytes) {
  NegotiateProtocol();
  struct {
    ConfigHeader header;
    uint8_t data[8];
  } __attribute__((packed)) request{{4, 8, 0}, {}};
  ASSERT_TRUE(Request(Request::kGetConfig, request));
  auto reply = channel_.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->first.flags, kReplyFlags);
  ASSERT_EQ(reply->second.size(), sizeof(ConfigHeader) + 8);
  EXPECT_EQ(reply->second[sizeof(ConfigHeader)], 4);
  EXPECT_EQ(reply->second[sizeof(ConfigHeader) + 7], 11);
}

TEST_F(BackendHandlerTest, GetConfigOutsideConfigSpaceAnswersSizeZero) {
  NegotiateProtocol();
  struct {
    ConfigHeader header;
    uint8_t data[16];
  } __attribute__((packed)) request{{8, 16, 0}, {}};
  ASSERT_TRUE(Request(Request::kGetConfig, request));
  auto reply = channel_.ReadReply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->first.size, 0u);
}

TEST_F(BackendHandlerTest, GetConfigWithMismatchedSizeClosesTheConnection) {
  NegotiateProtocol();
  ConfigHeader request{0, 16, 0};  // Claims 16 bytes of data, carries none.
  EXPECT_FALSE(Request(Request::kGetConfig, request));
}

TEST_F(BackendHandlerTest, SetConfigReachesTheDevice) {
  NegotiateProtocol();
  struct {
    ConfigHeader header;
    uint32_t events_clear;
  } __attribute__((packed)) request{{4, 4, 0}, 1};
  ASSERT_TRUE(Request(Request::kSetConfig, request));
  EXPECT_EQ(device_.last_config_write_offset, 4u);
  EXPECT_EQ(device_.last_config_write_size, 4u);
}

TEST_F(BackendHandlerTest, GpuSocketNeedsExactlyOneFdAndIsReplaced) {
  UniqueFd first(eventfd(0, EFD_CLOEXEC)), second(eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(Empty(Request::kGpuSetSocket, {first.get()}));
  ASSERT_TRUE(Empty(Request::kGpuSetSocket, {second.get()}));
  EXPECT_EQ(received_gpu_sockets_.size(), 2u);
  EXPECT_FALSE(Empty(Request::kGpuSetSocket));
}

TEST_F(BackendHandlerTest, ResetDeviceNeedsTheFeatureAndResetsTheDevice) {
  EXPECT_FALSE(Empty(Request::kResetDevice));
  NegotiateProtocol();
  const int resets_before = device_.resets;
  ASSERT_TRUE(Empty(Request::kResetDevice));
  EXPECT_GT(device_.resets, resets_before);
}

}  // namespace
}  // namespace vgpu::vhost_user
