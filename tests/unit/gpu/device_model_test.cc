// The device model without a display: every 2D command with valid input, and the hostile-guest
// classes of docs/SECURITY.md (response codes, uninitialised bytes, leaks counted through the
// resource table).
#include <gtest/gtest.h>

#include "command_fixture.h"
#include "gpu/command_dispatcher.h"

namespace vgpu::gpu {
namespace {

class DeviceModelTest : public testing::CommandFixture {
 protected:
  DeviceModelTest() {
    model_ = std::make_unique<CommandDispatcher>(DispatcherConfig{kCap, true}, nullptr);
    model_->set_acked_features(1ull << kFeatureEdid);
  }
  static constexpr uint64_t kCap = 16ull << 20;
};

TEST_F(DeviceModelTest, GetDisplayInfoWithoutDisplayReportsTheDefaultHead) {
  CtrlHdr request = Header(CommandType::kGetDisplayInfo);
  uint32_t used = 0;
  EXPECT_EQ(Run(request, &used).type, static_cast<uint32_t>(ResponseType::kOkDisplayInfo));
  ASSERT_EQ(used, sizeof(RespDisplayInfo));
  RespDisplayInfo info;
  std::memcpy(&info, Host(kResponseArea, sizeof(info)), sizeof(info));
  EXPECT_EQ(info.pmodes[0].enabled, 1u);
  EXPECT_EQ(info.pmodes[0].r.width, 1280u);
  EXPECT_EQ(info.pmodes[0].r.height, 800u);
  // Every byte written is defined: disabled heads are all zero, not canary.
  for (uint32_t i = 1; i < kMaxScanouts; ++i) {
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&info.pmodes[i]);
    for (size_t b = 0; b < sizeof(DisplayOne); ++b) EXPECT_EQ(bytes[b], 0) << "head " << i;
  }
  EXPECT_EQ(info.hdr.padding[0] | info.hdr.padding[1] | info.hdr.padding[2], 0);
}

TEST_F(DeviceModelTest, FenceIsEchoedWithContextAndRingIndex) {
  CtrlHdr request =
      Header(CommandType::kGetDisplayInfo, kFlagFence | kFlagInfoRingIdx, 0x1234567890ull);
  request.ctx_id = 7;
  request.ring_idx = 3;
  CtrlHdr response = Run(request);
  EXPECT_EQ(response.flags, kFlagFence | kFlagInfoRingIdx);
  EXPECT_EQ(response.fence_id, 0x1234567890ull);
  EXPECT_EQ(response.ctx_id, 7u);
  EXPECT_EQ(response.ring_idx, 3);
}

TEST_F(DeviceModelTest, UnfencedResponseCarriesNoFenceFields) {
  CtrlHdr request = Header(CommandType::kGetDisplayInfo, 0, 99);
  request.ctx_id = 5;
  CtrlHdr response = Run(request);
  EXPECT_EQ(response.flags, 0u);
  EXPECT_EQ(response.fence_id, 0u);
  EXPECT_EQ(response.ctx_id, 0u);
}

TEST_F(DeviceModelTest, CreatesResourcesInAllEightFormats) {
  const Format formats[] = {Format::kB8G8R8A8Unorm, Format::kB8G8R8X8Unorm, Format::kA8R8G8B8Unorm,
                            Format::kX8R8G8B8Unorm, Format::kR8G8B8A8Unorm, Format::kX8B8G8R8Unorm,
                            Format::kA8B8G8R8Unorm, Format::kR8G8B8X8Unorm};
  uint32_t id = 1;
  for (Format format : formats) {
    EXPECT_EQ(Create(id++, 64, 32, format), ResponseType::kOkNodata)
        << static_cast<uint32_t>(format);
  }
  EXPECT_EQ(model_->resources().count(), 8u);
  EXPECT_EQ(model_->resources().host_memory_used(), 8u * (64 * 32 * 4 + kResourceBookkeepingBytes));
}

TEST_F(DeviceModelTest, CreateRejectsBadIdsFormatsAndSizes) {
  EXPECT_EQ(Create(0, 64, 64), ResponseType::kErrInvalidResourceId);
  EXPECT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  EXPECT_EQ(Create(1, 64, 64), ResponseType::kErrInvalidResourceId);
  EXPECT_EQ(Create(2, 64, 64, static_cast<Format>(5)), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(Create(3, 0, 64), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(Create(4, 64, 0), ResponseType::kErrInvalidParameter);
  // Failed creates leave nothing behind (CVE-2016-7994 / CVE-2021-3544 class).
  EXPECT_EQ(model_->resources().count(), 1u);
  EXPECT_EQ(model_->resources().host_memory_used(), 64u * 64 * 4 + kResourceBookkeepingBytes);
}

TEST_F(DeviceModelTest, WidthTimesHeightOverflowIsRefused) {
  // 0x40000000 * 4 * 4 wraps a u32 to 0 in naive code.
  EXPECT_EQ(Create(1, 0x40000000, 4), ResponseType::kErrOutOfMemory);
  EXPECT_EQ(Create(2, 0xffffffff, 0xffffffff), ResponseType::kErrOutOfMemory);
  EXPECT_EQ(model_->resources().count(), 0u);
  EXPECT_EQ(model_->resources().host_memory_used(), 0u);
}

TEST_F(DeviceModelTest, HostMemoryCapGivesOutOfMemoryNotACrash) {
  // 1024x1024x4 = 4 MiB each plus bookkeeping; the cap is 16 MiB, so three fit, not four.
  for (uint32_t id = 1; id <= 3; ++id) EXPECT_EQ(Create(id, 1024, 1024), ResponseType::kOkNodata);
  EXPECT_EQ(Create(4, 1024, 1024), ResponseType::kErrOutOfMemory);
  EXPECT_EQ(model_->resources().host_memory_used(),
            3 * (uint64_t{4} << 20) + 3 * kResourceBookkeepingBytes);
  EXPECT_EQ(Unref(1), ResponseType::kOkNodata);
  EXPECT_EQ(Create(4, 1024, 1024), ResponseType::kOkNodata);
}

TEST_F(DeviceModelTest, TinyResourcesReachTheCapThroughTheirBookkeeping) {
  // Pixels alone would allow 4 million 1x1 resources under 16 MiB; bookkeeping stops it near
  // 16 thousand, so the table's own memory stays bounded by the cap.
  const uint64_t per_resource = 4 + kResourceBookkeepingBytes;
  const uint32_t fitting = static_cast<uint32_t>(kCap / per_resource);
  for (uint32_t id = 1; id <= fitting; ++id) {
    ASSERT_EQ(Create(id, 1, 1), ResponseType::kOkNodata) << id;
  }
  EXPECT_EQ(Create(fitting + 1, 1, 1), ResponseType::kErrOutOfMemory);
  EXPECT_EQ(model_->resources().count(), fitting);
}

TEST_F(DeviceModelTest, BackingEntryTablesCountAgainstTheCap) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  const uint64_t before = model_->resources().host_memory_used();
  ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
  EXPECT_EQ(model_->resources().host_memory_used(), before + kBackingEntryBytes);
  ResourceDetachBacking detach{};
  detach.hdr = Header(CommandType::kResourceDetachBacking);
  detach.resource_id = 1;
  EXPECT_EQ(RunType(detach), ResponseType::kOkNodata);
  EXPECT_EQ(model_->resources().host_memory_used(), before);
  // Fill the cap with pixels so that no entry table fits: the attach fails, keeping nothing.
  const uint64_t free_bytes = kCap - before;
  const uint32_t rows = static_cast<uint32_t>((free_bytes - kResourceBookkeepingBytes) / (16 * 4));
  ASSERT_EQ(Create(2, 16, rows), ResponseType::kOkNodata);
  ASSERT_LT(kCap - model_->resources().host_memory_used(), kBackingEntryBytes * 2);
  std::vector<MemEntry> entries(2, MemEntry{kDataArea, 4096, 0});
  ResourceAttachBacking attach{};
  attach.hdr = Header(CommandType::kResourceAttachBacking);
  attach.resource_id = 1;
  attach.nr_entries = 2;
  EXPECT_EQ(static_cast<ResponseType>(
                Run(attach, nullptr, entries.data(), entries.size() * sizeof(MemEntry)).type),
            ResponseType::kErrOutOfMemory);
  EXPECT_EQ(Unref(1), ResponseType::kOkNodata);
  EXPECT_EQ(Unref(2), ResponseType::kOkNodata);
  EXPECT_EQ(model_->resources().host_memory_used(), 0u);
}

TEST_F(DeviceModelTest, UnrefOfUnknownResource) {
  EXPECT_EQ(Unref(42), ResponseType::kErrInvalidResourceId);
}

TEST_F(DeviceModelTest, UnrefWithBackingAttachedFreesEverything) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
  EXPECT_EQ(Unref(1), ResponseType::kOkNodata);
  EXPECT_EQ(model_->resources().count(), 0u);
  EXPECT_EQ(model_->resources().host_memory_used(), 0u);
}

TEST_F(DeviceModelTest, DoubleAttachIsRefusedWithoutLeaking) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
  EXPECT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kErrUnspec);
  ResourceDetachBacking detach{};
  detach.hdr = Header(CommandType::kResourceDetachBacking);
  detach.resource_id = 1;
  EXPECT_EQ(RunType(detach), ResponseType::kOkNodata);
  EXPECT_EQ(RunType(detach), ResponseType::kErrUnspec);  // Nothing left to detach.
}

