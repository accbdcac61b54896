// --gpu-mode gfxstream against a gfxstream library through the daemon process: a real gfxstream
// build when $VGPU_TEST_GFXSTREAM_LIBRARY names one (README "gfxstream mode": how it was built
// and what passed), else the stand-in, which models the real library's safety-relevant
// assumptions (it aborts where gfxstream would overflow its heap). Only real gfxstream commands
// are sent (its PLACEHOLDER_COMMAND_VK; others with streams too short for their struct), so
// each test means the same against both.
//
// The hostile classes here are those of hostile_guest_test.cc that reach a 3D renderer: capsets
// (1), SUBMIT_3D bounds (8) and backings shorter than what the renderer copies (12), plus
// resource shapes a library may not expect. Every test ends with no system call refused by the
// sandbox: gfxstream's normal work must run under it.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "integration/gfxstream_fixture.h"

namespace vgpu::test {
namespace {

constexpr uint32_t kTexture2d = 2;
constexpr uint32_t kBindRenderTarget = 1u << 1;
constexpr uint32_t kBindSamplerView = 1u << 3;
const uint32_t kFormatB8G8R8X8 = static_cast<uint32_t>(gpu::Format::kB8G8R8X8Unorm);

class GfxstreamLibraryTest : public GfxstreamOnLibraryUnderTest {
 protected:
  // A guest buffer of `bytes`, filled with `value`.
  uint64_t GuestBuffer(uint32_t bytes, uint8_t value = 0) {
    Result<uint64_t> address = session().ram->Allocate(bytes, 4096);
    EXPECT_TRUE(address);
    EXPECT_TRUE(session().ram->Fill(address.value_or(0), bytes, value));
    return address.value_or(0);
  }
};

TEST_F(GfxstreamLibraryTest, UploadIsShownPixelForPixelAndADamagedRectangleUpdatesIt) {
  ConnectWithScratch();
  constexpr uint32_t kWidth = 128, kHeight = 96;
  std::vector<uint32_t> pixels = Pattern(kWidth, kHeight, 3);
  Show3dResource(1, 10, kWidth, kHeight, pixels);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_TRUE(WaitForFrame(0, pixels, kWidth)) << "the upload is not what the display shows";

  // New pixels for a 20x10 rectangle at (30,40), uploaded with the resource's stride and flushed.
  for (uint32_t y = 40; y < 50; ++y) {
    for (uint32_t x = 30; x < 50; ++x) pixels[y * kWidth + x] = 0x00ff00 + x + y;
  }
  ASSERT_TRUE(session().ram->Write(
      last_backing_, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pixels.data()),
                                              pixels.size() * 4)));
  EXPECT_EQ(Transfer3dRaw(true, 0, 10, gpu::Box{30, 40, 0, 20, 10, 1}, kWidth * 4),
            ResponseType::kOkNodata);
  Flush(10, gpu::Rect{30, 40, 20, 10});
  EXPECT_TRUE(WaitForFrame(0, pixels, kWidth)) << "the damaged rectangle did not arrive";
  EXPECT_TRUE(display().Anomalies().empty());
}

// gfxstream copies the bytes from the box's first pixel to its last, whole rows in between.
TEST_F(GfxstreamLibraryTest, TransferFromHostReturnsWhatWasUploaded) {
  ConnectWithScratch();
  constexpr uint32_t kWidth = 16, kHeight = 8;
  ASSERT_EQ(CreateContextRaw(1, kCapsetGfxstreamGles), ResponseType::kOkNodata);
  ASSERT_EQ(Create3dTarget(5, kWidth, kHeight), ResponseType::kOkNodata);
  const std::vector<uint32_t> uploaded = Pattern(kWidth, kHeight, 9);
  AttachPixels(5, uploaded);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(Transfer3dRaw(true, 0, 5, gpu::Box{0, 0, 0, kWidth, kHeight, 1}, kWidth * 4),
            ResponseType::kOkNodata);
  ASSERT_TRUE(session().ram->Fill(last_backing_, kWidth * kHeight * 4, 0));
  ASSERT_EQ(Transfer3dRaw(false, 0, 5, gpu::Box{3, 2, 0, 5, 4, 1}, kWidth * 4),
            ResponseType::kOkNodata);
  std::vector<uint32_t> read_back(size_t{kWidth} * kHeight);
  ASSERT_TRUE(session().ram->Read(
      last_backing_,
      std::span<uint8_t>(reinterpret_cast<uint8_t*>(read_back.data()), read_back.size() * 4)));
  const size_t first = 2 * kWidth + 3, last = 5 * kWidth + 7;
  for (size_t i = 0; i < read_back.size(); ++i) {
    if (i >= first && i <= last) {
      // x8 formats: the padding byte is the renderer's.
      EXPECT_EQ(read_back[i] & 0xffffff, uploaded[i] & 0xffffff) << "texel " << i;
    } else {
      EXPECT_EQ(read_back[i], 0u) << "texel " << i << " outside the box's range was written";
    }
  }
}

