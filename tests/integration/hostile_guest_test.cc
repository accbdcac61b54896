// The hostile-guest suite: one test per class of QEMU's virtio-gpu and vhost-user-gpu CVE
// history (docs/SECURITY.md, "The CVE classes and the test for each"), plus a flooding guest, a
// guest that creates resources until the cap, and a guest that rewrites its command bytes while the
// daemon reads them. Each runs against the daemon process through its real queues and asserts the
// response codes, that the daemon keeps serving, and that its open fds and resident memory do not
// grow with repetition. The in-process heap check of the same leak paths is
// tests/unit/gpu/hostile_leak_test.cc; descriptor-chain abuse (class 11) is
// descriptor_attack_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "integration/hostile_guest_fixture.h"

namespace vgpu::test {
namespace {

// Class 1: capset index or id out of range (CVE-2016-9845/9908/10028, CVE-2021-3545/3546). In 2D
// mode there are no capsets at all: every index and id is out of range.
TEST_F(HostileGuestTest, Class01CapsetIndexOrIdOutOfRange) {
  ConnectWithScratch();
  ExpectNoGrowth(
      [&] {
        for (uint32_t index : {0u, 1u, 16u, 0xffffffffu}) {
          gpu::GetCapsetInfo info{};
          info.hdr = Header(CommandType::kGetCapsetInfo);
          info.capset_index = index;
          RawOutcome outcome = Send(info, sizeof(gpu::RespCapsetInfo));
          ASSERT_EQ(outcome.type(), static_cast<uint32_t>(ResponseType::kErrInvalidParameter));
        }
        for (uint32_t id : {0u, 1u, 2u, 3u, 8u, 0xffffffffu}) {
          gpu::GetCapset capset{};
          capset.hdr = Header(CommandType::kGetCapset);
          capset.capset_id = id;
          capset.capset_version = 0xffffffff;
          RawOutcome outcome = Send(capset, 4096);
          ASSERT_EQ(outcome.type(), static_cast<uint32_t>(ResponseType::kErrInvalidParameter));
          // An error answers with a header only: nothing of a capset after it (CVE-2021-3546
          // wrote past the response).
          ASSERT_EQ(outcome.used_length, sizeof(gpu::CtrlHdr));
          for (size_t i = sizeof(gpu::CtrlHdr); i < outcome.response.size(); ++i) {
            ASSERT_EQ(outcome.response[i], kFill) << "byte " << i;
          }
        }
      },
      200);
}

// Class 2: every response is fully initialised (CVE-2016-9845/9908, CVE-2021-3545): each byte up
// to the used length is written, and nothing past it.
TEST_F(HostileGuestTest, Class02EveryResponseIsFullyInitialised) {
  ConnectWithScratch();
  ShowResource(1, 64, 64, Pattern(64, 64, 1));
  auto check = [&](const RawOutcome& outcome, uint32_t expected_length, const char* what) {
    ASSERT_EQ(outcome.used_length, expected_length) << what;
    gpu::CtrlHdr header{};
    std::memcpy(&header, outcome.response.data(), sizeof(header));
    EXPECT_EQ(header.padding[0] | header.padding[1] | header.padding[2], 0) << what;
    for (size_t i = outcome.used_length; i < outcome.response.size(); ++i) {
      ASSERT_EQ(outcome.response[i], kFill) << what << ": byte " << i << " past the response";
    }
  };
  // GET_DISPLAY_INFO: 16 heads, disabled ones all zero.
  RawOutcome display_info = Send(Header(CommandType::kGetDisplayInfo), 1024);
  check(display_info, sizeof(gpu::RespDisplayInfo), "GET_DISPLAY_INFO");
  for (size_t i = sizeof(gpu::CtrlHdr); i < sizeof(gpu::RespDisplayInfo); ++i) {
    ASSERT_NE(display_info.response[i], kFill) << "GET_DISPLAY_INFO byte " << i << " unwritten";
  }
  // GET_EDID: the whole 1024-byte array is defined even where the EDID is shorter.
  gpu::GetEdid edid{};
  edid.hdr = Header(CommandType::kGetEdid);
  RawOutcome edid_outcome = Send(edid, 2048);
  check(edid_outcome, sizeof(gpu::RespEdid), "GET_EDID");
  gpu::RespEdid edid_response{};
  std::memcpy(&edid_response, edid_outcome.response.data(), sizeof(edid_response));
  for (uint32_t i = edid_response.size; i < sizeof(edid_response.edid); ++i) {
    ASSERT_EQ(edid_response.edid[i], 0) << "GET_EDID byte " << i << " past the EDID";
  }
  // RESOURCE_ASSIGN_UUID.
  gpu::ResourceAssignUuid uuid{};
  uuid.hdr = Header(CommandType::kResourceAssignUuid);
  uuid.resource_id = 1;
  check(Send(uuid, 1024), sizeof(gpu::RespResourceUuid), "RESOURCE_ASSIGN_UUID");
  // Errors, short requests and unknown commands: a 24-byte header, nothing more.
  check(Send(Header(static_cast<CommandType>(0x0199)), 1024), sizeof(gpu::CtrlHdr), "unknown");
  const uint8_t short_request[10] = {0x00, 0x01};
  const RawOutcome short_outcome = SendRaw(short_request, 1024);
  check(short_outcome, sizeof(gpu::CtrlHdr), "10-byte request");
  EXPECT_EQ(short_outcome.type(), static_cast<uint32_t>(ResponseType::kErrUnspec));
}

// Class 3: scanout ids beyond the 16 that exist (CVE-2016-10029) in SET_SCANOUT, GET_EDID, the
// cursor commands and hence the GPU-socket messages; SET_SCANOUT_BLOB without the blob feature.
TEST_F(HostileGuestTest, Class03ScanoutIdOutOfRange) {
  ConnectWithScratch();
  ShowResource(1, 64, 64, Pattern(64, 64, 2));
  ASSERT_TRUE(WaitForFrame(0, Pattern(64, 64, 2), 64));
  const size_t messages_before = display().Snapshot().messages.size();
  ExpectNoGrowth(
      [&] {
        for (uint32_t scanout : {16u, 17u, 0x80000000u, 0xffffffffu}) {
          ASSERT_EQ(SetScanoutRaw(scanout, 1, gpu::Rect{0, 0, 64, 64}),
                    ResponseType::kErrInvalidScanoutId);
          gpu::GetEdid edid{};
          edid.hdr = Header(CommandType::kGetEdid);
          edid.scanout = scanout;
          ASSERT_EQ(static_cast<ResponseType>(Send(edid, sizeof(gpu::RespEdid)).type()),
                    ResponseType::kErrInvalidParameter);
          gpu::SetScanoutBlob blob{};
          blob.hdr = Header(CommandType::kSetScanoutBlob);
          blob.scanout_id = scanout;
          blob.resource_id = 1;
          ASSERT_EQ(SendType(blob), ResponseType::kErrInvalidScanoutId);
          // Cursor commands have no response; they must reach neither the display nor a crash.
          gpu::UpdateCursor cursor{};
          cursor.hdr = Header(CommandType::kMoveCursor);
          cursor.pos.scanout_id = scanout;
          Result<uint64_t> address = session().ram->Allocate(sizeof(cursor), 8);
          ASSERT_TRUE(address && session().ram->WriteObject(*address, cursor));
          Result<uint16_t> head =
              session().cursor_queue->AddChain({{*address, sizeof(cursor)}}, {});
          ASSERT_TRUE(head);
          session().cursor_queue->Kick();
          ASSERT_TRUE(session().cursor_queue->WaitForUsedHead(*head, kCommandTimeout));
        }
      },
      100);
  // Nothing about scanouts >= 16 went to the VMM.
  const FakeDisplayState state = display().Snapshot();
  for (size_t i = messages_before; i < state.messages.size(); ++i) {
    EXPECT_NE(state.messages[i].request, static_cast<uint32_t>(gpu::display::Request::kScanout));
    EXPECT_NE(state.messages[i].request, static_cast<uint32_t>(gpu::display::Request::kCursorPos));
  }
  EXPECT_TRUE(display().Anomalies().empty()) << ::testing::PrintToString(display().Anomalies());
}

// Class 4: the leak paths (CVE-2016-7994/9846/9912, CVE-2017-5578/9060, CVE-2021-3544): failed
// creates, double ATTACH_BACKING, UNREF with backing attached, failed attaches, repeated
// SET_SCANOUT, a cursor from a resource that is not 64x64.
TEST_F(HostileGuestTest, Class04LeakPathsLeaveNothingBehind) {
  ConnectWithScratch({.memory_size = 128ull << 20});
  Result<uint64_t> backing = session().ram->Allocate(256 * 256 * 4, 4096);
  ASSERT_TRUE(backing);
  const std::vector<gpu::MemEntry> entry = {{*backing, 256 * 256 * 4, 0}};
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(Create(1, 256, 256, 0xdead), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(Create(1, 0xffffffff, 0xffffffff), ResponseType::kErrOutOfMemory);
        ASSERT_EQ(Create(1, 256, 256), ResponseType::kOkNodata);
        ASSERT_EQ(AttachEntries(1, entry), ResponseType::kOkNodata);
        ASSERT_EQ(AttachEntries(1, entry), ResponseType::kErrUnspec);  // Double attach.
        for (int i = 0; i < 5; ++i) {
          ASSERT_EQ(SetScanoutRaw(0, 1, gpu::Rect{0, 0, 256, 256}), ResponseType::kOkNodata);
        }
        // A 256x256 cursor resource: only its top-left 64x64 may be read (CVE-2016-9846).
        gpu::UpdateCursor cursor{};
        cursor.hdr = Header(CommandType::kUpdateCursor);
        cursor.resource_id = 1;
        Result<uint64_t> address = session().ram->Allocate(sizeof(cursor), 8);
        ASSERT_TRUE(address && session().ram->WriteObject(*address, cursor));
        Result<uint16_t> head = session().cursor_queue->AddChain({{*address, sizeof(cursor)}}, {});
        ASSERT_TRUE(head);
        session().cursor_queue->Kick();
        ASSERT_TRUE(session().cursor_queue->WaitForUsedHead(*head, kCommandTimeout));
        ASSERT_EQ(Unref(1), ResponseType::kOkNodata);  // With backing and on a scanout.
        ASSERT_EQ(Create(2, 256, 256), ResponseType::kOkNodata);
        const std::vector<gpu::MemEntry> outside = {{session().ram->file_size(), 4096, 0}};
        ASSERT_EQ(AttachEntries(2, outside), ResponseType::kErrUnspec);  // Failed attach.
        ASSERT_EQ(Unref(2), ResponseType::kOkNodata);
      },
      1000);
}

// Class 5: rectangles out of bounds, x + width wrapping u32, under 16x16 scanouts, zero sizes.
TEST_F(HostileGuestTest, Class05RectanglesOutOfBounds) {
  ConnectWithScratch();
  ShowResource(1, 128, 128, Pattern(128, 128, 3));
  const gpu::Rect bad_rects[] = {
      {0xfffffff0, 0, 0x20, 16},  // x + width wraps.
      {0, 0xfffffff0, 16, 0x20},  // y + height wraps.
      {0, 0, 129, 128},           // One column too many.
      {127, 127, 2, 2},           // Starts inside, ends outside.
      {0x80000000, 0x80000000, 0x80000000, 0x80000000},
  };
  ExpectNoGrowth(
      [&] {
        for (const gpu::Rect& rect : bad_rects) {
          ASSERT_EQ(TransferRaw(1, rect, 0), ResponseType::kErrInvalidParameter);
          ASSERT_EQ(FlushRaw(1, rect), ResponseType::kErrInvalidParameter);
          ASSERT_EQ(SetScanoutRaw(0, 1, rect), ResponseType::kErrInvalidParameter);
        }
        ASSERT_EQ(SetScanoutRaw(0, 1, gpu::Rect{0, 0, 15, 128}),
                  ResponseType::kErrInvalidParameter);
        ASSERT_EQ(SetScanoutRaw(0, 1, gpu::Rect{0, 0, 128, 0}), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(Create(9, 0, 16), ResponseType::kErrInvalidParameter);
        // A transfer whose source rows would run past the backing: refused before any copy.
        ASSERT_EQ(TransferRaw(1, gpu::Rect{0, 0, 128, 128}, 4), ResponseType::kErrInvalidParameter);
      },
      200);
  // The scanout still shows the resource that was set before the attacks.
  EXPECT_TRUE(WaitForFrame(0, Pattern(128, 128, 3), 128));
}

// Class 6: width * height * 4 and stride overflows, and the host memory cap.
TEST_F(HostileGuestTest, Class06SizeOverflowAndTheMemoryCap) {
  ConnectWithScratch();
  Result<uint64_t> backing = session().ram->Allocate(64 * 64 * 4, 4096);
  ASSERT_TRUE(backing);
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(Create(1, 0x40000000, 4), ResponseType::kErrOutOfMemory);  // u32 wrap to 0.
        ASSERT_EQ(Create(1, 0x10000, 0x10000), ResponseType::kErrOutOfMemory);
        ASSERT_EQ(Create(1, 0xffffffff, 1), ResponseType::kErrOutOfMemory);
        ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
        ASSERT_EQ(AttachEntries(1, {{*backing, 64 * 64 * 4, 0}}), ResponseType::kOkNodata);
        // Offsets whose row arithmetic overflows u64.
        ASSERT_EQ(TransferRaw(1, gpu::Rect{0, 0, 64, 64}, 0xfffffffffffffff0ull),
                  ResponseType::kErrInvalidParameter);
        ASSERT_EQ(Unref(1), ResponseType::kOkNodata);
      },
      300);
}

