// The QEMU 10 message sequence against the daemon, and commands through both memory layouts.
#include <gtest/gtest.h>

#include "integration/daemon_fixture.h"

namespace vgpu::test {
namespace {

using vhost_user::kFeatureProtocolFeatures;
using vhost_user::kFeatureRingEventIdx;
using vhost_user::kFeatureRingIndirectDesc;
using vhost_user::kFeatureVersion1;

// The used length must be exactly what a response of that type occupies (§5.7.6.7).
uint32_t ExpectedResponseLength(uint32_t type) {
  return type == kResponseOkDisplayInfo ? kDisplayInfoResponseSize : sizeof(GpuControlHeader);
}

void ExpectWellFormedDisplayInfoAnswer(const CommandOutcome& outcome) {
  EXPECT_TRUE(IsDefinedResponseType(outcome.response.type))
      << "response type 0x" << std::hex << outcome.response.type;
  EXPECT_TRUE(outcome.response.type == kResponseOkDisplayInfo || outcome.response.type >= 0x1200)
      << "GET_DISPLAY_INFO answered with 0x" << std::hex << outcome.response.type;
  EXPECT_EQ(outcome.used.length, ExpectedResponseLength(outcome.response.type));
  EXPECT_TRUE(outcome.rest_untouched) << "bytes written beyond the used length";
}

// Every reply is validated by VhostUserFrontend as QEMU does (flags exactly 0x5, request id
// echoed, size as defined), so a successful negotiation means every reply passed those checks.
TEST_F(DaemonTest, Qemu10NegotiationSucceedsAndAControlCommandIsAnswered) {
  std::optional<Connected> connected = ConnectAndNegotiate();
  ASSERT_TRUE(connected);
  Session& session = connected->session;

  EXPECT_TRUE(session.offered_features & kFeatureVersion1);
  EXPECT_TRUE(session.offered_features & kFeatureRingIndirectDesc);
  EXPECT_TRUE(session.offered_features & kFeatureRingEventIdx);
  EXPECT_TRUE(session.offered_features & kFeatureProtocolFeatures);
  const uint64_t protocol = session.offered_protocol_features;
  EXPECT_TRUE(protocol & vhost_user::kProtocolMq);
  EXPECT_TRUE(protocol & vhost_user::kProtocolReplyAck);
  EXPECT_TRUE(protocol & vhost_user::kProtocolConfig);
  EXPECT_TRUE(protocol & vhost_user::kProtocolResetDevice);
  EXPECT_TRUE(protocol & vhost_user::kProtocolConfigureMemSlots);
  EXPECT_FALSE(protocol & vhost_user::kProtocolInbandNotifications);
  EXPECT_EQ(session.queue_count, 2u);
  EXPECT_GE(session.max_memory_slots, 2u);
  EXPECT_EQ(session.config.size(), 16u);
  Result<std::vector<uint8_t>> config = connected->frontend.GetConfig(0, 16);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->size(), 16u);

  std::optional<CommandOutcome> outcome = RunGetDisplayInfo(session);

