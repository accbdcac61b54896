// Hostile descriptor chains through the real socket (virtio 1.2 §2.7.5, and what
// libvhost-user checks). Per-request faults must be consumed with used length 0 and leave the queue
// working; ring-level faults may stop the queue. In every case the daemon lives and serves the
// next frontend.
#include <gtest/gtest.h>

#include "integration/daemon_fixture.h"

namespace vgpu::test {
namespace {

class DescriptorAttackTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    if (HasFatalFailure()) return;
    NegotiationOptions options;
    options.memory_layout = GuestRamLayout::kTwoRegionsWithVgaHole;
    std::optional<Connected> connected = ConnectAndNegotiate(options);
    ASSERT_TRUE(connected);
    connected_.emplace(std::move(*connected));
    Session& session = connected_->session;
    Result<uint64_t> request = session.ram->Allocate(sizeof(GpuControlHeader), 8);
    Result<uint64_t> response = session.ram->Allocate(kDisplayInfoResponseSize, 8);
    ASSERT_TRUE(request && response);
    request_ = *request;
    response_ = *response;
    GpuControlHeader header{};
    header.type = kCommandGetDisplayInfo;
    ASSERT_TRUE(session.ram->WriteObject(request_, header));
  }

  Session& session() { return connected_->session; }
  DriverQueue& queue() { return *connected_->session.control_queue; }

  // Where the attacks put their descriptors (any index works: the valid command that follows is
  // queued only after the bad chain has come back).
  static constexpr uint16_t kAttackBase = 40;

  // A per-request fault: the bad chain `head` comes back with used length 0, and then a valid
  // command is answered. The valid command is queued only after the bad chain came back, so that
  // reusing descriptors cannot change the bad chain while the daemon may still read it.
  void ExpectBadChainConsumedAndQueueStillWorks(uint16_t head) {
    queue().Kick();
    std::vector<UsedElement> unexpected;
    std::optional<UsedElement> bad = queue().WaitForUsedHead(head, kCommandTimeout, &unexpected);
    ASSERT_TRUE(daemon_->IsRunning()) << "daemon died";
    EXPECT_TRUE(unexpected.empty()) << "used elements for heads never made available";
    ASSERT_TRUE(bad) << "the bad chain was never returned to the driver";
    EXPECT_EQ(bad->length, 0u) << "the bad chain was processed";

    std::optional<CommandOutcome> outcome = RunGetDisplayInfo(session());

    ASSERT_TRUE(daemon_->IsRunning()) << "daemon died";
    ASSERT_TRUE(outcome) << "the valid command after the bad chain was not answered";
    EXPECT_TRUE(IsDefinedResponseType(outcome->response.type));
    FinishAndReconnect();
  }

  // A ring-level fault: the daemon may stop processing the queue; it must stay alive.
  void ExpectDaemonSurvivesRingFault() {
    Result<CommandBuffers> valid = QueueGetDisplayInfo(session(), queue());
    ASSERT_TRUE(valid) << valid.error().message;
    queue().Kick();
    // Whatever comes back must be well formed; silence is allowed (the queue is broken).
    std::optional<CommandOutcome> outcome =
        AwaitCommand(session(), queue(), *valid, std::chrono::milliseconds(500));
    ASSERT_TRUE(daemon_->IsRunning()) << "daemon died";
    if (outcome) {
      EXPECT_TRUE(IsDefinedResponseType(outcome->response.type));
    }
    FinishAndReconnect();
  }

  void FinishAndReconnect() {
    // QEMU would reset the device; dropping the connection is the strongest form of that.
    connected_->frontend.Close();
    connected_.reset();
    ExpectDaemonServesNewFrontend();
  }

  std::optional<Connected> connected_;
  uint64_t request_ = 0;
  uint64_t response_ = 0;
};

TEST_F(DescriptorAttackTest, DescriptorLoop) {
  const uint16_t first = kAttackBase, second = kAttackBase + 1;
  ASSERT_TRUE(queue().WriteDescriptor(first, request_, 24, kDescriptorFlagNext, second));
  ASSERT_TRUE(queue().WriteDescriptor(second, response_, kDisplayInfoResponseSize,
                                      kDescriptorFlagWrite | kDescriptorFlagNext, first));
  queue().PublishHead(first);

  ExpectBadChainConsumedAndQueueStillWorks(first);
}

TEST_F(DescriptorAttackTest, SelfLoop) {
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase, request_, 24, kDescriptorFlagNext, kAttackBase));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

// Every descriptor of the table chained in a cycle: the chain is longer than the queue size.
TEST_F(DescriptorAttackTest, ChainLongerThanTheQueue) {
  const uint16_t size = queue().size();
  for (uint16_t index = 0; index < size; ++index) {
    const uint16_t next = static_cast<uint16_t>((index + 1) % size);
    ASSERT_TRUE(queue().WriteDescriptor(index, request_, 24, kDescriptorFlagNext, next));
  }
  queue().PublishHead(0);

  ExpectBadChainConsumedAndQueueStillWorks(0);
}