// Class 7: nr_entries beyond the limit or beyond the request, entries outside or straddling the
// end of guest RAM, wrapping addresses.
TEST_F(HostileGuestTest, Class07BackingEntriesOutsideRamOrTooMany) {
  ConnectWithScratch();
  ASSERT_EQ(Create(1, 64, 64), ResponseType::kOkNodata);
  const uint64_t ram_end = session().ram->file_size();
  ExpectNoGrowth(
      [&] {
        const std::vector<gpu::MemEntry> one = {{4096, 4096, 0}};
        ASSERT_EQ(AttachEntries(1, {}, 0), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(AttachEntries(1, one, 16385), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(AttachEntries(1, one, 0xffffffff), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(AttachEntries(1, one, 100), ResponseType::kErrUnspec);  // Only one present.
        for (const gpu::MemEntry& bad :
             {gpu::MemEntry{ram_end, 4096, 0}, gpu::MemEntry{ram_end - 4096, 8192, 0},
              gpu::MemEntry{0xfffffffffffff000ull, 0x2000, 0},
              gpu::MemEntry{1ull << 52, 4096, 0}}) {
          ASSERT_EQ(AttachEntries(1, {one[0], bad}), ResponseType::kErrUnspec);
        }
      },
      300);
  // None of the refused attaches stuck: a good one still works.
  EXPECT_EQ(AttachEntries(1, {{4096, 64 * 64 * 4, 0}}), ResponseType::kOkNodata);
}

// Class 8: huge SUBMIT_3D and a size that disagrees with the bytes present. Without a 3D
// renderer the command is refused outright; with virglrenderer the bound is 4 MiB (see
// VirglHostileGuestTest below).
TEST_F(HostileGuestTest, Class08HugeSubmit3dIn2dMode) {
  ConnectWithScratch();
  ExpectNoGrowth(
      [&] {
        for (uint32_t size : {0u, 16u, 4u << 20, 0xffffffffu}) {
          gpu::CmdSubmit submit{};
          submit.hdr = Header(CommandType::kSubmit3d);
          submit.size = size;
          ASSERT_EQ(SendType(submit), ResponseType::kErrUnspec);
        }
      },
      200);
}

// Class 8 and class 1 with a real 3D renderer (virglrenderer on Mesa llvmpipe here): SUBMIT_3D
// at, over and far over the 4 MiB bound, sizes that claim more than the request carries,
// commands for contexts that do not exist, capsets out of range.
class VirglHostileGuestTest : public HostileGuestTest {
 protected:
  void SetUp() override { StartVirglDaemonOrSkip(); }
};

TEST_F(VirglHostileGuestTest, Class08HugeSubmit3dAndSizeMismatch) {
  ConnectWithScratch({.memory_size = 64ull << 20});
  gpu::CtxCreate create{};
  create.hdr = Header(CommandType::kCtxCreate);
  create.hdr.ctx_id = 1;
  create.nlen = 4;
  std::memcpy(create.debug_name, "test", 4);
  ASSERT_EQ(SendType(create), ResponseType::kOkNodata);
  // At the bound exactly: 4 MiB of NOPs is a valid stream. It needs its own buffer.
  constexpr uint32_t kBound = 4u << 20;
  Result<uint64_t> big = session().ram->Allocate(sizeof(gpu::CmdSubmit) + kBound + 4, 4096);
  Result<uint64_t> big_response = session().ram->Allocate(sizeof(gpu::CtrlHdr), 8);
  ASSERT_TRUE(big && big_response);
  ASSERT_TRUE(session().ram->Fill(*big, sizeof(gpu::CmdSubmit) + kBound + 4, 0));
  auto submit_big = [&](uint32_t size, uint32_t carried) {
    gpu::CmdSubmit submit{};
    submit.hdr = Header(CommandType::kSubmit3d);
    submit.hdr.ctx_id = 1;
    submit.size = size;
    EXPECT_TRUE(session().ram->WriteObject(*big, submit));
    Result<uint16_t> head =
        session().control_queue->AddChain({{*big, static_cast<uint32_t>(sizeof(submit) + carried)}},
                                          {{*big_response, sizeof(gpu::CtrlHdr)}});
    EXPECT_TRUE(head);
    session().control_queue->Kick();
    EXPECT_TRUE(session().control_queue->WaitForUsedHead(head.value_or(0), kCommandTimeout));
    return static_cast<ResponseType>(
        session().ram->ReadObject<gpu::CtrlHdr>(*big_response).value_or(gpu::CtrlHdr{}).type);
  };
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(submit_big(kBound, kBound), ResponseType::kOkNodata);
        ASSERT_EQ(submit_big(kBound + 4, kBound + 4), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(submit_big(0xffffffff, 64), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(submit_big(4096, 64), ResponseType::kErrInvalidParameter);  // Claims more.
        gpu::CmdSubmit other{};
        other.hdr = Header(CommandType::kSubmit3d);
        other.hdr.ctx_id = 77;  // No such context.
        other.size = 16;
        const uint8_t stream[16] = {};
        ASSERT_EQ(SendType(other, stream), ResponseType::kErrInvalidContextId);
        for (uint32_t index : {2u, 3u, 0xffffffffu}) {
          gpu::GetCapsetInfo info{};
          info.hdr = Header(CommandType::kGetCapsetInfo);
          info.capset_index = index;
          ASSERT_EQ(static_cast<ResponseType>(Send(info, sizeof(gpu::RespCapsetInfo)).type()),
                    ResponseType::kErrInvalidParameter);
        }
        gpu::GetCapset capset{};
        capset.hdr = Header(CommandType::kGetCapset);
        capset.capset_id = 1;
        capset.capset_version = 99;  // Beyond VIRGL's max_version.
        ASSERT_EQ(static_cast<ResponseType>(Send(capset, 4096).type()),
                  ResponseType::kErrInvalidParameter);
      },
      30, 3, 2048);
}

// Class 12: a backing shorter than what an operation touches. A renderer library trusts the
// backing it is given: the daemon checks every transfer against it (2D), or lets a library that
// checks its own bounds refuse it (virglrenderer), or refuses the backing itself where the
// library copies whole resources through it (gfxstream: gfxstream_library_test.cc). The
// sequence from the gfxstream crash: a 512x512 resource, 4 KiB of backing, transfers of a pixel
// and of everything, a scanout of it.
constexpr uint32_t kShortBackingBytes = 4096;

TEST_F(HostileGuestTest, Class12BackingShorterThanTheTransfer) {
  ConnectWithScratch();
  Result<uint64_t> backing = session().ram->Allocate(kShortBackingBytes, 4096);
  ASSERT_TRUE(backing);
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(Create(1, 512, 512), ResponseType::kOkNodata);
        ASSERT_EQ(AttachEntries(1, {{*backing, kShortBackingBytes, 0}}), ResponseType::kOkNodata);
        EXPECT_EQ(TransferRaw(1, gpu::Rect{0, 0, 1, 1}, 0), ResponseType::kOkNodata);
        EXPECT_EQ(TransferRaw(1, gpu::Rect{0, 0, 512, 512}, 0), ResponseType::kErrInvalidParameter);
        EXPECT_EQ(TransferRaw(1, gpu::Rect{0, 0, 1, 1}, kShortBackingBytes - 3),
                  ResponseType::kErrInvalidParameter);
        // Two rows of 4 bytes 2048 apart (the resource's stride): the second ends past 4096.
        EXPECT_EQ(TransferRaw(1, gpu::Rect{0, 0, 1, 2}, 2048), ResponseType::kErrInvalidParameter);
        EXPECT_EQ(SetScanoutRaw(0, 1, gpu::Rect{0, 0, 512, 512}), ResponseType::kOkNodata);
        EXPECT_EQ(FlushRaw(1, gpu::Rect{0, 0, 512, 512}), ResponseType::kOkNodata);
        EXPECT_EQ(SetScanoutRaw(0, 0, gpu::Rect{}), ResponseType::kOkNodata);
        ASSERT_EQ(Unref(1), ResponseType::kOkNodata);
      },
      50, 5);
}

TEST_F(VirglHostileGuestTest, Class12BackingShorterThanTheTransfer) {
  ConnectWithScratch();
  Result<uint64_t> backing = session().ram->Allocate(kShortBackingBytes, 4096);
  ASSERT_TRUE(backing);
  ASSERT_EQ(CreateContextRaw(1), ResponseType::kOkNodata);
  constexpr uint32_t kTexture2d = 2, kBindRenderTarget = 1u << 1;
  const uint32_t format = static_cast<uint32_t>(gpu::Format::kB8G8R8X8Unorm);
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(Create3dRaw(1, kTexture2d, format, kBindRenderTarget, 512, 512),
                  ResponseType::kOkNodata);
        ASSERT_EQ(AttachEntries(1, {{*backing, kShortBackingBytes, 0}}), ResponseType::kOkNodata);
        // virglrenderer checks each transfer against the backing (its iovecs' total).
        EXPECT_EQ(Transfer3dRaw(false, 0, 1, gpu::Box{0, 0, 0, 1, 1, 1}), ResponseType::kOkNodata);
        EXPECT_EQ(Transfer3dRaw(true, 0, 1, gpu::Box{0, 0, 0, 1, 1, 1}), ResponseType::kOkNodata);
        EXPECT_EQ(Transfer3dRaw(false, 0, 1, gpu::Box{0, 0, 0, 512, 512, 1}, 2048),
                  ResponseType::kErrInvalidParameter);
        EXPECT_EQ(Transfer3dRaw(true, 0, 1, gpu::Box{0, 0, 0, 512, 512, 1}, 2048),
                  ResponseType::kErrInvalidParameter);
        EXPECT_EQ(Transfer3dRaw(true, 0, 1, gpu::Box{0, 0, 0, 1, 1, 1}, 0, kShortBackingBytes),
                  ResponseType::kErrInvalidParameter);
        // The display reads back into the daemon's own buffer, sized for the rectangle.
        EXPECT_EQ(SetScanoutRaw(0, 1, gpu::Rect{0, 0, 512, 512}), ResponseType::kOkNodata);
        EXPECT_EQ(FlushRaw(1, gpu::Rect{0, 0, 512, 512}), ResponseType::kOkNodata);
        EXPECT_EQ(SetScanoutRaw(0, 0, gpu::Rect{}), ResponseType::kOkNodata);
        ASSERT_EQ(Unref(1), ResponseType::kOkNodata);
      },
      // llvmpipe allocates each 1 MiB texture and its read-back buffers from the arena of
      // whichever of its threads runs, so resident memory moves by a few MiB either way from one
      // sample to the next (seen: -2 to +4 MiB over 100 repetitions, not growing with them); 300
      // repetitions within 8 MiB still catch a leak of a 28 KiB backing bookkeeping per round.
      300, 30, 8192);
}

