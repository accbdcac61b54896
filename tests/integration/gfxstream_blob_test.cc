// gfxstream's blobs through the daemon: host memory gfxstream makes (RESOURCE_CREATE_BLOB),
// exported and mapped into the host-visible region through vhost-user SHMEM (ShmemWindow stands
// in for the VMM's BAR), and the address-space-graphics ring that gfxstream's guest driver keeps
// in such a blob (support/gfxstream_standin/asg_ring.h): CONTEXT_CREATE hands it to a reader
// thread, PING wakes it. Against a real gfxstream build when $VGPU_TEST_GFXSTREAM_LIBRARY names
// one (gfxstream_fixture.h), else the stand-in, which aborts wherever the real library would
// crash or read freed memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/gfxstream_fixture.h"
#include "support/gfxstream_standin/asg_ring.h"

namespace vgpu::test {
namespace {

using namespace asg;  // NOLINT(google-build-using-namespace): the ring's layout, throughout.

constexpr uint32_t kContext = 1;
constexpr uint32_t kOpResourceCreate3d = 0xa003;
constexpr uint32_t kTexture2d = 2;
constexpr uint32_t kBindRenderTarget = 1u << 1;
const uint32_t kFormatB8G8R8X8 = static_cast<uint32_t>(gpu::Format::kB8G8R8X8Unorm);

class GfxstreamBlobTest : public GfxstreamOnLibraryUnderTest {
 protected:
  void SetUp() override {
    GfxstreamOnLibraryUnderTest::SetUp();
    ASSERT_FALSE(HasFatalFailure());
    NegotiationOptions options;
    options.shmem = true;
    ConnectWithScratch(options);
    ASSERT_FALSE(HasFatalFailure());
    CreateGlesContext(kContext, 0, 0, kCapsetGfxstreamVulkan);
  }
  ShmemWindow& window() { return *session().shmem; }

  uint32_t Load(uint64_t offset) {
    return __atomic_load_n(reinterpret_cast<uint32_t*>(window().Bytes(offset, 4).data()),
                           __ATOMIC_ACQUIRE);
  }
  void Store(uint64_t offset, uint32_t value) {
    __atomic_store_n(reinterpret_cast<uint32_t*>(window().Bytes(offset, 4).data()), value,
                     __ATOMIC_RELEASE);
  }
  // Memory that gfxstream's reader thread writes: nothing signals it, so it is read until it
  // holds the value or the deadline passes.
  bool WaitForWord(uint64_t offset, uint32_t value) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Load(offset) != value) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  // The line of /proc/self/maps (this process is the VMM) for the page at `offset` of the window.
  std::string MappingOf(uint64_t offset) {
    const auto address = reinterpret_cast<uintptr_t>(window().Bytes(offset, 1).data());
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
      const uintptr_t start = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
      const uintptr_t end = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
      if (address >= start && address < end) return line;
    }
    return "";
  }
  // gfxstream's RESOURCE_CREATE_3D: a width x height B8G8R8X8 render target for blob `blob_id`.
  std::vector<uint32_t> ShapeCommand(uint32_t width, uint32_t height, uint32_t blob_id) {
    return {kOpResourceCreate3d,
            kTexture2d,
            kFormatB8G8R8X8,
            kBindRenderTarget,
            width,
            height,
            1,
            1,
            0,
            0,
            0,
            0,
            blob_id,
            0};
  }
};

