// GfxstreamBackend against the stand-in library (tests/support/gfxstream_standin), not a real
// gfxstream: init parameters, the capset map, contexts, resources and transfers, fences from the
// stand-in's worker thread and from inside create_fence, and read-back of a rectangle.
#include "renderer/gfxstream/gfxstream_backend.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "backend_fixture.h"

namespace vgpu::renderer::gfxstream {
namespace {

TEST_F(GfxstreamBackendTest, InitPassesFlagsWindowAndCallbacks) {
  GfxstreamOptions options;
  options.use_glx = true;  // gfxstream ignores GLX: never passed on.
  options.window_width = 1024;
  options.window_height = 768;
  Start(options);
  EXPECT_EQ(
      hooks_.InitParam(STREAM_RENDERER_PARAM_RENDERER_FLAGS),
      uint64_t{STREAM_RENDERER_FLAGS_USE_EGL_BIT | STREAM_RENDERER_FLAGS_USE_SURFACELESS_BIT |
               STREAM_RENDERER_FLAGS_USE_GLES_BIT | STREAM_RENDERER_FLAGS_USE_VK_BIT | kBlobFlags});
  EXPECT_EQ(hooks_.InitParam(STREAM_RENDERER_PARAM_WIN0_WIDTH), 1024u);
  EXPECT_EQ(hooks_.InitParam(STREAM_RENDERER_PARAM_WIN0_HEIGHT), 768u);
  EXPECT_NE(hooks_.InitParam(STREAM_RENDERER_PARAM_USER_DATA), 0u);
  EXPECT_NE(hooks_.InitParam(STREAM_RENDERER_PARAM_FENCE_CALLBACK), 0u);
  EXPECT_NE(hooks_.InitParam(STREAM_RENDERER_PARAM_DEBUG_CALLBACK), 0u);
}

TEST_F(GfxstreamBackendTest, VulkanOnlyCapsetLeavesGlesOffAndWithoutEglFlagsAreClear) {
  GfxstreamOptions options;
  options.use_egl = false;
  options.use_surfaceless = false;
  options.capsets = {kCapsetGfxstreamVulkan};
  Start(options);
  EXPECT_EQ(hooks_.InitParam(STREAM_RENDERER_PARAM_RENDERER_FLAGS),
            uint64_t{STREAM_RENDERER_FLAGS_USE_VK_BIT | kBlobFlags});
}

TEST_F(GfxstreamBackendTest, InitFailureIsReportedAndReleasesTheInstance) {
  setenv("GFXSTREAM_STANDIN_FAIL_INIT", "1", 1);
  GfxstreamOptions options;
  options.library_path = test::StandinPath();
  Result<std::unique_ptr<Renderer>> failed = GfxstreamBackend::Create(options);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("stream_renderer_init"), std::string::npos)
      << failed.error().message;
  unsetenv("GFXSTREAM_STANDIN_FAIL_INIT");
  Start();
}

TEST_F(GfxstreamBackendTest, OneRendererPerProcess) {
  Start();
  GfxstreamOptions options;
  options.library_path = test::StandinPath();
  Result<std::unique_ptr<Renderer>> second = GfxstreamBackend::Create(options);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("one renderer per process"), std::string::npos);
}

TEST_F(GfxstreamBackendTest, CapsetOutsideGfxstreamIsRefused) {
  GfxstreamOptions options;
  options.library_path = test::StandinPath();
  options.capsets = {2};
  Result<std::unique_ptr<Renderer>> backend = GfxstreamBackend::Create(options);
  ASSERT_FALSE(backend);
  EXPECT_NE(backend.error().message.find("capset 2"), std::string::npos);
}

// The capset map for each --capset choice: GET_CAPSET_INFO order is the order given, sizes are
// the library's, versions stay 0 (gfxstream never writes max_ver).
struct CapsetCase {
  std::vector<uint32_t> requested;
};
class GfxstreamCapsetTest : public GfxstreamBackendTest,
                            public ::testing::WithParamInterface<CapsetCase> {};