// Class 9: short or truncated headers, bodies shorter than the command, no writable buffer, a
// writable buffer shorter than a header.
TEST_F(HostileGuestTest, Class09TruncatedRequestsAndMissingResponseBuffers) {
  ConnectWithScratch();
  ExpectNoGrowth(
      [&] {
        std::vector<uint8_t> bytes(sizeof(gpu::ResourceCreate2d), 0);
        gpu::ResourceCreate2d create{};
        create.hdr = Header(CommandType::kResourceCreate2d);
        create.resource_id = 5;
        create.format = static_cast<uint32_t>(gpu::Format::kB8G8R8X8Unorm);
        create.width = create.height = 16;
        std::memcpy(bytes.data(), &create, sizeof(create));
        // A zero-length descriptor is a malformed chain: consumed with nothing written.
        ASSERT_EQ(SendRaw(std::span<const uint8_t>(bytes.data(), 0)).used_length, 0u);
        for (size_t length : {size_t{1}, size_t{23}, size_t{24}, size_t{39}}) {
          RawOutcome outcome =
              SendRaw(std::span<const uint8_t>(bytes.data(), length), sizeof(gpu::CtrlHdr));
          ASSERT_EQ(outcome.type(), static_cast<uint32_t>(ResponseType::kErrUnspec)) << length;
        }
        // No writable buffer: the command still runs, nothing is written, used length 0.
        RawOutcome no_response = SendRaw(bytes, 0);
        ASSERT_EQ(no_response.used_length, 0u);
        ASSERT_EQ(Unref(5), ResponseType::kOkNodata);
        // A writable buffer of 8 bytes: too small for a header, so nothing is written.
        RawOutcome tiny = Send(Header(CommandType::kGetDisplayInfo), 8);
        ASSERT_EQ(tiny.used_length, 0u);
        for (uint8_t byte : tiny.response) ASSERT_EQ(byte, kFill);
      },
      300);
}