TEST_F(DeviceModelTest, AttachValidatesEntries) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  EXPECT_EQ(Attach(2, kDataArea, 4096), ResponseType::kErrInvalidResourceId);
  EXPECT_EQ(Attach(1, kMemorySize - 16, 4096), ResponseType::kErrUnspec);  // Past guest RAM.
  EXPECT_EQ(Attach(1, ~0ull - 100, 4096), ResponseType::kErrUnspec);       // Wraps.
  EXPECT_EQ(Attach(1, kDataArea, 0), ResponseType::kErrUnspec);            // Empty entry.
  ResourceAttachBacking request{};
  request.hdr = Header(CommandType::kResourceAttachBacking);
  request.resource_id = 1;
  request.nr_entries = 16385;  // Over QEMU's limit.
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidParameter);
  request.nr_entries = 2;  // Claims two entries, carries none.
  EXPECT_EQ(RunType(request), ResponseType::kErrUnspec);
  request.nr_entries = 0;
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidParameter);
}

TEST_F(DeviceModelTest, AttachAcceptsTheMaximumEntryCount) {
  ASSERT_EQ(Create(1, 1024, 64), ResponseType::kOkNodata);
  std::vector<MemEntry> entries(kMaxBackingEntries);
  for (uint32_t i = 0; i < entries.size(); ++i) entries[i] = MemEntry{kDataArea + i * 16ull, 16, 0};
  ResourceAttachBacking request{};
  request.hdr = Header(CommandType::kResourceAttachBacking);
  request.resource_id = 1;
  request.nr_entries = kMaxBackingEntries;
  EXPECT_EQ(static_cast<ResponseType>(
                Run(request, nullptr, entries.data(), entries.size() * sizeof(MemEntry)).type),
            ResponseType::kOkNodata);
}