TEST_P(GfxstreamCapsetTest, EnabledCapsetsAreAnsweredInOrder) {
  GfxstreamOptions options;
  options.capsets = GetParam().requested;
  Start(options);
  ASSERT_EQ(backend_->CapsetCount(), GetParam().requested.size());
  for (uint32_t index = 0; index < backend_->CapsetCount(); ++index) {
    Result<CapsetInfo> info = backend_->CapsetInfoAt(index);
    ASSERT_TRUE(info);
    const uint32_t id = GetParam().requested[index];
    EXPECT_EQ(info->id, id);
    EXPECT_EQ(info->max_version, 0u);
    EXPECT_EQ(info->max_size, id == kCapsetGfxstreamVulkan ? 104u : 16u);
    Result<std::vector<uint8_t>> bytes = backend_->Capset(id, 0);
    ASSERT_TRUE(bytes);
    ASSERT_EQ(bytes->size(), info->max_size);
    uint32_t protocol_version = 0;
    std::memcpy(&protocol_version, bytes->data(), 4);
    EXPECT_EQ(protocol_version, 1u);
    EXPECT_FALSE(backend_->Capset(id, 1)) << "version above max_version 0";
  }
  EXPECT_FALSE(backend_->CapsetInfoAt(backend_->CapsetCount()));
  for (uint32_t other : {kCapsetGfxstreamVulkan, kCapsetGfxstreamGles, 9u}) {
    if (std::find(options.capsets.begin(), options.capsets.end(), other) != options.capsets.end()) {
      continue;
    }
    EXPECT_FALSE(backend_->Capset(other, 0)) << "capset " << other << " is not enabled";
  }
}

INSTANTIATE_TEST_SUITE_P(EachCapsetChoice, GfxstreamCapsetTest,
                         ::testing::Values(CapsetCase{{3}}, CapsetCase{{8}}, CapsetCase{{3, 8}},
                                           CapsetCase{{8, 3}}));

TEST_F(GfxstreamBackendTest, CapsetTheLibraryDoesNotAnswerIsDropped) {
  setenv("GFXSTREAM_STANDIN_CAPSETS", "3", 1);  // A build without GLES: capset 8 unknown.
  Start();
  ASSERT_EQ(backend_->CapsetCount(), 1u);
  EXPECT_EQ(backend_->CapsetInfoAt(0)->id, kCapsetGfxstreamVulkan);
  EXPECT_FALSE(backend_->Capset(kCapsetGfxstreamGles, 0));
}

TEST_F(GfxstreamBackendTest, ContextCreateCarriesCapsetAndBoundedName) {
  Start();
  std::string long_name(80, 'n');
  ASSERT_TRUE(
      backend_->CreateContext(ContextParams{ContextId{1}, kCapsetGfxstreamGles, long_name}));
  ASSERT_TRUE(
      backend_->CreateContext(ContextParams{ContextId{2}, 0, std::string_view("ab\0cd", 5)}));
  EXPECT_FALSE(backend_->CreateContext(ContextParams{ContextId{3}, 9, "capset 9 is not enabled"}));
  EXPECT_FALSE(backend_->CreateContext(ContextParams{ContextId{0}, 0, "reserved"}));
  const std::string calls = hooks_.Calls();
  EXPECT_NE(calls.find("context_create 1 name=" + std::string(64, 'n') + " init=8\n"),
            std::string::npos)
      << calls;
  EXPECT_NE(calls.find("context_create 2 name=ab init=0\n"), std::string::npos) << calls;
  EXPECT_EQ(calls.find("context_create 3"), std::string::npos);
}