// Class 10: the GPU socket. A VMM that never answers GET_DISPLAY_INFO or GET_EDID; a flush of a
// resource on no scanout; a flush reaching two scanouts; a reset followed by a new session.
TEST_F(HostileGuestTest, Class10GpuSocketRepliesThatNeverCome) {
  NegotiationOptions options;
  options.display_options.answer_display_info = false;
  options.display_options.answer_edid = false;
  ConnectWithScratch(options);
  for (int i = 0; i < 2; ++i) {
    // Answered from the daemon's own defaults once the reply times out (1 s), not never.
    RawOutcome info = Send(Header(CommandType::kGetDisplayInfo), sizeof(gpu::RespDisplayInfo));
    EXPECT_EQ(info.type(), static_cast<uint32_t>(ResponseType::kOkDisplayInfo));
    gpu::GetEdid edid{};
    edid.hdr = Header(CommandType::kGetEdid);
    EXPECT_EQ(static_cast<ResponseType>(Send(edid, sizeof(gpu::RespEdid)).type()),
              ResponseType::kOkEdid);
  }
  ShowResource(1, 64, 64, Pattern(64, 64, 4));
  ASSERT_EQ(Create(2, 64, 64), ResponseType::kOkNodata);
  EXPECT_EQ(FlushRaw(2, gpu::Rect{0, 0, 64, 64}), ResponseType::kOkNodata);  // On no scanout.
  EXPECT_TRUE(WaitForFrame(0, Pattern(64, 64, 4), 64));
  EXPECT_TRUE(daemon_->IsRunning());
}

