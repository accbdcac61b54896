// HostileGuestTest: the fixture of the hostile-guest suites (hostile_guest_test.cc, and the
// gfxstream classes in gfxstream_library_test.cc): raw commands through one reused pair of guest
// buffers pre-filled with a pattern, and repetition with the daemon's fds and resident memory
// sampled before and after.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "integration/gpu_daemon_fixture.h"

namespace vgpu::test {

// What a command sent as raw bytes got back.
struct RawOutcome {
  uint32_t used_length = 0;
  std::vector<uint8_t> response;  // The whole writable buffer as the daemon left it.
  uint32_t type() const {
    uint32_t type = 0;
    if (response.size() >= sizeof(type)) std::memcpy(&type, response.data(), sizeof(type));
    return type;
  }
};

class HostileGuestTest : public GpuDaemonTest {
 protected:
  static constexpr uint8_t kFill = 0xa5;
  static constexpr uint32_t kScratchRequestBytes = 64 << 10;
  static constexpr uint32_t kScratchResponseBytes = 4096;

  void ConnectWithScratch(NegotiationOptions options = {}) {
    Connect(options);
    Result<uint64_t> request = session().ram->Allocate(kScratchRequestBytes, 4096);
    Result<uint64_t> response = session().ram->Allocate(kScratchResponseBytes, 4096);
    ASSERT_TRUE(request && response);
    scratch_request_ = *request;
    scratch_response_ = *response;
  }

  // Sends `request` as one readable descriptor and a `response_size`-byte writable one (none if
  // 0), pre-filled with kFill; reuses the same guest memory every time, so loops of thousands of
  // commands do not use up guest RAM.
  RawOutcome SendRaw(std::span<const uint8_t> request,
                     uint32_t response_size = sizeof(gpu::CtrlHdr)) {
    RawOutcome outcome;
    EXPECT_LE(request.size(), kScratchRequestBytes);
    EXPECT_LE(response_size, kScratchResponseBytes);
    EXPECT_TRUE(session().ram->Write(scratch_request_, request));
    EXPECT_TRUE(session().ram->Fill(scratch_response_, kScratchResponseBytes, kFill));
    std::vector<Buffer> writable;
    if (response_size > 0) writable.push_back({scratch_response_, response_size});
    Result<uint16_t> head = session().control_queue->AddChain(
        {{scratch_request_, static_cast<uint32_t>(request.size())}}, writable);
    EXPECT_TRUE(head);
    session().control_queue->Kick();
    std::optional<UsedElement> used =
        session().control_queue->WaitForUsedHead(head.value_or(0), kCommandTimeout);
    EXPECT_TRUE(used) << "no response";
    if (!used) return outcome;
    outcome.used_length = used->length;
    outcome.response.resize(response_size);
    EXPECT_TRUE(session().ram->Read(scratch_response_, outcome.response));
    return outcome;
  }
  template <class Request>
  RawOutcome Send(const Request& request, uint32_t response_size = sizeof(gpu::CtrlHdr),
                  std::span<const uint8_t> extra = {}) {
    std::vector<uint8_t> bytes(sizeof(Request) + extra.size());
    std::memcpy(bytes.data(), &request, sizeof(Request));
    if (!extra.empty()) std::memcpy(bytes.data() + sizeof(Request), extra.data(), extra.size());
    return SendRaw(bytes, response_size);
  }
  template <class Request>
  ResponseType SendType(const Request& request, std::span<const uint8_t> extra = {}) {
    return static_cast<ResponseType>(Send(request, sizeof(gpu::CtrlHdr), extra).type());
  }
  ResponseType Create(uint32_t id, uint32_t width, uint32_t height,
                      uint32_t format = static_cast<uint32_t>(gpu::Format::kB8G8R8X8Unorm)) {
    gpu::ResourceCreate2d create{};
    create.hdr = Header(CommandType::kResourceCreate2d);
    create.resource_id = id;
    create.format = format;
    create.width = width;
    create.height = height;
    return SendType(create);
  }
  ResponseType Unref(uint32_t id) {
    gpu::ResourceUnref unref{};
    unref.hdr = Header(CommandType::kResourceUnref);
    unref.resource_id = id;
    return SendType(unref);
  }
  ResponseType AttachEntries(uint32_t id, const std::vector<gpu::MemEntry>& entries,
                             std::optional<uint32_t> nr_entries = std::nullopt) {
    gpu::ResourceAttachBacking attach{};
    attach.hdr = Header(CommandType::kResourceAttachBacking);
    attach.resource_id = id;
    attach.nr_entries = nr_entries.value_or(static_cast<uint32_t>(entries.size()));
    return SendType(attach,
                    std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(entries.data()),
                                             entries.size() * sizeof(gpu::MemEntry)));
  }
  ResponseType SetScanoutRaw(uint32_t scanout, uint32_t id, gpu::Rect rect) {
    gpu::SetScanout set{};
    set.hdr = Header(CommandType::kSetScanout);
    set.r = rect;
    set.scanout_id = scanout;
    set.resource_id = id;
    return SendType(set);
  }
  ResponseType TransferRaw(uint32_t id, gpu::Rect rect, uint64_t offset) {
    gpu::TransferToHost2d transfer{};
    transfer.hdr = Header(CommandType::kTransferToHost2d);
    transfer.r = rect;
    transfer.offset = offset;
    transfer.resource_id = id;
    return SendType(transfer);
  }
  ResponseType FlushRaw(uint32_t id, gpu::Rect rect) {
    gpu::ResourceFlush flush{};
    flush.hdr = Header(CommandType::kResourceFlush);
    flush.r = rect;
    flush.resource_id = id;
    return SendType(flush);
  }

