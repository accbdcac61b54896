#include "integration/daemon_fixture.h"

#include <cstring>

namespace vgpu::test {

bool IsDefinedResponseType(uint32_t type) {
  return (type >= 0x1100 && type <= 0x1106) || (type >= 0x1200 && type <= 0x1205);
}

Result<CommandBuffers> QueueGetDisplayInfo(Session& session, DriverQueue& queue,
                                           ChainLayout layout) {
  CommandBuffers buffers;
  Result<uint64_t> request = session.ram->Allocate(sizeof(GpuControlHeader), 8);
  if (!request) return ErrorOf(request);
  Result<uint64_t> response = session.ram->Allocate(kDisplayInfoResponseSize, 8);
  if (!response) return ErrorOf(response);
  GpuControlHeader header{};
  header.type = kCommandGetDisplayInfo;
  if (Result<void> written = session.ram->WriteObject(*request, header); !written) {
    return ErrorOf(written);
  }
  if (Result<void> filled = session.ram->Fill(*response, kDisplayInfoResponseSize, 0xa5); !filled) {
    return ErrorOf(filled);
  }
  Result<uint16_t> head = queue.AddChain({{*request, sizeof(GpuControlHeader)}},
                                         {{*response, kDisplayInfoResponseSize}}, layout);
  if (!head) return ErrorOf(head);
  buffers.head = *head;
  buffers.request_address = *request;
  buffers.response_address = *response;
  return buffers;
}

std::optional<CommandOutcome> AwaitCommand(Session& session, DriverQueue& queue,
                                           const CommandBuffers& buffers,
                                           std::chrono::milliseconds timeout) {
  CommandOutcome outcome;
  std::optional<UsedElement> used =
      queue.WaitForUsedHead(buffers.head, timeout, &outcome.other_used);
  if (!used) return std::nullopt;
  outcome.used = *used;
  std::vector<uint8_t> response(kDisplayInfoResponseSize);
  if (!session.ram->Read(buffers.response_address, response)) return std::nullopt;
  std::memcpy(&outcome.response, response.data(), sizeof(outcome.response));
  outcome.rest_untouched = true;
  for (size_t position = std::min<size_t>(used->length, response.size());
       position < response.size(); ++position) {
    if (response[position] != 0xa5) outcome.rest_untouched = false;
  }
  return outcome;
}

std::optional<CommandOutcome> RunGetDisplayInfo(Session& session, ChainLayout layout) {
  Result<CommandBuffers> buffers = QueueGetDisplayInfo(session, *session.control_queue, layout);
  if (!buffers) {
    ADD_FAILURE() << buffers.error().message;
    return std::nullopt;
  }
  session.control_queue->Kick();
  return AwaitCommand(session, *session.control_queue, *buffers);
}

void DaemonTest::SetUp() {
  Result<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start({});
  ASSERT_TRUE(daemon) << daemon.error().message;
  daemon_ = std::move(*daemon);
}

void DaemonTest::TearDown() {
  if (daemon_ && HasFailure()) {
    std::printf("---- daemon output (%s) ----\n%s---- end of daemon output ----\n",
                daemon_->IsRunning() ? "still running" : "exited", daemon_->StderrText().c_str());
  }
}

std::optional<VhostUserFrontend> DaemonTest::Connect() {
  Result<VhostUserFrontend> frontend =
      VhostUserFrontend::Connect(daemon_->socket_path(), kConnectTimeout);
  if (!frontend) {
    ADD_FAILURE() << "connect: " << frontend.error().message;
    return std::nullopt;
  }
  return std::move(*frontend);
}

std::optional<DaemonTest::Connected> DaemonTest::ConnectAndNegotiate(
    const NegotiationOptions& options) {
  std::optional<VhostUserFrontend> frontend = Connect();
  if (!frontend) return std::nullopt;
  Result<Session> session = frontend->NegotiateLikeQemu10(options);
  if (!session) {
    ADD_FAILURE() << "negotiation: " << session.error().message;
    return std::nullopt;
  }
  return Connected{std::move(*frontend), std::move(*session)};
}

void DaemonTest::ExpectDaemonServesNewFrontend() {
  ASSERT_TRUE(daemon_->IsRunning()) << "daemon died";
  std::optional<Connected> connected = ConnectAndNegotiate();
  ASSERT_TRUE(connected) << "the daemon does not serve a new frontend";
  std::optional<CommandOutcome> outcome = RunGetDisplayInfo(connected->session);
  ASSERT_TRUE(outcome) << "the new frontend's command was not answered";
  EXPECT_TRUE(IsDefinedResponseType(outcome->response.type))
      << "response type 0x" << std::hex << outcome->response.type;
  Result<std::vector<uint32_t>> bases = connected->frontend.StopLikeQemu10(connected->session);
  EXPECT_TRUE(bases) << bases.error().message;
  EXPECT_TRUE(daemon_->IsRunning());
}

}  // namespace vgpu::test