TEST_F(HostileGuestTest, Class10ResetThenANewSessionDraws) {
  ConnectWithScratch();
  ShowResource(1, 64, 64, Pattern(64, 64, 5));
  ASSERT_TRUE(WaitForFrame(0, Pattern(64, 64, 5), 64));
  ASSERT_TRUE(connected_->frontend.ResetDevice());
  Result<std::vector<uint32_t>> bases = connected_->frontend.StopLikeQemu10(session());
  ASSERT_TRUE(bases) << bases.error().message;
  connected_.reset();
  ConnectWithScratch();
  // Resource 1 is gone with the old session; the id is free again.
  ShowResource(1, 32, 32, Pattern(32, 32, 6));
  EXPECT_TRUE(WaitForFrame(0, Pattern(32, 32, 6), 32));
}

// A guest that keeps the control queue full of full-frame copies: the control socket (GET_CONFIG)
// and the cursor queue must still be served while the flood goes on, not after it.
TEST_F(HostileGuestTest, FloodedControlQueueLeavesConfigAndCursorResponsive) {
  NegotiationOptions options;
  options.memory_size = 128ull << 20;
  options.control_queue_size = 256;
  ConnectWithScratch(options);
  ShowResource(1, 1920, 1080, std::vector<uint32_t>(1920 * 1080, 0x123456));
  gpu::TransferToHost2d transfer{};
  transfer.hdr = Header(CommandType::kTransferToHost2d);
  transfer.r = gpu::Rect{0, 0, 1920, 1080};
  transfer.resource_id = 1;
  Result<uint64_t> request = session().ram->Allocate(sizeof(transfer), 8);
  Result<uint64_t> responses = session().ram->Allocate(256 * sizeof(gpu::CtrlHdr), 8);
  ASSERT_TRUE(request && responses && session().ram->WriteObject(*request, transfer));
  DriverQueue& control = *session().control_queue;
  // Fill the ring: 128 two-descriptor chains, each a full-HD transfer (8 MB of copying).
  uint32_t in_flight = 0;
  uint64_t flood_completions = 0;
  auto refill = [&] {
    while (std::optional<UsedElement> used = control.PollUsed()) {
      --in_flight;
      ++flood_completions;
    }
    while (in_flight < 128) {
      Result<uint16_t> head =
          control.AddChain({{*request, sizeof(transfer)}},
                           {{*responses + (in_flight % 256) * sizeof(gpu::CtrlHdr), 24}});
      if (!head) break;
      ++in_flight;
    }
    control.Kick();
  };
  refill();
  // A cursor move, then GET_CONFIGs, while the flood is refilled.
  gpu::UpdateCursor cursor{};
  cursor.hdr = Header(CommandType::kMoveCursor);
  cursor.pos.x = 77;
  cursor.pos.y = 88;
  Result<uint64_t> cursor_address = session().ram->Allocate(sizeof(cursor), 8);
  ASSERT_TRUE(cursor_address && session().ram->WriteObject(*cursor_address, cursor));
  ASSERT_TRUE(session().cursor_queue->AddChain({{*cursor_address, sizeof(cursor)}}, {}));
  session().cursor_queue->Kick();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool cursor_seen = false;
  int config_replies = 0;
  while (std::chrono::steady_clock::now() < deadline && (!cursor_seen || config_replies < 20)) {
    refill();
    if (connected_->frontend.GetConfig(0, 16)) ++config_replies;
    if (!cursor_seen && display().Cursor(0).x == 77) {
      cursor_seen = true;
      // Seen while the queue was still full: the flood had not ended.
      EXPECT_GT(in_flight, 0u);
      std::printf("cursor shown after %llu flood transfers\n",
                  static_cast<unsigned long long>(flood_completions));
    }
  }
  EXPECT_TRUE(cursor_seen) << "the cursor move was not shown while the control queue was flooded";
  EXPECT_GE(config_replies, 20);
  // The flood was really going on: the queue was refilled and kept busy throughout.
  EXPECT_GT(flood_completions, 0u);
  std::printf(
      "flood: %llu transfers of 8 MB completed while 20 GET_CONFIGs and a cursor move "
      "were served\n",
      static_cast<unsigned long long>(flood_completions));
}