TEST_F(DeviceModelTest, TransferCopiesTheRectangleFromScatteredBacking) {
  ASSERT_EQ(Create(1, 4, 4), ResponseType::kOkNodata);
  // Backing in two pieces: rows 0-1 at kDataArea, rows 2-3 far away.
  uint8_t* first = Host(kDataArea, 32);
  uint8_t* second = Host(kDataArea + 0x10000, 32);
  for (int i = 0; i < 32; ++i) {
    first[i] = static_cast<uint8_t>(i);
    second[i] = static_cast<uint8_t>(100 + i);
  }
  ResourceAttachBacking request{};
  request.hdr = Header(CommandType::kResourceAttachBacking);
  request.resource_id = 1;
  request.nr_entries = 2;
  MemEntry entries[2] = {{kDataArea, 32, 0}, {kDataArea + 0x10000, 32, 0}};
  ASSERT_EQ(static_cast<ResponseType>(Run(request, nullptr, entries, sizeof(entries)).type),
            ResponseType::kOkNodata);
  EXPECT_EQ(Transfer(1, Rect{0, 0, 4, 4}, 0), ResponseType::kOkNodata);
  EXPECT_EQ(Transfer(1, Rect{1, 1, 2, 2}, 16 + 4), ResponseType::kOkNodata);
}