TEST_F(GfxstreamBackendTest, OversizedBackingAndOutOfBoundsBoxAreRefused) {
  Start();
  CreateTarget(5, 16, 16);
  backend_->DetachBacking(ResourceId{5});
  std::vector<uint8_t> huge(4 * 16 * 16 * 2 + (1 << 20) + 1);
  EXPECT_FALSE(backend_->AttachBacking(ResourceId{5}, Backing(huge)));
  ASSERT_TRUE(backend_->AttachBacking(ResourceId{5}, Backing(backing_)));
  TransferParams transfer{.resource = ResourceId{5}, .box = Box{8, 0, 0, 9, 1, 1}};
  EXPECT_FALSE(backend_->TransferToHost(transfer));
  transfer.box = Box{0, 0xfffffff0u, 0, 1, 0x20, 1};
  EXPECT_FALSE(backend_->TransferFromHost(transfer));
  EXPECT_EQ(hooks_.Calls().find("transfer"), std::string::npos);
}

TEST_F(GfxstreamBackendTest, TransfersMoveOnlyTheBoxBothWays) {
  Start();
  CreateTarget(5, 8, 4);
  for (size_t i = 0; i < backing_.size(); ++i) backing_[i] = 0x1000 + static_cast<uint32_t>(i);
  ASSERT_TRUE(backend_->TransferToHost(
      TransferParams{.resource = ResourceId{5}, .box = {0, 0, 0, 8, 4, 1}}));
  const std::vector<uint32_t> written = backing_;
  std::fill(backing_.begin(), backing_.end(), 0);
  // Rows 1-2, columns 2-4: gfxstream copies from (2,1) to (4,2), the rows' bytes in between too.
  ASSERT_TRUE(backend_->TransferFromHost(
      TransferParams{.resource = ResourceId{5}, .box = {2, 1, 0, 3, 2, 1}}));
  for (size_t i = 0; i < backing_.size(); ++i) {
    const bool in_range = i >= 1 * 8 + 2 && i <= 2 * 8 + 4;
    EXPECT_EQ(backing_[i], in_range ? written[i] : 0u) << "pixel " << i;
  }
}

TEST_F(GfxstreamBackendTest, SubmitFillIsReadBackFromOnlyTheRectangle) {
  Start();
  ASSERT_TRUE(backend_->CreateContext(ContextParams{ContextId{1}, kCapsetGfxstreamGles, "test"}));
  CreateTarget(5, 64, 32);
  ASSERT_TRUE(backend_->AttachResource(ContextId{1}, ResourceId{5}));
  Fill(1, 5, 0, 0, 64, 32, 0x000000ff);  // B8G8R8X8 memory order: blue.
  Fill(1, 5, 8, 4, 16, 8, 0x00ff0000);   // Red.

  std::vector<uint32_t> pixels(24 * 12, 0xdeadbeef);
  Result<void> read = backend_->ReadRect(
      ResourceId{5}, Rect{4, 2, 24, 12},
      std::span(reinterpret_cast<uint8_t*>(pixels.data()), pixels.size() * 4), 24 * 4);
  ASSERT_TRUE(read) << read.error().message;
  for (uint32_t row = 0; row < 12; ++row) {
    for (uint32_t column = 0; column < 24; ++column) {
      const uint32_t x = column + 4, y = row + 2;
      const bool red = x >= 8 && x < 24 && y >= 4 && y < 12;
      EXPECT_EQ(pixels[row * 24 + column] & 0xffffff, red ? 0xff0000u : 0x0000ffu)
          << "at " << x << "," << y;
    }
  }
  // Only the rectangle's rows moved: from (4,2) to (27,13) in a 256-byte-stride layout, into a
  // host buffer (not the guest's backing) that ends where the rectangle ends.
  const StandinHooks::HostRead host_read = hooks_.LastHostRead();
  EXPECT_EQ(host_read.box.x, 4u);
  EXPECT_EQ(host_read.box.y, 2u);
  EXPECT_EQ(host_read.box.w, 24u);
  EXPECT_EQ(host_read.box.h, 12u);
  EXPECT_EQ(host_read.box.d, 1u);
  EXPECT_EQ(host_read.iov_count, 1);
  EXPECT_EQ(host_read.bytes_copied, 11u * 256 + 24 * 4);
  EXPECT_EQ(host_read.iov_bytes, 2u * 256 + 4 * 4 + 11 * 256 + 24 * 4);
  EXPECT_LT(host_read.bytes_copied, 64u * 32 * 4);
  // The guest's backing was not written by the read-back.
  EXPECT_TRUE(std::all_of(backing_.begin(), backing_.end(), [](uint32_t v) { return v == 0; }));
}