TEST_F(GfxstreamLibraryTest, FencedPlaceholderSubmitsAreAnsweredWithTheirFences) {
  ConnectWithScratch();
  CreateGlesContext(1, 0, 0, kCapsetGfxstreamVulkan);
  ASSERT_FALSE(HasFatalFailure());
  for (const bool per_context : {true, false}) {
    gpu::CmdSubmit submit = SubmitHeader(1, kPlaceholderCommand);
    submit.hdr.flags = gpu::kFlagFence | (per_context ? gpu::kFlagInfoRingIdx : 0);
    submit.hdr.fence_id = per_context ? 0x100000007ull : 9;
    CommandBuffers buffers = Queue(submit, sizeof(gpu::CtrlHdr), kPlaceholderCommand.data(),
                                   kPlaceholderCommand.size() * 4);
    session().control_queue->Kick();
    ASSERT_TRUE(session().control_queue->WaitForUsedHead(buffers.head, kCommandTimeout));
    Result<gpu::CtrlHdr> response =
        session().ram->ReadObject<gpu::CtrlHdr>(buffers.response_address);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->type, static_cast<uint32_t>(ResponseType::kOkNodata));
    EXPECT_EQ(response->flags & gpu::kFlagFence, gpu::kFlagFence);
    EXPECT_EQ(response->fence_id, submit.hdr.fence_id);
  }
}

// Class 1 with gfxstream: its two capsets, their struct sizes, and everything else refused.
TEST_F(GfxstreamLibraryTest, Class01CapsetsInAndOutOfRange) {
  ConnectWithScratch();
  ExpectNoGrowth(
      [&] {
        const uint32_t expected[2][2] = {{kCapsetGfxstreamVulkan, 104}, {kCapsetGfxstreamGles, 16}};
        for (uint32_t index : {0u, 1u}) {
          gpu::GetCapsetInfo info{};
          info.hdr = Header(CommandType::kGetCapsetInfo);
          info.capset_index = index;
          RawOutcome outcome = Send(info, sizeof(gpu::RespCapsetInfo));
          ASSERT_EQ(outcome.type(), static_cast<uint32_t>(ResponseType::kOkCapsetInfo));
          gpu::RespCapsetInfo response{};
          std::memcpy(&response, outcome.response.data(), sizeof(response));
          EXPECT_EQ(response.capset_id, expected[index][0]);
          EXPECT_EQ(response.capset_max_size, expected[index][1]);
          gpu::GetCapset capset{};
          capset.hdr = Header(CommandType::kGetCapset);
          capset.capset_id = expected[index][0];
          RawOutcome set = Send(capset, 4096);
          ASSERT_EQ(set.type(), static_cast<uint32_t>(ResponseType::kOkCapset));
          ASSERT_EQ(set.used_length, sizeof(gpu::RespCapset) + expected[index][1]);
        }
        for (uint32_t index : {2u, 16u, 0xffffffffu}) {
          gpu::GetCapsetInfo info{};
          info.hdr = Header(CommandType::kGetCapsetInfo);
          info.capset_index = index;
          ASSERT_EQ(Send(info, sizeof(gpu::RespCapsetInfo)).type(),
                    static_cast<uint32_t>(ResponseType::kErrInvalidParameter));
        }
        for (auto [id, version] : {std::pair{1u, 0u}, {4u, 0u}, {3u, 1u}, {8u, 0xffffffffu}}) {
          gpu::GetCapset capset{};
          capset.hdr = Header(CommandType::kGetCapset);
          capset.capset_id = id;
          capset.capset_version = version;
          RawOutcome outcome = Send(capset, 4096);
          ASSERT_EQ(outcome.type(), static_cast<uint32_t>(ResponseType::kErrInvalidParameter));
          ASSERT_EQ(outcome.used_length, sizeof(gpu::CtrlHdr));
        }
      },
      100, 5);
}