// An indirect table with more entries than the queue size (§2.7.5.3.1: a driver MUST NOT create
// a chain longer than the Queue Size).
TEST_F(DescriptorAttackTest, IndirectTableLongerThanTheQueue) {
  std::vector<VirtqDescriptor> table;
  for (uint16_t index = 0; index <= queue().size(); ++index) {
    table.push_back({request_, 24, kDescriptorFlagNext, static_cast<uint16_t>(index + 1)});
  }
  table.back().flags = kDescriptorFlagWrite;
  table.back().addr = response_;
  table.back().len = kDisplayInfoResponseSize;
  Result<uint64_t> address = queue().WriteIndirectTable(table);
  ASSERT_TRUE(address);
  ASSERT_TRUE(queue().WriteDescriptor(
      kAttackBase, *address, static_cast<uint32_t>(table.size() * 16), kDescriptorFlagIndirect, 0));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

// §2.7.5.3.1: the driver MUST NOT set VIRTQ_DESC_F_INDIRECT inside an indirect table.
TEST_F(DescriptorAttackTest, IndirectInsideIndirect) {
  Result<uint64_t> inner =
      queue().WriteIndirectTable({{request_, 24, kDescriptorFlagNext, 1},
                                  {response_, kDisplayInfoResponseSize, kDescriptorFlagWrite, 0}});
  ASSERT_TRUE(inner);
  Result<uint64_t> outer = queue().WriteIndirectTable({{*inner, 32, kDescriptorFlagIndirect, 0}});
  ASSERT_TRUE(outer);
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase, *outer, 16, kDescriptorFlagIndirect, 0));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

TEST_F(DescriptorAttackTest, ZeroLengthDescriptor) {
  ASSERT_TRUE(
      queue().WriteDescriptor(kAttackBase, request_, 0, kDescriptorFlagNext, kAttackBase + 1));
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase + 1, response_, kDisplayInfoResponseSize,
                                      kDescriptorFlagWrite, 0));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

class OutOfRamAddressTest : public DescriptorAttackTest,
                            public ::testing::WithParamInterface<uint64_t> {};

TEST_P(OutOfRamAddressTest, ReadableBufferOutsideGuestRam) {
  ASSERT_TRUE(
      queue().WriteDescriptor(kAttackBase, GetParam(), 24, kDescriptorFlagNext, kAttackBase + 1));
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase + 1, response_, kDisplayInfoResponseSize,
                                      kDescriptorFlagWrite, 0));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

TEST_P(OutOfRamAddressTest, WritableBufferOutsideGuestRam) {
  ASSERT_TRUE(
      queue().WriteDescriptor(kAttackBase, request_, 24, kDescriptorFlagNext, kAttackBase + 1));
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase + 1, GetParam(), kDisplayInfoResponseSize,
                                      kDescriptorFlagWrite, 0));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

std::string AddressCaseName(const ::testing::TestParamInfo<uint64_t>& info) {
  const char* names[] = {"PastTheEnd", "Far", "InVgaHole", "StraddlesVgaHole", "Wraps"};
  return names[info.index];
}

// Past the end of the 64 MiB, inside the VGA hole, straddling the hole's start, and wrapping.
INSTANTIATE_TEST_SUITE_P(Addresses, OutOfRamAddressTest,
                         ::testing::Values(64ull << 20, 1ull << 40, kVgaHoleStart + 0x100,
                                           kVgaHoleStart - 8, ~0ull - 7),
                         AddressCaseName);

TEST_F(DescriptorAttackTest, WritableBeforeReadable) {
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase, response_, kDisplayInfoResponseSize,
                                      kDescriptorFlagWrite | kDescriptorFlagNext, kAttackBase + 1));
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase + 1, request_, 24, 0, 0));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

TEST_F(DescriptorAttackTest, IndirectTableLengthNotAMultipleOf16) {
  Result<uint64_t> table =
      queue().WriteIndirectTable({{request_, 24, kDescriptorFlagNext, 1},
                                  {response_, kDisplayInfoResponseSize, kDescriptorFlagWrite, 0}});
  ASSERT_TRUE(table);
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase, *table, 24, kDescriptorFlagIndirect, 0));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

TEST_F(DescriptorAttackTest, IndirectTableOfLengthZero) {
  Result<uint64_t> table = queue().WriteIndirectTable({{request_, 24, 0, 0}});
  ASSERT_TRUE(table);
  ASSERT_TRUE(queue().WriteDescriptor(kAttackBase, *table, 0, kDescriptorFlagIndirect, 0));
  queue().PublishHead(kAttackBase);

  ExpectBadChainConsumedAndQueueStillWorks(kAttackBase);
}

TEST_F(DescriptorAttackTest, HeadIndexAtLeastTheQueueSize) {
  queue().PublishHead(queue().size());

  ExpectDaemonSurvivesRingFault();
}

TEST_F(DescriptorAttackTest, HeadIndexFarBeyondTheQueueSize) {
  queue().PublishHead(0xffff);

  ExpectDaemonSurvivesRingFault();
}

TEST_F(DescriptorAttackTest, AvailIndexJumpsAheadByMoreThanTheQueueSize) {
  queue().SetAvailIndex(static_cast<uint16_t>(queue().available_index() + queue().size() + 1));

  ExpectDaemonSurvivesRingFault();
}

}  // namespace
}  // namespace vgpu::test