TEST_F(GfxstreamBackendTest, ReadRectNeedsABackingAndA32BitFormat) {
  Start();
  CreateTarget(5, 16, 16);
  backend_->DetachBacking(ResourceId{5});
  std::vector<uint8_t> pixels(16 * 16 * 4);
  Result<void> read = backend_->ReadRect(ResourceId{5}, Rect{0, 0, 16, 16}, pixels, 64);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("no backing"), std::string::npos);
  EXPECT_FALSE(backend_->ReadRect(ResourceId{5}, Rect{8, 8, 9, 1}, pixels, 64))
      << "outside the resource";
}

TEST_F(GfxstreamBackendTest, ReadCursorIsTheWholeSmallResource) {
  Start();
  ASSERT_TRUE(backend_->CreateContext(ContextParams{ContextId{1}, 0, ""}));
  CreateTarget(6, 64, 64);
  ASSERT_TRUE(backend_->AttachResource(ContextId{1}, ResourceId{6}));
  Fill(1, 6, 0, 0, 64, 64, 0x11223344);
  Result<CursorImage> cursor = backend_->ReadCursor(ResourceId{6});
  ASSERT_TRUE(cursor) << cursor.error().message;
  EXPECT_TRUE(
      std::all_of(cursor->begin(), cursor->end(), [](uint32_t v) { return v == 0x11223344; }));
}

// Fences: one with nothing pending signals inside create_fence; the others come from the
// stand-in's worker thread. Either way the handler runs only in Poll(), on this thread, in order.
TEST_F(GfxstreamBackendTest, FencesFromInsideCreateFenceAndFromAnotherThreadArriveInOrder) {
  Start();
  ASSERT_TRUE(
      backend_->CreateContext(ContextParams{ContextId{1}, kCapsetGfxstreamVulkan, "fences"}));

  ASSERT_TRUE(backend_->CreateFence(FenceSignal{ContextId{0}, 0, 1, false}));
  EXPECT_EQ(hooks_.SynchronousFences(), 1u);
  EXPECT_TRUE(signalled_.empty()) << "delivered inside CreateFence";
  EXPECT_TRUE(Readable(backend_->PollFd(), 0));
  backend_->Poll();
  ASSERT_EQ(signalled_.size(), 1u);
  EXPECT_EQ(signalled_[0].fence_id, 1u);
  EXPECT_FALSE(signalled_[0].per_context);

  hooks_.HoldFences(true);
  ASSERT_TRUE(backend_->Submit(ContextId{1},
                               Bytes(kPlaceholder)));  // Work pending on ctx 1 ring 0 and globally.
  ASSERT_TRUE(backend_->CreateFence(FenceSignal{ContextId{1}, 0, 0x100000010ull, true}));
  ASSERT_TRUE(backend_->CreateFence(FenceSignal{ContextId{1}, 0, 0x100000011ull, true}));
  ASSERT_TRUE(backend_->CreateFence(FenceSignal{ContextId{0}, 0, 2, false}));
  ASSERT_TRUE(
      backend_->CreateFence(FenceSignal{ContextId{1}, 3, 0x20, true}));  // Ring 3: nothing pending.
  EXPECT_EQ(hooks_.SynchronousFences(), 2u);
  PollUntil(2);
  ASSERT_EQ(signalled_.size(), 2u);
  EXPECT_EQ(signalled_[1].fence_id, 0x20u);
  EXPECT_EQ(signalled_[1].ring_index, 3u);
  EXPECT_EQ(signalled_[1].context, ContextId{1});

  hooks_.HoldFences(false);
  PollUntil(5);
  ASSERT_EQ(signalled_.size(), 5u);
  EXPECT_EQ(hooks_.WorkerFences(), 3u);
  EXPECT_EQ(signalled_[2].fence_id, 0x100000010ull);
  EXPECT_EQ(signalled_[3].fence_id, 0x100000011ull);
  EXPECT_TRUE(signalled_[2].per_context && signalled_[3].per_context);
  EXPECT_EQ(signalled_[2].context, ContextId{1});
  EXPECT_EQ(signalled_[4].fence_id, 2u);
  EXPECT_FALSE(signalled_[4].per_context);
  for (std::thread::id thread : handler_threads_) EXPECT_EQ(thread, std::this_thread::get_id());
}