// Class 8 with gfxstream: the 4 MiB bound, sizes that claim more than the request carries, and
// every gfxstream opcode in a stream of just the opcode (gfxstream copies the opcode's whole
// struct out of the stream without looking at its size).
TEST_F(GfxstreamLibraryTest, Class08SubmitBoundsAndStreamsShorterThanTheirCommand) {
  ConnectWithScratch();
  ASSERT_EQ(CreateContextRaw(1, kCapsetGfxstreamVulkan), ResponseType::kOkNodata);
  ASSERT_EQ(CreateContextRaw(2, kCapsetGfxstreamGles), ResponseType::kOkNodata);
  constexpr uint32_t kBound = 4u << 20;
  const uint64_t big = GuestBuffer(sizeof(gpu::CmdSubmit) + kBound + 4);
  const uint64_t big_response = GuestBuffer(sizeof(gpu::CtrlHdr));
  ASSERT_TRUE(session().ram->Write(
      big + sizeof(gpu::CmdSubmit),
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kPlaceholderCommand.data()),
                               kPlaceholderCommand.size() * 4)));
  auto submit_big = [&](uint32_t size, uint32_t carried) {
    gpu::CmdSubmit submit = SubmitHeader(1, {});
    submit.size = size;
    EXPECT_TRUE(session().ram->WriteObject(big, submit));
    Result<uint16_t> head =
        session().control_queue->AddChain({{big, static_cast<uint32_t>(sizeof(submit) + carried)}},
                                          {{big_response, sizeof(gpu::CtrlHdr)}});
    EXPECT_TRUE(head);
    session().control_queue->Kick();
    EXPECT_TRUE(session().control_queue->WaitForUsedHead(head.value_or(0), kCommandTimeout));
    return static_cast<ResponseType>(
        session().ram->ReadObject<gpu::CtrlHdr>(big_response).value_or(gpu::CtrlHdr{}).type);
  };
  // gfxstream's opcodes (its virtio-gpu protocol header): context create/ping, sync exports and
  // imports, Vulkan syncs, QSRI export, resource create, acquire sync, the placeholder.
  const uint32_t opcodes[] = {0x1001, 0x1002, 0x1003, 0x9000, 0x9001, 0xa000,
                              0xa001, 0xa002, 0xa003, 0xa004, 0xf002, 0xdead};
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(submit_big(kBound, kBound), ResponseType::kOkNodata);
        ASSERT_EQ(submit_big(kBound + 4, kBound + 4), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(submit_big(0xffffffff, 64), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(submit_big(4096, 64), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(SubmitWords(77, kPlaceholderCommand), ResponseType::kErrInvalidContextId);
        for (uint32_t context : {1u, 2u}) {
          for (uint32_t opcode : opcodes) {
            const ResponseType type = SubmitWords(context, {opcode});
            ASSERT_TRUE(type == ResponseType::kOkNodata ||
                        type == ResponseType::kErrInvalidParameter)
                << "opcode 0x" << std::hex << opcode << ": 0x" << static_cast<uint32_t>(type);
          }
          // Fewer bytes than an opcode.
          gpu::CmdSubmit two_bytes = SubmitHeader(context, {});
          two_bytes.size = 2;
          const uint8_t half[2] = {0x02, 0xf0};
          ASSERT_EQ(SendType(two_bytes, half), ResponseType::kErrInvalidParameter);
        }
      },
      20, 2, 4096);
}