// The same on the cursor queue: a guest that fills it with 64x64 cursor image updates (each one
// read from the resource and sent to the VMM as CURSOR_UPDATE) must not hold the control queue
// back until the flood is over: the device yields after a batch (docs/ARCHITECTURE.md,
// "Threads"). Each round fills the whole queue (32768, a flood of about 0.2 s), waits until the
// daemon is working through it, then flushes a resource shown on scanout 0, which the daemon
// answers with an UPDATE on the same display socket. The display's log gives the daemon's order:
// fewer cursor updates than the flood must come before that UPDATE, however late this thread
// looks.
TEST_F(HostileGuestTest, FloodedCursorQueueLeavesConfigAndControlResponsive) {
  constexpr uint32_t kCursorQueueSize = 32768;  // virtio 1.2 §2.7: the largest queue.
  constexpr int kRounds = 4;
  NegotiationOptions options;
  options.cursor_queue_size = kCursorQueueSize;
  options.memory_size = 128ull << 20;
  ConnectWithScratch(options);
  ASSERT_EQ(Create(1, 64, 64, static_cast<uint32_t>(gpu::Format::kB8G8R8A8Unorm)),
            ResponseType::kOkNodata);
  AttachPixels(1, std::vector<uint32_t>(64 * 64, 0x80ff0000));
  Transfer(1, gpu::Rect{0, 0, 64, 64});
  ASSERT_EQ(SetScanoutRaw(0, 1, gpu::Rect{0, 0, 64, 64}), ResponseType::kOkNodata);
  ASSERT_FALSE(HasFatalFailure());
  gpu::UpdateCursor update{};
  update.hdr = Header(CommandType::kUpdateCursor);
  update.resource_id = 1;
  update.pos.x = 10;
  Result<uint64_t> update_address = session().ram->Allocate(sizeof(update), 8);
  ASSERT_TRUE(update_address && session().ram->WriteObject(*update_address, update));
  DriverQueue& cursor = *session().cursor_queue;
  DriverQueue& control = *session().control_queue;
  uint64_t most_before_update = 0;
  for (int round = 0; round < kRounds; ++round) {
    const size_t log_start = display().Snapshot().messages.size();
    const uint16_t cursor_start = cursor.DeviceUsedIndex();
    for (uint32_t i = 0; i < kCursorQueueSize; ++i) {
      ASSERT_TRUE(cursor.AddChain({{*update_address, sizeof(update)}}, {}));
    }
    cursor.Kick();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (cursor.DeviceUsedIndex() == cursor_start) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the cursor queue is not served";
    }
    // The daemon is inside the flood now.
    gpu::ResourceFlush flush{};
    flush.hdr = Header(CommandType::kResourceFlush);
    flush.r = gpu::Rect{0, 0, 64, 64};
    flush.resource_id = 1;
    CommandBuffers buffers = Queue(flush);
    control.Kick();
    ASSERT_TRUE(control.WaitForUsedHead(buffers.head, kCommandTimeout)) << "round " << round;
    EXPECT_EQ(ResponseOf(buffers), ResponseType::kOkNodata);
    EXPECT_TRUE(connected_->frontend.GetConfig(0, 16));
    // Let the flood finish, and the display read all of it, before looking at its order.
    for (uint32_t returned = 0; returned < kCursorQueueSize; ++returned) {
      ASSERT_TRUE(cursor.WaitForUsed(kCommandTimeout)) << "cursor update never returned";
    }
    ASSERT_TRUE(display().WaitFor(
        [&](const FakeDisplayState& state) {
          size_t cursor_updates = 0;
          for (size_t i = log_start; i < state.messages.size(); ++i) {
            cursor_updates += state.messages[i].request ==
                              static_cast<uint32_t>(gpu::display::Request::kCursorUpdate);
          }
          return cursor_updates == kCursorQueueSize;
        },
        kCommandTimeout));
    const FakeDisplayState state = display().Snapshot();
    uint64_t before_update = 0;
    bool update_seen = false;
    for (size_t i = log_start; i < state.messages.size() && !update_seen; ++i) {
      if (state.messages[i].request == static_cast<uint32_t>(gpu::display::Request::kUpdate)) {
        update_seen = true;
      } else if (state.messages[i].request ==
                 static_cast<uint32_t>(gpu::display::Request::kCursorUpdate)) {
        ++before_update;
      }
    }
    ASSERT_TRUE(update_seen) << "round " << round << ": the flush sent no UPDATE";
    most_before_update = std::max(most_before_update, before_update);
    EXPECT_LT(before_update, kCursorQueueSize)
        << "round " << round << ": the flush waited for the whole cursor flood";
  }
  std::printf("cursor flood: the flush's UPDATE came after at most %llu of %u cursor updates\n",
              static_cast<unsigned long long>(most_before_update), kCursorQueueSize);
}