  // 3D commands (a renderer mode).
  ResponseType CreateContextRaw(uint32_t context_id, uint32_t context_init = 0) {
    gpu::CtxCreate create{};
    create.hdr = Header(CommandType::kCtxCreate);
    create.hdr.ctx_id = context_id;
    create.nlen = 7;
    std::memcpy(create.debug_name, "hostile", 7);
    create.context_init = context_init;
    return SendType(create);
  }
  ResponseType Create3dRaw(uint32_t id, uint32_t target, uint32_t format, uint32_t bind,
                           uint32_t width, uint32_t height, uint32_t depth = 1) {
    gpu::ResourceCreate3d create{};
    create.hdr = Header(CommandType::kResourceCreate3d);
    create.resource_id = id;
    create.target = target;
    create.format = format;
    create.bind = bind;
    create.width = width;
    create.height = height;
    create.depth = depth;
    create.array_size = 1;
    return SendType(create);
  }
  ResponseType Transfer3dRaw(bool to_host, uint32_t context_id, uint32_t id, gpu::Box box,
                             uint32_t stride = 0, uint64_t offset = 0) {
    gpu::TransferHost3d transfer{};
    transfer.hdr =
        Header(to_host ? CommandType::kTransferToHost3d : CommandType::kTransferFromHost3d);
    transfer.hdr.ctx_id = context_id;
    transfer.box = box;
    transfer.offset = offset;
    transfer.resource_id = id;
    transfer.stride = stride;
    return SendType(transfer);
  }

  // Blobs (§5.7.6.8-9). A host blob of a context, and RESOURCE_MAP_BLOB / UNMAP_BLOB.
  ResponseType CreateHostBlob(uint32_t context_id, uint32_t id, uint64_t size, uint32_t flags,
                              uint64_t blob_id = 0) {
    gpu::ResourceCreateBlob create{};
    create.hdr = Header(CommandType::kResourceCreateBlob);
    create.hdr.ctx_id = context_id;
    create.resource_id = id;
    create.blob_mem = gpu::kBlobMemHost3d;
    create.blob_flags = flags;
    create.blob_id = blob_id;
    create.size = size;
    return SendType(create);
  }
  RawOutcome MapBlob(uint32_t id, uint64_t offset) {
    gpu::ResourceMapBlob map{};
    map.hdr = Header(CommandType::kResourceMapBlob);
    map.resource_id = id;
    map.offset = offset;
    return Send(map, sizeof(gpu::RespMapInfo));
  }
  ResponseType MapBlobType(uint32_t id, uint64_t offset) {
    return static_cast<ResponseType>(MapBlob(id, offset).type());
  }
  ResponseType UnmapBlob(uint32_t id) {
    gpu::ResourceUnmapBlob unmap{};
    unmap.hdr = Header(CommandType::kResourceUnmapBlob);
    unmap.resource_id = id;
    return SendType(unmap);
  }

  ResourceSample Sample() {
    // GET_CONFIG is answered by the control thread after every earlier message: nothing of the
    // negotiation is still in flight when the numbers are read.
    EXPECT_TRUE(connected_->frontend.GetConfig(0, 16));
    return SampleDaemon();
  }
  // Prints the daemon's fds ("fd -> target") opened or closed since `before` was taken: what a
  // failed fd comparison is about.
  void PrintFdChanges(const std::vector<std::string>& before) const {
    const std::vector<std::string> after = daemon_->OpenFdTargets();
    std::multiset<std::string> opened(after.begin(), after.end());
    std::multiset<std::string> closed(before.begin(), before.end());
    for (const std::string& target : before) {
      if (auto found = opened.find(target); found != opened.end()) opened.erase(found);
    }
    for (const std::string& target : after) {
      if (auto found = closed.find(target); found != closed.end()) closed.erase(found);
    }
    for (const std::string& target : opened) std::printf("fd opened since: %s\n", target.c_str());
    for (const std::string& target : closed) std::printf("fd closed since: %s\n", target.c_str());
  }
  // Runs `attack` `warm_up` times, samples, runs it `repetitions` more times, samples again:
  // fds must be equal and resident memory within `allowed_growth_kb` (allocator noise), and the
  // daemon must still answer GET_DISPLAY_INFO.
  void ExpectNoGrowth(const std::function<void()>& attack, int repetitions, int warm_up = 20,
                      uint64_t allowed_growth_kb = 512) {
    for (int i = 0; i < warm_up && !HasFatalFailure(); ++i) attack();
    const ResourceSample before = Sample();
    const std::vector<std::string> fds_before = daemon_->OpenFdTargets();
    for (int i = 0; i < repetitions && !HasFatalFailure(); ++i) attack();
    const ResourceSample after = Sample();
    if (after.open_fds != before.open_fds) PrintFdChanges(fds_before);
    std::printf("%d repetitions: fds %zu -> %zu, VmRSS %llu -> %llu kB\n", repetitions,
                before.open_fds, after.open_fds,
                static_cast<unsigned long long>(before.resident_kb),
                static_cast<unsigned long long>(after.resident_kb));
    EXPECT_EQ(after.open_fds, before.open_fds);
    if (kSanitizerBuild) {
      std::printf("resident memory not compared: sanitizer build (quarantine)\n");
    } else {
      EXPECT_LE(after.resident_kb, before.resident_kb + allowed_growth_kb);
    }
    gpu::CtrlHdr info = Header(CommandType::kGetDisplayInfo);
    EXPECT_EQ(static_cast<ResponseType>(Send(info, sizeof(gpu::RespDisplayInfo)).type()),
              ResponseType::kOkDisplayInfo);
    EXPECT_TRUE(daemon_->IsRunning());
  }

  uint64_t scratch_request_ = 0;
  uint64_t scratch_response_ = 0;
};

}  // namespace vgpu::test