TEST_F(DeviceModelTest, TransferRejectsRectsThatWrapOrLeaveTheResource) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
  // x + width wraps to 0 in u32 arithmetic.
  EXPECT_EQ(Transfer(1, Rect{0xffffffff, 0, 2, 1}, 0), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(Transfer(1, Rect{0, 0xfffffff0, 1, 0x20}, 0), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(Transfer(1, Rect{0, 0, 65, 1}, 0), ResponseType::kErrInvalidParameter);
  // Reads past the backing.
  EXPECT_EQ(Transfer(1, Rect{0, 0, 64, 64}, 4), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(Transfer(1, Rect{0, 0, 64, 64}, ~0ull - 10), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(Transfer(2, Rect{0, 0, 1, 1}, 0), ResponseType::kErrInvalidResourceId);
  EXPECT_EQ(Transfer(1, Rect{0, 0, 0, 0}, 0), ResponseType::kOkNodata);
}

TEST_F(DeviceModelTest, TransferWithoutBackingFails) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  EXPECT_EQ(Transfer(1, Rect{0, 0, 64, 64}, 0), ResponseType::kErrUnspec);
}

TEST_F(DeviceModelTest, SetScanoutValidatesIdsAndRect) {
  ASSERT_EQ(Create(1, 128, 128), ResponseType::kOkNodata);
  EXPECT_EQ(SetScanoutTo(16, 1, Rect{0, 0, 128, 128}), ResponseType::kErrInvalidScanoutId);
  EXPECT_EQ(SetScanoutTo(0xffffffff, 1, Rect{0, 0, 128, 128}), ResponseType::kErrInvalidScanoutId);
  EXPECT_EQ(SetScanoutTo(0, 2, Rect{0, 0, 128, 128}), ResponseType::kErrInvalidResourceId);
  EXPECT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 129, 128}), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(SetScanoutTo(0, 1, Rect{0xffffff80, 0, 0x100, 128}),
            ResponseType::kErrInvalidParameter);
  EXPECT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 8, 8}), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 128, 128}), ResponseType::kOkNodata);
  EXPECT_EQ(SetScanoutTo(15, 1, Rect{64, 64, 64, 64}), ResponseType::kOkNodata);
  EXPECT_EQ(SetScanoutTo(0, 0, Rect{}), ResponseType::kOkNodata);  // Disable.
}

TEST_F(DeviceModelTest, RepeatedSetScanoutDoesNotGrowAnything) {
  ASSERT_EQ(Create(1, 128, 128), ResponseType::kOkNodata);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 128, 128}), ResponseType::kOkNodata);
  }
  EXPECT_EQ(model_->resources().count(), 1u);
  EXPECT_EQ(model_->resources().host_memory_used(), 128u * 128 * 4 + kResourceBookkeepingBytes);
}

TEST_F(DeviceModelTest, UnrefOfADisplayedResourceDisablesItsScanouts) {
  ASSERT_EQ(Create(1, 128, 128), ResponseType::kOkNodata);
  ASSERT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 128, 128}), ResponseType::kOkNodata);
  ASSERT_EQ(SetScanoutTo(1, 1, Rect{0, 0, 64, 64}), ResponseType::kOkNodata);
  EXPECT_EQ(Unref(1), ResponseType::kOkNodata);
  EXPECT_EQ(model_->scanout(0).resource.value(), 0u);
  EXPECT_EQ(model_->scanout(1).resource.value(), 0u);
  EXPECT_EQ(Flush(1, Rect{0, 0, 1, 1}), ResponseType::kErrInvalidResourceId);
}