// Class 12 with gfxstream: the sequence that crashed the daemon (a 512x512 resource, 4 KiB of
// backing, a 1x1 TRANSFER_FROM_HOST_3D) is refused at ATTACH_BACKING, every later use of the
// resource is refused or shows nothing, and the daemon serves on; a backing of the resource's
// size then works.
TEST_F(GfxstreamLibraryTest, Class12ShortBackingIsRefusedNotCrashed) {
  ConnectWithScratch();
  ASSERT_EQ(CreateContextRaw(1, kCapsetGfxstreamGles), ResponseType::kOkNodata);
  const uint64_t short_backing = GuestBuffer(4096);
  const uint64_t whole_backing = GuestBuffer(512 * 512 * 4, 0x40);
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(Create3dRaw(1, kTexture2d, kFormatB8G8R8X8, kBindRenderTarget, 512, 512),
                  ResponseType::kOkNodata);
        ASSERT_EQ(AttachEntries(1, {{short_backing, 4096, 0}}), ResponseType::kErrInvalidParameter);
        // Not even in pieces that add up to less.
        ASSERT_EQ(
            AttachEntries(1, {{short_backing, 4096, 0}, {whole_backing, 512 * 512 * 4 - 4097, 0}}),
            ResponseType::kErrInvalidParameter);
        EXPECT_EQ(Transfer3dRaw(false, 0, 1, gpu::Box{0, 0, 0, 1, 1, 1}), ResponseType::kErrUnspec);
        EXPECT_EQ(Transfer3dRaw(true, 0, 1, gpu::Box{0, 0, 0, 1, 1, 1}), ResponseType::kErrUnspec);
        EXPECT_EQ(TransferRaw(1, gpu::Rect{0, 0, 1, 1}, 0), ResponseType::kErrUnspec);
        EXPECT_EQ(SetScanoutRaw(0, 1, gpu::Rect{0, 0, 512, 512}), ResponseType::kOkNodata);
        EXPECT_EQ(FlushRaw(1, gpu::Rect{0, 0, 512, 512}), ResponseType::kOkNodata);
        EXPECT_EQ(SetScanoutRaw(0, 0, gpu::Rect{}), ResponseType::kOkNodata);
        // The resource's size, in two entries: accepted, and whole transfers work both ways.
        ASSERT_EQ(AttachEntries(1, {{whole_backing, 4096, 0},
                                    {whole_backing + 4096, 512 * 512 * 4 - 4096, 0}}),
                  ResponseType::kOkNodata);
        EXPECT_EQ(Transfer3dRaw(true, 0, 1, gpu::Box{0, 0, 0, 512, 512, 1}, 2048),
                  ResponseType::kOkNodata);
        EXPECT_EQ(Transfer3dRaw(false, 0, 1, gpu::Box{0, 0, 0, 1, 1, 1}), ResponseType::kOkNodata);
        ASSERT_EQ(Unref(1), ResponseType::kOkNodata);
      },
      20, 2, 4096);
}

// Class 12 for each kind of resource gfxstream tells apart: one byte less than what gfxstream
// copies is refused, exactly that much is taken, and whole transfers of it leave the daemon
// serving (whatever the library answers for formats it cannot upload).
TEST_F(GfxstreamLibraryTest, Class12EveryKindOfResourceNeedsTheBytesGfxstreamCopies) {
  ConnectWithScratch();
  ASSERT_EQ(CreateContextRaw(1, kCapsetGfxstreamGles), ResponseType::kOkNodata);
  struct Case {
    const char* name;
    uint32_t target, format, bind, width, height;
    uint32_t bytes;
  };
  const Case cases[] = {
      {"B8G8R8X8 render target", kTexture2d, kFormatB8G8R8X8, kBindRenderTarget, 64, 32,
       64 * 32 * 4},
      {"R16G16B16A16_FLOAT", kTexture2d, 94, kBindSamplerView, 16, 8, 16 * 8 * 8},
      {"B5G6R5", kTexture2d, 7, kBindSamplerView, 10, 3, 10 * 3 * 2},
      {"R8G8B8", kTexture2d, 66, kBindSamplerView, 10, 3, 10 * 3 * 4},
      {"R8 texture", kTexture2d, 64, kBindSamplerView, 10, 3, 10 * 3},
      {"unknown format", kTexture2d, 999, kBindSamplerView, 7, 5, 7 * 5 * 4},
      {"linear R8 buffer", 0, 64, 1u << 22, 4096, 1, 4096},
      {"YV12", kTexture2d, 163, kBindSamplerView, 48, 10, 64 * 10 + 32 * 5 * 2},
      {"NV12", kTexture2d, 166, kBindSamplerView, 64, 16, 64 * 16 + 64 * 8},
  };
  const uint64_t backing = GuestBuffer(64 * 32 * 4, 0x33);
  uint32_t id = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ++id;
    ASSERT_EQ(Create3dRaw(id, c.target, c.format, c.bind, c.width, c.height),
              ResponseType::kOkNodata);
    ASSERT_EQ(AttachEntries(id, {{backing, c.bytes - 1, 0}}), ResponseType::kErrInvalidParameter);
    ASSERT_EQ(AttachEntries(id, {{backing, c.bytes, 0}}), ResponseType::kOkNodata);
    for (const bool to_host : {true, false}) {
      const ResponseType type =
          Transfer3dRaw(to_host, 0, id, gpu::Box{0, 0, 0, c.width, c.height, 1});
      EXPECT_TRUE(type == ResponseType::kOkNodata || type == ResponseType::kErrInvalidParameter)
          << (to_host ? "to host: 0x" : "from host: 0x") << std::hex << static_cast<uint32_t>(type);
    }
    ASSERT_EQ(Unref(id), ResponseType::kOkNodata);
  }
  EXPECT_TRUE(daemon_->IsRunning());
}