// A guest that creates resources until the cap: out-of-memory errors, a daemon whose resident
// memory stays near the cap, and all of it usable again after UNREF.
TEST_F(HostileGuestTest, ResourcesUntilTheCapGetOutOfMemoryNotAnOomKill) {
  Result<std::unique_ptr<DaemonProcess>> capped =
      DaemonProcess::Start({.arguments = {"--gpu-mode", "null", "--max-hostmem", "32M"}});
  ASSERT_TRUE(capped) << capped.error().message;
  daemon_ = std::move(*capped);
  ConnectWithScratch();
  const uint64_t rss_start = daemon_->ResidentSetKb().value_or(0);
  // Tiny resources: their bookkeeping, not their 4 bytes of pixels, reaches the cap.
  uint32_t created = 0;
  for (uint32_t id = 1; id < 1'000'000; ++id) {
    const ResponseType response = Create(id, 1, 1);
    if (response == ResponseType::kErrOutOfMemory) break;
    ASSERT_EQ(response, ResponseType::kOkNodata) << id;
    ++created;
  }
  const uint64_t rss_full = daemon_->ResidentSetKb().value_or(0);
  std::printf("1x1 resources under a 32 MiB cap: %u created; VmRSS %llu -> %llu kB\n", created,
              static_cast<unsigned long long>(rss_start),
              static_cast<unsigned long long>(rss_full));
  EXPECT_LT(created, 40'000u);  // 32 MiB / (1 KiB + 4 B) = 32636.
  EXPECT_GT(created, 30'000u);
  if (kSanitizerBuild) {
    std::printf("resident memory not compared: sanitizer build (shadow memory, quarantine)\n");
  } else {
    EXPECT_LT(rss_full, rss_start + 32 * 1024);  // Real memory stays under the cap.
  }
  for (uint32_t id = 1; id <= created; ++id) ASSERT_EQ(Unref(id), ResponseType::kOkNodata);
  // Big ones: 4 MiB each, 7 fit under 32 MiB.
  uint32_t big = 0;
  for (uint32_t id = 1; id <= 16; ++id) {
    if (Create(id, 1024, 1024) != ResponseType::kOkNodata) break;
    ++big;
  }
  EXPECT_EQ(big, 7u);
  EXPECT_EQ(Create(100, 1024, 1024), ResponseType::kErrOutOfMemory);
  EXPECT_TRUE(daemon_->IsRunning());
}

// A guest that rewrites a command's bytes while the daemon reads them (a second vCPU): the daemon
// copies the request out once and uses only the copy, so every answer is one of the two
// commands' answers, never a mix that passes the check with one value and uses the other.
TEST_F(HostileGuestTest, CommandBytesChangedWhileReadAreDecodedOnce) {
  ConnectWithScratch();
  ShowResource(1, 64, 64, Pattern(64, 64, 7));
  gpu::TransferToHost2d good{};
  good.hdr = Header(CommandType::kTransferToHost2d);
  good.r = gpu::Rect{0, 0, 64, 64};
  good.resource_id = 1;
  gpu::TransferToHost2d bad = good;
  bad.r = gpu::Rect{0xffffffc0, 0xffffffc0, 0x80, 0x80};
  bad.offset = 0xfffffffffffff000ull;
  ASSERT_TRUE(session().ram->WriteObject(scratch_request_, good));
  uint8_t* live = *session().ram->HostPointer(scratch_request_, sizeof(good));
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    bool use_bad = false;
    while (!stop.load(std::memory_order_relaxed)) {
      const gpu::TransferToHost2d& source = use_bad ? bad : good;
      // Byte by byte, like a racing vCPU: the daemon may see any mix of the two.
      const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&source);
      for (size_t i = 0; i < sizeof(source); ++i) {
        std::atomic_ref<uint8_t>(live[i]).store(bytes[i], std::memory_order_relaxed);
      }
      use_bad = !use_bad;
    }
  });
  int ok = 0, refused = 0, other = 0;
  DriverQueue& control = *session().control_queue;
  for (int i = 0; i < 3000; ++i) {
    Result<uint16_t> head =
        control.AddChain({{scratch_request_, sizeof(good)}}, {{scratch_response_, 24}});
    ASSERT_TRUE(head);
    control.Kick();
    ASSERT_TRUE(control.WaitForUsedHead(*head, kCommandTimeout));
    Result<gpu::CtrlHdr> response = session().ram->ReadObject<gpu::CtrlHdr>(scratch_response_);
    ASSERT_TRUE(response);
    const auto type = static_cast<ResponseType>(response->type);
    if (type == ResponseType::kOkNodata) {
      ++ok;
    } else if (type == ResponseType::kErrInvalidParameter ||
               type == ResponseType::kErrInvalidResourceId || type == ResponseType::kErrUnspec) {
      ++refused;  // A mix with a bad rect, offset, id or type: refused, as it must be.
    } else {
      ++other;
    }
  }
  stop = true;
  flipper.join();
  std::printf("racing rewrites: %d transfers done, %d refused, %d other\n", ok, refused, other);
  EXPECT_EQ(other, 0);
  EXPECT_TRUE(daemon_->IsRunning());
  // The resource is intact and still displayable.
  EXPECT_EQ(FlushRaw(1, gpu::Rect{0, 0, 64, 64}), ResponseType::kOkNodata);
}

}  // namespace
}  // namespace vgpu::test