TEST_F(DeviceModelTest, FlushValidatesTheRect) {
  ASSERT_EQ(Create(1, 128, 128), ResponseType::kOkNodata);
  EXPECT_EQ(Flush(1, Rect{0, 0, 128, 128}), ResponseType::kOkNodata);
  EXPECT_EQ(Flush(1, Rect{1, 0, 0xffffffff, 1}), ResponseType::kErrInvalidParameter);
  EXPECT_EQ(Flush(2, Rect{0, 0, 1, 1}), ResponseType::kErrInvalidResourceId);
}

TEST_F(DeviceModelTest, CapsetsDoNotExistInTwoDimensionalMode) {
  GetCapsetInfo info{};
  info.hdr = Header(CommandType::kGetCapsetInfo);
  info.capset_index = 0;
  EXPECT_EQ(RunType(info), ResponseType::kErrInvalidParameter);
  info.capset_index = 0xffffffff;
  EXPECT_EQ(RunType(info), ResponseType::kErrInvalidParameter);
  GetCapset capset{};
  capset.hdr = Header(CommandType::kGetCapset);
  capset.capset_id = 1;
  EXPECT_EQ(RunType(capset), ResponseType::kErrInvalidParameter);
}

TEST_F(DeviceModelTest, GetEdidGeneratesAValidBlock) {
  gpu::GetEdid request{};
  request.hdr = Header(CommandType::kGetEdid);
  request.scanout = 0;
  uint32_t used = 0;
  EXPECT_EQ(Run(request, &used).type, static_cast<uint32_t>(ResponseType::kOkEdid));
  ASSERT_EQ(used, sizeof(RespEdid));
  RespEdid edid;
  std::memcpy(&edid, Host(kResponseArea, sizeof(edid)), sizeof(edid));
  EXPECT_EQ(edid.size, 128u);
  const uint8_t header[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
  EXPECT_EQ(std::memcmp(edid.edid, header, 8), 0);
  uint8_t sum = 0;
  for (int i = 0; i < 128; ++i) sum = static_cast<uint8_t>(sum + edid.edid[i]);
  EXPECT_EQ(sum, 0);
  for (size_t i = 128; i < sizeof(edid.edid); ++i) ASSERT_EQ(edid.edid[i], 0) << i;
  request.scanout = 16;
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidParameter);
}

TEST_F(DeviceModelTest, GetEdidNeedsTheFeature) {
  model_->set_acked_features(0);
  gpu::GetEdid request{};
  request.hdr = Header(CommandType::kGetEdid);
  EXPECT_EQ(RunType(request), ResponseType::kErrUnspec);
}

TEST_F(DeviceModelTest, AssignUuidIsStablePerResource) {
  ASSERT_EQ(Create(1, 16, 16), ResponseType::kOkNodata);
  ResourceAssignUuid request{};
  request.hdr = Header(CommandType::kResourceAssignUuid);
  request.resource_id = 1;
  ASSERT_EQ(RunType(request), ResponseType::kOkResourceUuid);
  RespResourceUuid first;
  std::memcpy(&first, Host(kResponseArea, sizeof(first)), sizeof(first));
  ASSERT_EQ(RunType(request), ResponseType::kOkResourceUuid);
  RespResourceUuid second;
  std::memcpy(&second, Host(kResponseArea, sizeof(second)), sizeof(second));
  EXPECT_EQ(std::memcmp(first.uuid, second.uuid, 16), 0);
  request.resource_id = 9;
  EXPECT_EQ(RunType(request), ResponseType::kErrInvalidResourceId);
}

