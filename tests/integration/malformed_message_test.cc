// Malformed and invalid frontend messages. A malformed message (wrong size, wrong fds, bad
// header) must close the connection; a well-formed but invalid request sent with NEED_REPLY
// (REPLY_ACK negotiated) may instead be answered with a failure ack. Either way the daemon keeps
// running and serves the next frontend.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "integration/daemon_fixture.h"

namespace vgpu::test {
namespace {

using vhost_user::MessageHeader;
using vhost_user::Request;

constexpr std::chrono::milliseconds kCloseTimeout{5000};

MessageHeader Header(Request request, uint32_t size, uint32_t flags = vhost_user::kVersion) {
  return MessageHeader{static_cast<uint32_t>(request), flags, size};
}

template <class T>
std::vector<uint8_t> Bytes(const T& object) {
  std::vector<uint8_t> bytes(sizeof(T));
  std::memcpy(bytes.data(), &object, sizeof(T));
  return bytes;
}

UniqueFd MakeEventFd() { return UniqueFd(dup(EventFd::Create()->fd())); }

UniqueFd MakeMemfd(uint64_t size) {
  UniqueFd fd(memfd_create("vgpu-test-extra", MFD_CLOEXEC));
  if (fd && ftruncate(fd.get(), static_cast<off_t>(size)) != 0) fd.reset();
  return fd;
}

class MalformedMessageTest : public DaemonTest {
 protected:
  // The daemon must close the connection without answering.
  void ExpectClosed(VhostUserFrontend& frontend) {
    PeerActivity activity = frontend.WaitForClose(kCloseTimeout);
    EXPECT_EQ(activity, PeerActivity::kClosed)
        << (activity == PeerActivity::kSentData ? "the daemon answered instead of closing"
                                                : "the daemon kept the connection open");
  }
  // The daemon must refuse `request`: a failure ack, or a closed connection.
  void ExpectRefused(VhostUserFrontend& frontend, Request request) {
    Result<ReceivedReply> reply = frontend.ReceiveRaw(kCloseTimeout);
    if (!reply) {
      EXPECT_TRUE(IsClosed(reply.error())) << reply.error().message;
      return;
    }
    EXPECT_EQ(reply->header.flags, vhost_user::kReplyFlags);
    EXPECT_EQ(reply->header.request, static_cast<uint32_t>(request));
    ASSERT_EQ(reply->header.size, 8u);
    uint64_t ack = 0;
    std::memcpy(&ack, reply->payload.data(), sizeof(ack));
    EXPECT_NE(ack, 0u) << vhost_user::RequestName(static_cast<uint32_t>(request))
                       << " was accepted";
  }
  // A connection that has gone through protocol negotiation and set up memory (REPLY_ACK on).
  std::optional<Connected> ConnectWithMemory(
      GuestRamLayout layout = GuestRamLayout::kSingleRegion) {
    NegotiationOptions options;
    options.stop_after = NegotiationStage::kMemory;
    options.memory_layout = layout;
    std::optional<Connected> connected = ConnectAndNegotiate(options);
    if (connected && !connected->frontend.reply_ack()) {
      ADD_FAILURE() << "REPLY_ACK not negotiated";
      return std::nullopt;
    }
    return connected;
  }
  // Sends `header` + `payload` with NEED_REPLY and expects a refusal; then the next frontend.
  void ExpectInvalidRequestRefused(VhostUserFrontend& frontend, Request request,
                                   const std::vector<uint8_t>& payload,
                                   std::span<const int> fds = {}) {
    ASSERT_TRUE(frontend.SendRaw(Header(request, static_cast<uint32_t>(payload.size()),
                                        vhost_user::kVersion | vhost_user::kNeedReplyFlag),
                                 payload, fds));
    ExpectRefused(frontend, request);
    frontend.Close();
    ExpectDaemonServesNewFrontend();
  }
  void ExpectMalformedClosesConnection(const MessageHeader& header,
                                       const std::vector<uint8_t>& payload,
                                       std::span<const int> fds = {}) {
    std::optional<VhostUserFrontend> frontend = Connect();
    ASSERT_TRUE(frontend);
    ASSERT_TRUE(frontend->SendRaw(header, payload, fds));
    ExpectClosed(*frontend);
    frontend->Close();
    ExpectDaemonServesNewFrontend();
  }
};

TEST_F(MalformedMessageTest, TruncatedHeaderThenEof) {
  std::optional<VhostUserFrontend> frontend = Connect();
  ASSERT_TRUE(frontend);
  const uint8_t partial[6] = {1, 0, 0, 0, 1, 0};

  ASSERT_TRUE(frontend->SendBytes(partial));
  frontend->Close();

  ExpectDaemonServesNewFrontend();
}

TEST_F(MalformedMessageTest, TruncatedHeaderThenStallIsTimedOut) {
  std::optional<VhostUserFrontend> frontend = Connect();
  ASSERT_TRUE(frontend);
  const uint8_t partial[6] = {1, 0, 0, 0, 1, 0};

  ASSERT_TRUE(frontend->SendBytes(partial));

  ExpectClosed(*frontend);
  frontend->Close();
  ExpectDaemonServesNewFrontend();
}

TEST_F(MalformedMessageTest, PayloadShorterThanSizeThenStallDoesNotBlockTheNextFrontend) {
  std::optional<VhostUserFrontend> staller = Connect();
  ASSERT_TRUE(staller);
  std::vector<uint8_t> header_and_part(sizeof(MessageHeader) + 2, 0);
  MessageHeader header = Header(Request::kSetFeatures, 8);
  std::memcpy(header_and_part.data(), &header, sizeof(header));
  ASSERT_TRUE(staller->SendBytes(header_and_part));
  const auto start = std::chrono::steady_clock::now();

  ExpectDaemonServesNewFrontend();  // While the staller keeps its socket open.

  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(staller->WaitForClose(std::chrono::milliseconds(0)), PeerActivity::kClosed);
}

TEST_F(MalformedMessageTest, SetFeaturesWithFourBytePayload) {
  ExpectMalformedClosesConnection(Header(Request::kSetFeatures, 4), {0, 0, 0, 1});
}

TEST_F(MalformedMessageTest, GetFeaturesWithFds) {
  UniqueFd first = MakeEventFd();
  UniqueFd second = MakeEventFd();
  const int fds[] = {first.get(), second.get()};
  ExpectMalformedClosesConnection(Header(Request::kGetFeatures, 0), {}, fds);
}

TEST_F(MalformedMessageTest, SizeFieldAllOnes) {
  ExpectMalformedClosesConnection(Header(Request::kGetFeatures, 0xffffffff), {});
}

TEST_F(MalformedMessageTest, UnknownRequest999) {
  ExpectMalformedClosesConnection(MessageHeader{999, vhost_user::kVersion, 0}, {});
}

class BadVersionTest : public MalformedMessageTest,
                       public ::testing::WithParamInterface<uint32_t> {};

TEST_P(BadVersionTest, VersionBitsOtherThanOne) {
  ExpectMalformedClosesConnection(Header(Request::kGetFeatures, 0, GetParam()), {});
}

INSTANTIATE_TEST_SUITE_P(Flags, BadVersionTest, ::testing::Values(0x0u, 0x2u, 0x3u, 0x6u));

TEST_F(MalformedMessageTest, SetVringKickWithoutFdAndWithoutNoFdFlag) {
  std::optional<Connected> connected = ConnectWithMemory();
  ASSERT_TRUE(connected);
  VhostUserFrontend& frontend = connected->frontend;

  ASSERT_TRUE(
      frontend.SendRaw(Header(Request::kSetVringKick, 8), Bytes(vhost_user::U64Payload{0})));

  ExpectClosed(frontend);
  frontend.Close();
  ExpectDaemonServesNewFrontend();
}

// A VMM whose guest RAM is not shareable (QEMU without share=on, libvirt without
// <memoryBacking><access mode='shared'/>) sends no memory region at all, then starts the rings.
// The ring is refused, and the log line says what to change, not only what went wrong.
TEST_F(MalformedMessageTest, RingsWithoutSharedMemoryAreRefusedWithAHint) {
  std::optional<VhostUserFrontend> frontend = Connect();
  ASSERT_TRUE(frontend);
  const uint32_t need_reply = vhost_user::kVersion | vhost_user::kNeedReplyFlag;
  ASSERT_TRUE(frontend->SetVringNum(0, 64));
  ASSERT_TRUE(frontend->SetVringBase(0, 0));
  vhost_user::VringAddress address{};
  address.descriptor_user_address = 0x10000;
  address.used_user_address = 0x11000;
  address.available_user_address = 0x12000;
  ASSERT_TRUE(frontend->SendRaw(Header(Request::kSetVringAddr, sizeof(address)), Bytes(address)));
  UniqueFd kick(eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(kick.valid());
  const int fds[] = {kick.get()};

  ASSERT_TRUE(frontend->SendRaw(Header(Request::kSetVringKick, 8, need_reply),
                                Bytes(vhost_user::U64Payload{0}), fds));

  ExpectRefused(*frontend, Request::kSetVringKick);
  frontend->Close();
  ExpectDaemonServesNewFrontend();
  const std::string log = daemon_->StderrText();
  EXPECT_NE(log.find("the guest's RAM must be shareable"), std::string::npos) << log;
  EXPECT_NE(log.find("share=on"), std::string::npos) << log;
  EXPECT_NE(log.find("<access mode='shared'/>"), std::string::npos) << log;
}

TEST_F(MalformedMessageTest, SetMemTableWithHugeRegionCount) {
  std::optional<VhostUserFrontend> frontend = Connect();
  ASSERT_TRUE(frontend);
  Result<std::unique_ptr<GuestRam>> ram = GuestRam::Create(1 << 20, GuestRamLayout::kSingleRegion);
  ASSERT_TRUE(ram);
  // QEMU's full-size table (8 region slots), claiming 1000 regions.
  std::vector<uint8_t> payload(sizeof(vhost_user::MemoryTableHeader) +
                               8 * sizeof(vhost_user::MemoryRegionDescription));
  vhost_user::MemoryTableHeader table{1000, 0};
  std::memcpy(payload.data(), &table, sizeof(table));
  vhost_user::MemoryRegionDescription region = (*ram)->Descriptions()[0];
  std::memcpy(payload.data() + sizeof(table), &region, sizeof(region));
  Result<UniqueFd> fd = (*ram)->DuplicateFd();
  const int fds[] = {fd->get()};

  ASSERT_TRUE(frontend->SendRaw(Header(Request::kSetMemTable, payload.size()), payload, fds));

  ExpectClosed(*frontend);
  frontend->Close();
  ExpectDaemonServesNewFrontend();
}

TEST_F(MalformedMessageTest, SetMemTableWithTwoRegionsButOneFd) {
  std::optional<VhostUserFrontend> frontend = Connect();
  ASSERT_TRUE(frontend);
  Result<std::unique_ptr<GuestRam>> ram =
      GuestRam::Create(2 << 20, GuestRamLayout::kTwoRegionsWithVgaHole);
  ASSERT_TRUE(ram);
  std::vector<vhost_user::MemoryRegionDescription> regions = (*ram)->Descriptions();
  std::vector<uint8_t> payload(sizeof(vhost_user::MemoryTableHeader) +
                               regions.size() * sizeof(regions[0]));
  vhost_user::MemoryTableHeader table{2, 0};
  std::memcpy(payload.data(), &table, sizeof(table));
  std::memcpy(payload.data() + sizeof(table), regions.data(), regions.size() * sizeof(regions[0]));
  Result<UniqueFd> fd = (*ram)->DuplicateFd();
  const int fds[] = {fd->get()};

  ASSERT_TRUE(frontend->SendRaw(Header(Request::kSetMemTable, payload.size()), payload, fds));

  ExpectClosed(*frontend);
  frontend->Close();
  ExpectDaemonServesNewFrontend();
}

TEST_F(MalformedMessageTest, SetVringNumForQueueFive) {
  std::optional<Connected> connected = ConnectWithMemory();
  ASSERT_TRUE(connected);
  ExpectInvalidRequestRefused(connected->frontend, Request::kSetVringNum,
                              Bytes(vhost_user::VringState{5, 64}));
}

class BadQueueSizeTest : public MalformedMessageTest,
                         public ::testing::WithParamInterface<uint32_t> {};

TEST_P(BadQueueSizeTest, SetVringNumRefusesSize) {
  std::optional<Connected> connected = ConnectWithMemory();
  ASSERT_TRUE(connected);
  ExpectInvalidRequestRefused(connected->frontend, Request::kSetVringNum,
                              Bytes(vhost_user::VringState{0, GetParam()}));
}

INSTANTIATE_TEST_SUITE_P(Sizes, BadQueueSizeTest, ::testing::Values(0u, 65536u));

struct RingAddressCase {
  const char* name;
  uint64_t descriptor_offset;  // Added to the queue's real addresses.
  uint64_t available_offset;
  uint64_t used_offset;
  uint64_t descriptor_absolute = 0;  // When set, the descriptor table's address.
};

void PrintTo(const RingAddressCase& value, std::ostream* stream) { *stream << value.name; }

class BadRingAddressTest : public MalformedMessageTest,
                           public ::testing::WithParamInterface<RingAddressCase> {};

// A ring outside guest RAM must never start. The daemon may refuse SET_VRING_ADDR itself, or
// accept the addresses (the memory table may still change) and refuse SET_VRING_KICK, which
// starts the ring (libvhost-user checks at SET_VRING_ADDR; both are clean).
TEST_P(BadRingAddressTest, RingWithBadAddressNeverStarts) {
  std::optional<Connected> connected = ConnectWithMemory();
  ASSERT_TRUE(connected);
  VhostUserFrontend& frontend = connected->frontend;
  DriverQueue& queue = *connected->session.control_queue;
  ASSERT_TRUE(frontend.SetVringNum(0, queue.size()));
  ASSERT_TRUE(frontend.SetVringBase(0, 0));
  vhost_user::VringAddress address = VhostUserFrontend::VringAddressOf(0, queue);
  address.descriptor_user_address += GetParam().descriptor_offset;
  address.available_user_address += GetParam().available_offset;
  address.used_user_address += GetParam().used_offset;
  if (GetParam().descriptor_absolute != 0) {
    address.descriptor_user_address = GetParam().descriptor_absolute;
  }
  const uint32_t need_reply = vhost_user::kVersion | vhost_user::kNeedReplyFlag;

  ASSERT_TRUE(frontend.SendRaw(Header(Request::kSetVringAddr, sizeof(address), need_reply),
                               Bytes(address)));

  Result<ReceivedReply> reply = frontend.ReceiveRaw(kCloseTimeout);
  uint64_t ack = 1;
  if (reply && reply->header.size == sizeof(ack)) {
    std::memcpy(&ack, reply->payload.data(), sizeof(ack));
  }
  if (reply && ack == 0) {
    std::printf("note: SET_VRING_ADDR (%s) acked; checking that SET_VRING_KICK is refused\n",
                GetParam().name);
    const int kick[] = {queue.kick().fd()};
    ASSERT_TRUE(frontend.SendRaw(Header(Request::kSetVringKick, 8, need_reply),
                                 Bytes(vhost_user::U64Payload{0}), kick));
    ExpectRefused(frontend, Request::kSetVringKick);
  } else if (reply) {
    EXPECT_EQ(reply->header.flags, vhost_user::kReplyFlags);
    EXPECT_EQ(reply->header.request, static_cast<uint32_t>(Request::kSetVringAddr));
    EXPECT_EQ(reply->header.size, 8u);
  } else {
    EXPECT_TRUE(IsClosed(reply.error())) << reply.error().message;
  }
  frontend.Close();
  ExpectDaemonServesNewFrontend();
}

// 64 MiB of guest RAM: 1 GiB past a ring is outside every region.
INSTANTIATE_TEST_SUITE_P(
    Cases, BadRingAddressTest,
    ::testing::Values(RingAddressCase{"DescriptorUnaligned", 8, 0, 0},
                      RingAddressCase{"AvailableUnaligned", 0, 1, 0},
                      RingAddressCase{"UsedUnaligned", 0, 0, 2},
                      RingAddressCase{"DescriptorOutsideMemory", 1ull << 30, 0, 0},
                      RingAddressCase{"AvailableOutsideMemory", 0, 1ull << 30, 0},
                      RingAddressCase{"UsedOutsideMemory", 0, 0, 1ull << 30},
                      RingAddressCase{"DescriptorWrapsAround", 0, 0, 0, ~0ull - 0xf}),
    [](const ::testing::TestParamInfo<RingAddressCase>& info) { return info.param.name; });

TEST_F(MalformedMessageTest, AddMemRegOverlappingAnExistingRegion) {
  std::optional<Connected> connected = ConnectWithMemory();
  ASSERT_TRUE(connected);
  UniqueFd memfd = MakeMemfd(1 << 20);
  ASSERT_TRUE(memfd);
  // Guest-physical 0x100000.. overlaps the 64 MiB region at 0; a fresh user address range.
  vhost_user::MemoryRegionDescription region{0x100000, 1 << 20, 0x7f0000000000, 0};

  ExpectInvalidRequestRefused(connected->frontend, Request::kAddMemReg,
                              Bytes(vhost_user::SingleMemoryRegion{0, region}),
                              std::vector<int>{memfd.get()});
}

struct OversizedRegionCase {
  const char* name;
  uint64_t file_size;
  uint64_t region_size;
  uint64_t mmap_offset;
};

void PrintTo(const OversizedRegionCase& value, std::ostream* stream) { *stream << value.name; }

class OversizedRegionTest : public MalformedMessageTest,
                            public ::testing::WithParamInterface<OversizedRegionCase> {};

// A region larger than its file would turn the daemon's first access past the file's end into
// SIGBUS; the daemon must check the file's size (fstat) and refuse it.
TEST_P(OversizedRegionTest, AddMemRegBeyondTheFileIsRefused) {
  std::optional<Connected> connected = ConnectWithMemory();
  ASSERT_TRUE(connected);
  UniqueFd memfd = MakeMemfd(GetParam().file_size);
  ASSERT_TRUE(memfd);
  vhost_user::MemoryRegionDescription region{1ull << 32, GetParam().region_size, 0x7f0000000000,
                                             GetParam().mmap_offset};

  ExpectInvalidRequestRefused(connected->frontend, Request::kAddMemReg,
                              Bytes(vhost_user::SingleMemoryRegion{0, region}),
                              std::vector<int>{memfd.get()});
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OversizedRegionTest,
    ::testing::Values(OversizedRegionCase{"SizeBeyondFile", 1 << 20, 16 << 20, 0},
                      OversizedRegionCase{"OffsetPlusSizeBeyondFile", 1 << 20, 1 << 20, 512 << 10},
                      OversizedRegionCase{"OffsetPlusSizeOverflows", 1 << 20, 1 << 20,
                                          ~0ull - 4095},
                      OversizedRegionCase{"ZeroSize", 1 << 20, 0, 0}),
    [](const ::testing::TestParamInfo<OversizedRegionCase>& info) { return info.param.name; });

TEST_F(MalformedMessageTest, AddMemRegWhoseGuestRangeWraps) {
  std::optional<Connected> connected = ConnectWithMemory();
  ASSERT_TRUE(connected);
  UniqueFd memfd = MakeMemfd(1 << 20);
  vhost_user::MemoryRegionDescription region{~0ull - 4095, 1 << 20, 0x7f0000000000, 0};

  ExpectInvalidRequestRefused(connected->frontend, Request::kAddMemReg,
                              Bytes(vhost_user::SingleMemoryRegion{0, region}),
                              std::vector<int>{memfd.get()});
}

TEST_F(MalformedMessageTest, RemMemRegOfARegionThatDoesNotExist) {
  std::optional<Connected> connected = ConnectWithMemory();
  ASSERT_TRUE(connected);
  vhost_user::MemoryRegionDescription region{1ull << 32, 1 << 20, 0x7f0000000000, 0};

  ExpectInvalidRequestRefused(connected->frontend, Request::kRemMemReg,
                              Bytes(vhost_user::SingleMemoryRegion{0, region}));
}

// The valid counterpart: removing and re-adding a region the daemon has works.
TEST_F(MalformedMessageTest, RemMemRegOfAnExistingRegionThenAddAgainWorks) {
  std::optional<Connected> connected = ConnectWithMemory(GuestRamLayout::kTwoRegionsWithVgaHole);
  ASSERT_TRUE(connected);
  VhostUserFrontend& frontend = connected->frontend;
  vhost_user::MemoryRegionDescription upper = connected->session.ram->Descriptions()[1];

  Result<void> removed = frontend.RemMemReg(upper);
  ASSERT_TRUE(removed) << removed.error().message;
  Result<UniqueFd> fd = connected->session.ram->DuplicateFd();
  Result<void> added = frontend.AddMemReg(upper, fd->get());
  ASSERT_TRUE(added) << added.error().message;
}

}  // namespace
}  // namespace vgpu::test