TEST_F(GfxstreamBlobTest, RingBlobIsGfxstreamsMemoryAndItsReaderConsumesWhatTheGuestWrites) {
  constexpr uint32_t kRing = 10;
  ASSERT_EQ(CreateHostBlob(kContext, kRing, kRingBlobBytes, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  AttachToContext(kContext, kRing);
  RawOutcome mapped = MapBlob(kRing, 0);
  ASSERT_EQ(static_cast<ResponseType>(mapped.type()), ResponseType::kOkMapInfo);
  gpu::RespMapInfo info;
  std::memcpy(&info, mapped.response.data(), sizeof(info));
  EXPECT_EQ(info.map_info, gpu::kMapCacheCached);
  ASSERT_EQ(window().live_mappings(), 1u);
  // What the VMM mapped is gfxstream's own memory for the ring, not a copy.
  const std::string mapping = MappingOf(0);
  std::printf("the window's first page: %s\n", mapping.c_str());
  EXPECT_NE(mapping.find("gfxstream-ringblob-shmem-10"), std::string::npos) << mapping;

  // CONTEXT_CREATE: gfxstream starts a reader on the ring, which initialises it.
  ASSERT_EQ(SubmitWords(kContext, {kOpContextCreate, kRing}), ResponseType::kOkNodata);
  ASSERT_TRUE(WaitForWord(kHostVersion, 1)) << "host_version " << Load(kHostVersion);

  // The guest's first bytes on a ring (the reader's 4-byte flags), as a type-1 transfer.
  Store(kTransferBuffer, 0);
  const uint32_t transfer[2] = {0, 4};
  std::memcpy(window().Bytes(kToHostBuf, 8).data(), transfer, sizeof(transfer));
  Store(kTransferMode, 1);
  Store(kWritePos, 8);
  ASSERT_EQ(SubmitWords(kContext, {kOpContextPing, kRing}), ResponseType::kOkNodata);
  EXPECT_TRUE(WaitForWord(kReadPos, 8)) << "read_pos " << Load(kReadPos);
  EXPECT_TRUE(WaitForWord(kHostConsumedPos, 4)) << "host_consumed_pos " << Load(kHostConsumedPos);

  // Unmapped and mapped elsewhere: the same memory (gfxstream exports it once; the daemon keeps
  // that fd for later maps).
  ASSERT_EQ(UnmapBlob(kRing), ResponseType::kOkNodata);
  EXPECT_EQ(window().live_mappings(), 0u);
  constexpr uint64_t kElsewhere = 8 << 20;
  ASSERT_EQ(MapBlobType(kRing, kElsewhere), ResponseType::kOkMapInfo);
  EXPECT_EQ(Load(kElsewhere + kHostVersion), 1u);
  EXPECT_EQ(Load(kElsewhere + kReadPos), 8u);

  // UNREF of the mapped ring: unmapped, its reader stopped; the daemon serves on.
  ASSERT_EQ(Unref(kRing), ResponseType::kOkNodata);
  EXPECT_EQ(window().live_mappings(), 0u);
  ASSERT_EQ(CreateHostBlob(kContext, 11, kRingBlobBytes, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  ASSERT_EQ(MapBlobType(11, 0), ResponseType::kOkMapInfo);
  EXPECT_NE(MappingOf(0).find("gfxstream-ringblob-shmem-11"), std::string::npos);
  ASSERT_EQ(Unref(11), ResponseType::kOkNodata);
  EXPECT_TRUE(window().anomalies().empty());
}

TEST_F(GfxstreamBlobTest, BadBlobsAndRingsGetTheirErrorsAndLeakNothing) {
  // One ring, made once: each ring has a reader thread of gfxstream's, and the memory of threads
  // started and stopped is the C library's to cache (the daemon's resident memory rises by up to
  // 20 MB over the first thousand rings, then stays), which would hide a leak per round.
  ASSERT_EQ(CreateHostBlob(kContext, 22, kRingBlobBytes, gpu::kBlobFlagUseMappable),
            ResponseType::kOkNodata);
  AttachToContext(kContext, 22);
  ASSERT_EQ(SubmitWords(kContext, {kOpContextCreate, 22}), ResponseType::kOkNodata);
  uint32_t blob_id = 100;
  ExpectNoGrowth(
      [&] {
        // A blob_id nothing prepared, a context that does not exist.
        EXPECT_EQ(CreateHostBlob(kContext, 20, 64 << 10, gpu::kBlobFlagUseMappable, 777),
                  ResponseType::kErrInvalidParameter);
        EXPECT_EQ(CreateHostBlob(99, 20, 64 << 10, gpu::kBlobFlagUseMappable),
                  ResponseType::kErrInvalidContextId);
        // A ring blob smaller than gfxstream's ring (gfxstream would abort).
        ASSERT_EQ(CreateHostBlob(kContext, 21, 64 << 10, gpu::kBlobFlagUseMappable),
                  ResponseType::kOkNodata);
        AttachToContext(kContext, 21);
        EXPECT_EQ(SubmitWords(kContext, {kOpContextCreate, 21}),
                  ResponseType::kErrInvalidParameter);
        // A ring not attached to the context, a second ring on a blob that is one (gfxstream's
        // reader would outlive the blob).
        ASSERT_EQ(CreateHostBlob(kContext, 24, kRingBlobBytes, gpu::kBlobFlagUseMappable),
                  ResponseType::kOkNodata);
        EXPECT_EQ(SubmitWords(kContext, {kOpContextCreate, 24}),
                  ResponseType::kErrInvalidParameter);
        EXPECT_EQ(SubmitWords(kContext, {kOpContextCreate, 22}),
                  ResponseType::kErrInvalidParameter);
        // Mapped twice, transferred as a resource: refused; mapped again after an unmap: the
        // same memory.
        ASSERT_EQ(MapBlobType(22, 0), ResponseType::kOkMapInfo);
        EXPECT_EQ(MapBlobType(22, 4 << 20), ResponseType::kErrInvalidParameter);
        EXPECT_EQ(Transfer3dRaw(true, kContext, 22, gpu::Box{0, 0, 0, 16, 1, 1}),
                  ResponseType::kErrUnspec);
        ASSERT_EQ(UnmapBlob(22), ResponseType::kOkNodata);
        ASSERT_EQ(MapBlobType(22, 4 << 20), ResponseType::kOkMapInfo);
        ASSERT_EQ(UnmapBlob(22), ResponseType::kOkNodata);
        // Shapes gfxstream would make without a check: empty, over the host's image limit.
        EXPECT_EQ(SubmitWords(kContext, ShapeCommand(0, 64, ++blob_id)),
                  ResponseType::kErrInvalidParameter);
        EXPECT_EQ(SubmitWords(kContext, ShapeCommand(20000, 64, ++blob_id)),
                  ResponseType::kErrInvalidParameter);
        // A blob smaller than its shape.
        ASSERT_EQ(SubmitWords(kContext, ShapeCommand(64, 64, ++blob_id)), ResponseType::kOkNodata);
        EXPECT_EQ(CreateHostBlob(kContext, 23, 4096, 0, blob_id),
                  ResponseType::kErrInvalidParameter);
        for (uint32_t id : {21u, 24u}) ASSERT_EQ(Unref(id), ResponseType::kOkNodata);
        EXPECT_EQ(window().live_mappings(), 0u);
      },
      200, 20);
  ASSERT_EQ(Unref(22), ResponseType::kOkNodata);
  EXPECT_TRUE(window().anomalies().empty());
}

TEST_F(GfxstreamBlobTest, ShapesNoBlobHasUsedAreBoundedPerContext) {
  for (uint32_t blob_id = 1; blob_id <= 1024; ++blob_id) {
    ASSERT_EQ(SubmitWords(kContext, ShapeCommand(16, 16, blob_id)), ResponseType::kOkNodata)
        << blob_id;
  }
  EXPECT_EQ(SubmitWords(kContext, ShapeCommand(16, 16, 1025)), ResponseType::kErrInvalidParameter);
  // Another context has its own; a destroyed context takes its shapes with it.
  CreateGlesContext(2, 0, 0, kCapsetGfxstreamVulkan);
  EXPECT_EQ(SubmitWords(2, ShapeCommand(16, 16, 1)), ResponseType::kOkNodata);
  gpu::CtrlHdr destroy = Header(CommandType::kCtxDestroy);
  destroy.ctx_id = kContext;
  ASSERT_EQ(SendType(destroy), ResponseType::kOkNodata);
  CreateGlesContext(kContext, 0, 0, kCapsetGfxstreamVulkan);
  EXPECT_EQ(SubmitWords(kContext, ShapeCommand(16, 16, 1025)), ResponseType::kOkNodata);
}

TEST_F(GfxstreamBlobTest, GuestBlobsStayWithTheDaemonAndAreShown) {
  // gfxstream would make ring memory for a guest blob and ignore its pages: the daemon keeps
  // guest blobs itself in this mode, and shows them from the guest's pages.
  constexpr uint32_t kWidth = 64, kHeight = 16;
  Result<uint64_t> pages = session().ram->Allocate(kWidth * kHeight * 4, 4096);
  ASSERT_TRUE(pages);
  ASSERT_TRUE(session().ram->Fill(*pages, kWidth * kHeight * 4, 0x5a));
  gpu::ResourceCreateBlob create{};
  create.hdr = Header(CommandType::kResourceCreateBlob);
  create.resource_id = 30;
  create.blob_mem = gpu::kBlobMemGuest;
  create.nr_entries = 1;
  create.size = kWidth * kHeight * 4;
  const gpu::MemEntry entry{*pages, kWidth * kHeight * 4, 0};
  ASSERT_EQ(SendType(create, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&entry),
                                                      sizeof(entry))),
            ResponseType::kOkNodata);
  gpu::SetScanoutBlob scanout{};
  scanout.hdr = Header(CommandType::kSetScanoutBlob);
  scanout.r = {0, 0, kWidth, kHeight};
  scanout.resource_id = 30;
  scanout.width = kWidth;
  scanout.height = kHeight;
  scanout.format = kFormatB8G8R8X8;
  scanout.strides[0] = kWidth * 4;
  ASSERT_EQ(SendType(scanout), ResponseType::kOkNodata);
  ASSERT_EQ(FlushRaw(30, {0, 0, kWidth, kHeight}), ResponseType::kOkNodata);
  EXPECT_TRUE(display().WaitFor(
      [&](const FakeDisplayState& state) {
        if (state.framebuffers.empty() || !state.framebuffers[0]) return false;
        const FakeFramebuffer& shown = *state.framebuffers[0];
        return shown.width == kWidth && shown.height == kHeight &&
               std::all_of(shown.pixels.begin(), shown.pixels.end(),
                           [](uint32_t pixel) { return pixel == 0x5a5a5a5a; });
      },
      std::chrono::seconds(3)))
      << "the guest blob's pixels never reached the display";
}

}  // namespace
}  // namespace vgpu::test