  ASSERT_TRUE(outcome) << "no used element for GET_DISPLAY_INFO";
  ExpectWellFormedDisplayInfoAnswer(*outcome);
  Result<std::vector<uint32_t>> bases = connected->frontend.StopLikeQemu10(session);
  ASSERT_TRUE(bases) << bases.error().message;
  EXPECT_EQ((*bases)[0], 1u);  // One chain consumed on the control queue.
  EXPECT_EQ((*bases)[1], 0u);
}

TEST_F(DaemonTest, IndirectChainIsAnswered) {
  std::optional<Connected> connected = ConnectAndNegotiate();
  ASSERT_TRUE(connected);

  std::optional<CommandOutcome> outcome =
      RunGetDisplayInfo(connected->session, ChainLayout::kIndirect);

  ASSERT_TRUE(outcome);
  ExpectWellFormedDisplayInfoAnswer(*outcome);
}

TEST_F(DaemonTest, SetMemTableWorksInsteadOfAddMemReg) {
  NegotiationOptions options;
  options.force_set_mem_table = true;
  std::optional<Connected> connected = ConnectAndNegotiate(options);
  ASSERT_TRUE(connected);

  std::optional<CommandOutcome> outcome = RunGetDisplayInfo(connected->session);

  ASSERT_TRUE(outcome);
  ExpectWellFormedDisplayInfoAnswer(*outcome);
}

TEST_F(DaemonTest, ManyCommandsInARowAreAllAnswered) {
  std::optional<Connected> connected = ConnectAndNegotiate();
  ASSERT_TRUE(connected);
  Session& session = connected->session;
  std::vector<CommandBuffers> queued;
  for (int command = 0; command < 32; ++command) {  // 32 two-descriptor chains fill the table.
    Result<CommandBuffers> buffers = QueueGetDisplayInfo(session, *session.control_queue);
    ASSERT_TRUE(buffers) << buffers.error().message;
    queued.push_back(*buffers);
  }
  session.control_queue->Kick();

  for (const CommandBuffers& buffers : queued) {
    std::optional<CommandOutcome> outcome = AwaitCommand(session, *session.control_queue, buffers);
    ASSERT_TRUE(outcome) << "head " << buffers.head << " not answered";
    EXPECT_TRUE(outcome->other_used.empty()) << "used elements out of order";
    ExpectWellFormedDisplayInfoAnswer(*outcome);
  }
}

TEST_F(DaemonTest, CursorQueueChainsAreConsumed) {
  std::optional<Connected> connected = ConnectAndNegotiate();
  ASSERT_TRUE(connected);
  Session& session = connected->session;
  // Spec: struct virtio_gpu_update_cursor is 56 bytes (§5.7.6.10); type 0x0301 MOVE_CURSOR.
  Result<uint64_t> request = session.ram->Allocate(56, 8);
  ASSERT_TRUE(request);
  GpuControlHeader header{};
  header.type = 0x0301;
  ASSERT_TRUE(session.ram->WriteObject(*request, header));
  Result<uint16_t> head = session.cursor_queue->AddChain({{*request, 56}}, {});
  ASSERT_TRUE(head);

  session.cursor_queue->Kick();

  std::optional<UsedElement> used = session.cursor_queue->WaitForUsedHead(*head, kCommandTimeout);
  ASSERT_TRUE(used) << "cursor chain not returned";
  EXPECT_EQ(used->length, 0u);  // The cursor queue has no writable part.
}

class MemoryLayoutTest : public DaemonTest, public ::testing::WithParamInterface<GuestRamLayout> {};

// One command whose request ends exactly at 0xa0000 and whose response starts exactly at 0xc0000,
// and one the other way round. With the VGA layout those are the last and first bytes of RAM
// around the hole; with one region they are ordinary RAM.
TEST_P(MemoryLayoutTest, BuffersAdjacentToTheVgaHoleWork) {
  NegotiationOptions options;
  options.memory_layout = GetParam();
  std::optional<Connected> connected = ConnectAndNegotiate(options);
  ASSERT_TRUE(connected);
  Session& session = connected->session;
  ASSERT_EQ(session.ram->regions().size(), GetParam() == GuestRamLayout::kSingleRegion ? 1u : 2u);
  struct Placement {
    uint64_t request;
    uint64_t response;
  };
  const Placement placements[] = {
      {kVgaHoleStart - sizeof(GpuControlHeader), kVgaHoleEnd},
      {kVgaHoleEnd, kVgaHoleStart - kDisplayInfoResponseSize},
  };
  session.ram->SetAllocationCursor(kVgaHoleEnd + 0x10000);

  for (const Placement& placement : placements) {
    GpuControlHeader header{};
    header.type = kCommandGetDisplayInfo;
    ASSERT_TRUE(session.ram->WriteObject(placement.request, header));
    ASSERT_TRUE(session.ram->Fill(placement.response, kDisplayInfoResponseSize, 0xa5));
    Result<uint16_t> head =
        session.control_queue->AddChain({{placement.request, sizeof(GpuControlHeader)}},
                                        {{placement.response, kDisplayInfoResponseSize}});
    ASSERT_TRUE(head);
    session.control_queue->Kick();
    CommandBuffers buffers{*head, placement.request, placement.response};

    std::optional<CommandOutcome> outcome = AwaitCommand(session, *session.control_queue, buffers);

    ASSERT_TRUE(outcome) << "request at 0x" << std::hex << placement.request << " not answered";
    ExpectWellFormedDisplayInfoAnswer(*outcome);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, MemoryLayoutTest,
                         ::testing::Values(GuestRamLayout::kSingleRegion,
                                           GuestRamLayout::kTwoRegionsWithVgaHole),
                         [](const ::testing::TestParamInfo<GuestRamLayout>& info) {
                           return info.param == GuestRamLayout::kSingleRegion ? "OneRegion"
                                                                              : "VgaTwoRegions";
                         });

}  // namespace
}  // namespace vgpu::test