// gfxstream moves the whole resource through a copy of the backing on every transfer
// (gfxstream_layout.h): a backing one byte short is refused before gfxstream sees it, and one of
// exactly the size gfxstream copies takes whole-resource transfers both ways. The stand-in aborts
// the test process where the real library would overflow its heap.
struct BackingCase {
  const char* name;
  uint32_t target, format, bind, width, height;
  uint64_t bytes;  // What gfxstream copies.
};

class GfxstreamBackingTest : public GfxstreamBackendTest,
                             public ::testing::WithParamInterface<BackingCase> {};

TEST_P(GfxstreamBackingTest, ShortBackingIsRefusedAndAnExactOneTakesWholeTransfers) {
  const BackingCase& c = GetParam();
  Start();
  ResourceParams params{.id = ResourceId{5},
                        .target = c.target,
                        .format = c.format,
                        .bind = c.bind,
                        .width = c.width,
                        .height = c.height,
                        .depth = 1,
                        .array_size = 1};
  ASSERT_TRUE(backend_->CreateResource(params));
  std::vector<uint8_t> backing(c.bytes, 0x5a);
  Result<void> short_one =
      backend_->AttachBacking(ResourceId{5}, GuestBacking({std::span(backing).first(c.bytes - 1)}));
  ASSERT_FALSE(short_one);
  EXPECT_NE(short_one.error().message.find("shorter than the " + std::to_string(c.bytes)),
            std::string::npos)
      << short_one.error().message;
  EXPECT_EQ(hooks_.Calls().find("attach_iov"), std::string::npos) << "reached the library";
  // Two entries, split unevenly: the sum is what counts.
  ASSERT_TRUE(backend_->AttachBacking(
      ResourceId{5}, GuestBacking({std::span(backing).first(3), std::span(backing).subspan(3)})));
  const Box whole{0, 0, 0, c.width, std::max<uint32_t>(c.height, 1), 1};
  EXPECT_TRUE(backend_->TransferToHost(TransferParams{.resource = ResourceId{5}, .box = whole}));
  EXPECT_TRUE(backend_->TransferFromHost(
      TransferParams{.resource = ResourceId{5}, .box = Box{0, 0, 0, 1, 1, 1}}));
}

INSTANTIATE_TEST_SUITE_P(
    EachKindOfResource, GfxstreamBackingTest,
    ::testing::Values(
        // The sequence: a 512x512 render target, 4 KiB of backing.
        BackingCase{"RenderTarget", 2, 2, 1u << 1, 512, 512, 512ull * 512 * 4},
        BackingCase{"HalfFloat", 2, 94, 1u << 3, 16, 8, 16ull * 8 * 8},
        BackingCase{"Rgb565", 2, 7, 1u << 3, 10, 3, 10ull * 3 * 2},
        BackingCase{"Rgb888AsFourBytes", 2, 66, 1u << 3, 10, 3, 10ull * 3 * 4},
        BackingCase{"UnknownFormatAsRgba", 2, 999, 1u << 3, 7, 5, 7ull * 5 * 4},
        BackingCase{"LinearBuffer", 0, 64, 1u << 22, 4096, 1, 4096},
        BackingCase{"Pipe", 0, 64, 1u << 17, 300, 0, 300},
        // YV12: luma rows 32-aligned (48 -> 64), two chroma planes of 32 x 5 (odd 9 rounds up).
        BackingCase{"Yv12", 2, 163, 1u << 3, 48, 9, 64ull * 9 + 32ull * 5 * 2},
        BackingCase{"Nv12OddWidth", 2, 166, 1u << 3, 7, 4, 8ull * 4 + 8ull * 2},
        BackingCase{"P010", 2, 314, 1u << 3, 8, 2, 16ull * 2 + 16ull * 1}),
    [](const ::testing::TestParamInfo<BackingCase>& info) { return info.param.name; });