// Resource shapes a library may not expect: empty, wider than any texture, formats that are not
// formats, a multisampled cube with levels, a scanout and a cursor without backing. Each gets a
// defined answer and the daemon serves on.
TEST_F(GfxstreamLibraryTest, HostileResourceShapesLeaveTheDaemonServing) {
  ConnectWithScratch();
  ASSERT_EQ(CreateContextRaw(1, kCapsetGfxstreamGles), ResponseType::kOkNodata);
  struct Shape {
    uint32_t target, format, bind, width, height, depth;
  };
  const Shape shapes[] = {
      {kTexture2d, kFormatB8G8R8X8, kBindRenderTarget, 0, 0, 1},
      {kTexture2d, kFormatB8G8R8X8, kBindRenderTarget, 1, 0, 1},
      {kTexture2d, kFormatB8G8R8X8, kBindRenderTarget, 65536, 1, 1},
      {kTexture2d, kFormatB8G8R8X8, kBindRenderTarget, 1, 65536, 1},
      {kTexture2d, kFormatB8G8R8X8, kBindRenderTarget, 8192, 4096, 1},
      {kTexture2d, 0, kBindRenderTarget, 16, 16, 1},
      {kTexture2d, 0xffffffff, 0xffffffff, 16, 16, 1},
      {5 /* PIPE_TEXTURE_CUBE */, kFormatB8G8R8X8, kBindSamplerView, 16, 16, 6},
      {3 /* PIPE_TEXTURE_3D */, kFormatB8G8R8X8, kBindSamplerView, 16, 16, 16},
      {0xffffffff, kFormatB8G8R8X8, 0, 16, 16, 0xffffffff},
  };
  uint32_t id = 200;
  for (const Shape& shape : shapes) {
    ++id;
    SCOPED_TRACE(testing::Message()
                 << "shape " << id - 200 << ": target " << shape.target << " format "
                 << shape.format << " bind 0x" << std::hex << shape.bind << std::dec << " "
                 << shape.width << "x" << shape.height << "x" << shape.depth);
    const ResponseType created = Create3dRaw(id, shape.target, shape.format, shape.bind,
                                             shape.width, shape.height, shape.depth);
    ASSERT_TRUE(IsDefinedResponseType(static_cast<uint32_t>(created)));
    if (created == ResponseType::kOkNodata) {
      EXPECT_TRUE(IsDefinedResponseType(
          static_cast<uint32_t>(SetScanoutRaw(0, id, gpu::Rect{0, 0, 16, 16}))));
      EXPECT_EQ(SetScanoutRaw(0, 0, gpu::Rect{}), ResponseType::kOkNodata);
      EXPECT_EQ(Unref(id), ResponseType::kOkNodata);
    }
  }
  // A 64x64 cursor resource without a backing: the cursor shows nothing, the daemon lives.
  ASSERT_EQ(Create3dRaw(300, kTexture2d, kFormatB8G8R8X8, 1u << 16, 64, 64),
            ResponseType::kOkNodata);
  gpu::UpdateCursor cursor{};
  cursor.hdr = Header(CommandType::kUpdateCursor);
  cursor.resource_id = 300;
  Result<uint64_t> request = session().ram->Allocate(sizeof(cursor), 8);
  ASSERT_TRUE(request && session().ram->WriteObject(*request, cursor));
  Result<uint16_t> head =
      session().cursor_queue->AddChain({{*request, static_cast<uint32_t>(sizeof(cursor))}}, {});
  ASSERT_TRUE(head);
  session().cursor_queue->Kick();
  EXPECT_TRUE(session().cursor_queue->WaitForUsedHead(*head, kCommandTimeout));
  gpu::CtrlHdr info = Header(CommandType::kGetDisplayInfo);
  EXPECT_EQ(static_cast<ResponseType>(Send(info, sizeof(gpu::RespDisplayInfo)).type()),
            ResponseType::kOkDisplayInfo);
  EXPECT_TRUE(daemon_->IsRunning());
}

}  // namespace
}  // namespace vgpu::test