TEST_F(DeviceModelTest, ThreeDimensionalAndUnknownCommandsGetErrUnspec) {
  for (CommandType type : {CommandType::kCtxCreate, CommandType::kSubmit3d,
                           CommandType::kResourceCreateBlob, CommandType::kSetScanoutBlob,
                           CommandType::kResourceMapBlob, static_cast<CommandType>(0x7777)}) {
    uint8_t request[128] = {};
    CtrlHdr header = Header(type);
    std::memcpy(request, &header, sizeof(header));
    EXPECT_EQ(RunType(request), ResponseType::kErrUnspec) << static_cast<uint32_t>(type);
  }
}

TEST_F(DeviceModelTest, TruncatedHeaderGetsAnUnfencedErrUnspec) {
  uint8_t short_request[10] = {0x01, 0x01, 0, 0, 1, 0, 0, 0, 0x55, 0x55};
  uint32_t used = 0;
  CtrlHdr response = Run(short_request, &used);
  EXPECT_EQ(used, sizeof(CtrlHdr));
  EXPECT_EQ(response.type, static_cast<uint32_t>(ResponseType::kErrUnspec));
  EXPECT_EQ(response.flags, 0u);
  EXPECT_EQ(response.fence_id, 0u);
}

TEST_F(DeviceModelTest, TruncatedBodyGetsErrUnspec) {
  ResourceCreate2d request{};
  request.hdr = Header(CommandType::kResourceCreate2d);
  // Only the header and half the body arrive.
  const uint16_t head = Submit(Chain(&request, sizeof(CtrlHdr) + 8));
  ASSERT_EQ(ring_.Returns(head), 1u);
  CtrlHdr response;
  std::memcpy(&response, Host(kResponseArea, sizeof(response)), sizeof(response));
  EXPECT_EQ(response.type, static_cast<uint32_t>(ResponseType::kErrUnspec));
  EXPECT_EQ(model_->resources().count(), 0u);
}

TEST_F(DeviceModelTest, MissingWritableBufferWritesNothing) {
  ResourceCreate2d request{};
  request.hdr = Header(CommandType::kResourceCreate2d);
  request.resource_id = 1;
  request.format = static_cast<uint32_t>(Format::kB8G8R8X8Unorm);
  request.width = request.height = 16;
  const uint16_t none = Submit(Chain(&request, sizeof(request), /*response_size=*/0));
  ASSERT_EQ(ring_.Returns(none), 1u);
  EXPECT_EQ(ring_.UsedLength(none), 0u);
  // A response buffer too small for the response is not written either.
  const uint16_t small = Submit(Chain(&request, sizeof(request), /*response_size=*/8));
  ASSERT_EQ(ring_.Returns(small), 1u);
  EXPECT_EQ(ring_.UsedLength(small), 0u);
  EXPECT_EQ(Host(kResponseArea, 8)[0], testing::kCanary);
}

TEST_F(DeviceModelTest, CursorCommandsWithoutDisplayAreHarmless) {
  ASSERT_EQ(Create(1, 32, 32), ResponseType::kOkNodata);  // Wrong cursor size.
  UpdateCursor request{};
  request.hdr = Header(CommandType::kUpdateCursor);
  request.resource_id = 1;
  RunCursor(Chain(&request, sizeof(request), 0));
  request.pos.scanout_id = 99;
  RunCursor(Chain(&request, sizeof(request), 0));
  EXPECT_EQ(model_->statistics().cursor_commands, 2u);
  EXPECT_EQ(model_->resources().count(), 1u);
}

TEST_F(DeviceModelTest, ResetDropsEverything) {
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  ASSERT_EQ(Attach(1, kDataArea, 64 * 64 * 4), ResponseType::kOkNodata);
  ASSERT_EQ(SetScanoutTo(0, 1, Rect{0, 0, 64, 64}), ResponseType::kOkNodata);
  model_->Reset();
  EXPECT_EQ(model_->resources().count(), 0u);
  EXPECT_EQ(model_->resources().host_memory_used(), 0u);
  EXPECT_EQ(model_->scanout(0).resource.value(), 0u);
}

}  // namespace
}  // namespace vgpu::gpu