// gfxstream makes a Vulkan image of every colour buffer without checking it against the device:
// empty sides and sides over the host's limit are refused before it sees them (the stand-in
// aborts on them, as the real library crashes). Pipes are bytes, not images.
TEST_F(GfxstreamBackendTest, EmptyAndOversizedColourBuffersNeverReachTheLibrary) {
  GfxstreamOptions options;
  options.max_image_dimension = 4096;
  Start(options);
  auto create = [&](uint32_t id, uint32_t target, uint32_t bind, uint32_t width, uint32_t height) {
    return backend_->CreateResource(ResourceParams{.id = ResourceId{id},
                                                   .target = target,
                                                   .format = kFormatB8G8R8X8,
                                                   .bind = bind,
                                                   .width = width,
                                                   .height = height,
                                                   .depth = 1,
                                                   .array_size = 1});
  };
  EXPECT_FALSE(create(1, 2, 1u << 1, 0, 16));
  EXPECT_FALSE(create(2, 2, 1u << 1, 16, 0));
  EXPECT_FALSE(create(3, 2, 1u << 1, 4097, 1));
  EXPECT_FALSE(create(4, 2, 1u << 1, 1, 4097));
  EXPECT_EQ(hooks_.Calls().find("resource_create"), std::string::npos) << hooks_.Calls();
  EXPECT_TRUE(create(5, 2, 1u << 1, 4096, 4));
  EXPECT_TRUE(create(6, 0, 1u << 17, 100, 0));  // A pipe: bytes, one row.
  EXPECT_FALSE(create(7, 0, 1u << 17, 0, 1));
}

// gfxstream checks only that a stream holds an opcode, then copies the opcode's whole struct out
// of it: a 4-byte PLACEHOLDER_COMMAND_VK (a 12-byte struct) reads past a stream copied to its
// exact size. The backend's copy has zeros after the stream (a sanitizer build of the stand-in
// sees any read past the copy), and the backend reads a command it checks the same way: a
// 4-byte RESOURCE_CREATE_3D is a shape of zeros, which gfxstream would make an empty image of.
TEST_F(GfxstreamBackendTest, StreamShorterThanItsCommandStructIsReadAsZeros) {
  Start();
  ASSERT_TRUE(
      backend_->CreateContext(ContextParams{ContextId{1}, kCapsetGfxstreamVulkan, "short"}));
  EXPECT_TRUE(backend_->Submit(ContextId{1}, Bytes({0xf002})));
  EXPECT_FALSE(backend_->Submit(ContextId{1}, Bytes({0xa003})));
  const std::string calls = hooks_.Calls();
  EXPECT_NE(calls.find("submit 1 bytes=4"), std::string::npos) << calls;
  EXPECT_EQ(calls.find("submit 1 bytes=4\nsubmit"), std::string::npos) << calls;
}

TEST_F(GfxstreamBackendTest, FenceOnAnOutOfRangeRingIsRefused) {
  Start();
  ASSERT_TRUE(backend_->CreateContext(ContextParams{ContextId{1}, 0, ""}));
  EXPECT_FALSE(backend_->CreateFence(FenceSignal{ContextId{1}, 64, 1, true}));
  EXPECT_EQ(hooks_.Calls().find("fence"), std::string::npos);
}

}  // namespace
}  // namespace vgpu::renderer::gfxstream
