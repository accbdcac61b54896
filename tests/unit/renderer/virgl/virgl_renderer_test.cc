// VirglRenderer on real virglrenderer: creation, capsets, contexts, resources, backing, submit.
#include "renderer/virgl/virgl_renderer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "renderer/virgl/virgl_api.h"
#include "virgl_test_environment.h"

namespace vgpu::renderer::virgl {
namespace {

// virgl formats (virgl_hw.h); the first is virtio-gpu's B8G8R8X8_UNORM as well.
constexpr uint32_t kFormatB8G8R8X8 = 2;
// Encoding of a virgl command header dword (virgl_protocol.h VIRGL_CMD0).
constexpr uint32_t CommandHeader(uint32_t command, uint32_t object, uint32_t length) {
  return command | (object << 8) | (length << 16);
}
// enum virgl_context_cmd values (virgl_protocol.h).
constexpr uint32_t kCommandNop = 0;
constexpr uint32_t kCommandSetSubContext = 28;
constexpr uint32_t kCommandCreateSubContext = 29;
constexpr uint32_t kCommandDestroySubContext = 30;

std::span<const uint8_t> AsBytes(const std::vector<uint32_t>& dwords) {
  return {reinterpret_cast<const uint8_t*>(dwords.data()), dwords.size() * sizeof(uint32_t)};
}

TEST(VirglRendererOptions, RejectsEglTogetherWithGlx) {
  Result<std::unique_ptr<VirglRenderer>> renderer =
      VirglRenderer::Create(VirglOptions{.use_egl = true, .use_glx = true});

  ASSERT_FALSE(renderer);
  EXPECT_EQ(renderer.error().kind, ErrorKind::kInvalidArgument);
}

TEST(VirglRendererOptions, RejectsSurfacelessWithoutEgl) {
  Result<std::unique_ptr<VirglRenderer>> renderer = VirglRenderer::Create(
      VirglOptions{.use_egl = false, .use_glx = true, .use_surfaceless = true});

  ASSERT_FALSE(renderer);
  EXPECT_EQ(renderer.error().kind, ErrorKind::kInvalidArgument);
}

TEST(VirglRendererOptions, RejectsCapsetsVirglDoesNotProvide) {
  Result<std::unique_ptr<VirglRenderer>> renderer =
      VirglRenderer::Create(VirglOptions{.use_egl = true, .capsets = {kCapsetVirgl, 3}});

  ASSERT_FALSE(renderer);
  EXPECT_EQ(renderer.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(renderer.error().message.find("capset 3"), std::string::npos);
}

class VirglRendererTest : public VirglTest {};

TEST_F(VirglRendererTest, SecondRendererInOneProcessIsRefused) {
  Result<std::unique_ptr<VirglRenderer>> second =
      VirglRenderer::Create(VirglOptions{.use_egl = true, .use_surfaceless = true});

  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("one renderer per process"), std::string::npos);
}

TEST_F(VirglRendererTest, OffersBothVirglCapsetsWithTheirSizes) {
  ASSERT_EQ(Renderer().CapsetCount(), 2u);

  Result<CapsetInfo> virgl = Renderer().CapsetInfoAt(0);
  Result<CapsetInfo> virgl2 = Renderer().CapsetInfoAt(1);

  ASSERT_TRUE(virgl) << virgl.error().message;
  ASSERT_TRUE(virgl2) << virgl2.error().message;
  EXPECT_EQ(virgl->id, kCapsetVirgl);
  EXPECT_EQ(virgl->max_version, 1u);
  EXPECT_EQ(virgl->max_size, 308u);
  EXPECT_EQ(virgl2->id, kCapsetVirgl2);
  EXPECT_EQ(virgl2->max_version, 2u);
  EXPECT_EQ(virgl2->max_size, 1376u);
}

TEST_F(VirglRendererTest, CapsetIndexPastTheEndIsAnError) {
  Result<CapsetInfo> info = Renderer().CapsetInfoAt(2);

  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().kind, ErrorKind::kOutOfRange);
}

TEST_F(VirglRendererTest, CapsetBytesHaveTheReportedSizeAndVersion) {
  Result<std::vector<uint8_t>> virgl = Renderer().Capset(kCapsetVirgl, 1);
  Result<std::vector<uint8_t>> virgl2 = Renderer().Capset(kCapsetVirgl2, 2);

  ASSERT_TRUE(virgl) << virgl.error().message;
  ASSERT_TRUE(virgl2) << virgl2.error().message;
  ASSERT_EQ(virgl->size(), 308u);
  ASSERT_EQ(virgl2->size(), 1376u);
  // Both start with union virgl_caps' max_version.
  uint32_t virgl_version = 0;
  uint32_t virgl2_version = 0;
  std::memcpy(&virgl_version, virgl->data(), sizeof(virgl_version));
  std::memcpy(&virgl2_version, virgl2->data(), sizeof(virgl2_version));
  EXPECT_EQ(virgl_version, 1u);
  EXPECT_EQ(virgl2_version, 2u);
}

TEST_F(VirglRendererTest, CapsetThatIsNotEnabledIsAnError) {
  EXPECT_FALSE(Renderer().Capset(4, 0));
  EXPECT_FALSE(Renderer().Capset(0, 0));
}

TEST_F(VirglRendererTest, CapsetVersionAboveTheMaximumIsAnError) {
  Result<std::vector<uint8_t>> bytes = Renderer().Capset(kCapsetVirgl, 2);

  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().kind, ErrorKind::kInvalidArgument);
}

TEST_F(VirglRendererTest, CreatesAndDestroysContexts) {
  const ContextId legacy = NextContextId();
  const ContextId virgl2 = NextContextId();

  ASSERT_TRUE(Renderer().CreateContext(ContextParams{legacy, 0, "legacy"}));
  ASSERT_TRUE(Renderer().CreateContext(ContextParams{virgl2, kCapsetVirgl2, "virgl2"}));

  Renderer().DestroyContext(legacy);
  Renderer().DestroyContext(virgl2);
}

TEST_F(VirglRendererTest, ContextCapsetMustBeEnabled) {
  Result<void> created = Renderer().CreateContext(ContextParams{NextContextId(), 4, "venus"});

  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().kind, ErrorKind::kInvalidArgument);
}

TEST_F(VirglRendererTest, LongUnterminatedDebugNameIsBounded) {
  const std::string name(1000, 'n');  // Guest-controlled, no NUL anywhere.
  const ContextId context = NextContextId();

  EXPECT_TRUE(Renderer().CreateContext(ContextParams{context, 0, name}));

  Renderer().DestroyContext(context);
}

TEST_F(VirglRendererTest, ResourcesAttachToAndDetachFromAContext) {
  const ContextId context = NextContextId();
  const ResourceId resource = NextResourceId();
  ASSERT_TRUE(Renderer().CreateContext(ContextParams{context, 0, "attach"}));
  ASSERT_TRUE(CreateTarget(resource, 16, 16));

  EXPECT_TRUE(Renderer().AttachResource(context, resource));
  EXPECT_TRUE(Renderer().DetachResource(context, resource));

  Renderer().DestroyResource(resource);
  Renderer().DestroyContext(context);
}

TEST_F(VirglRendererTest, Y0TopTargetIsReportedSo) {
  const ResourceId resource = NextResourceId();
  ASSERT_TRUE(CreateTarget(resource, 40, 30, kResourceFlagY0Top));

  Result<ResourceInfo> info = Renderer().Info(resource);

  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->id, resource);
  EXPECT_EQ(info->virgl_format, kFormatB8G8R8X8);
  EXPECT_EQ(info->width, 40u);
  EXPECT_EQ(info->height, 30u);
  EXPECT_TRUE(info->y_0_top());
  EXPECT_NE(info->texture_id, 0u);
  Renderer().DestroyResource(resource);
}

TEST_F(VirglRendererTest, ResourceArgumentsVirglRejectsAreAnError) {
  Result<void> bad_target = Renderer().CreateResource(ResourceParams{
      .id = NextResourceId(), .target = 99, .format = kFormatB8G8R8X8, .width = 8, .height = 8});
  Result<void> bad_format = Renderer().CreateResource(ResourceParams{.id = NextResourceId(),
                                                                     .target = kPipeTexture2d,
                                                                     .format = 0xffff,
                                                                     .bind = kBindRenderTarget,
                                                                     .width = 8,
                                                                     .height = 8,
                                                                     .depth = 1,
                                                                     .array_size = 1});

  EXPECT_FALSE(bad_target);
  EXPECT_FALSE(bad_format);
}

TEST_F(VirglRendererTest, DestroyWithBackingAttachedFreesTheBacking) {
  const ResourceId resource = NextResourceId();
  std::vector<uint8_t> memory(16 * 16 * 4);
  ASSERT_TRUE(CreateTarget(resource, 16, 16));
  const size_t live_before = Renderer().LiveBackingCount();
  ASSERT_TRUE(Renderer().AttachBacking(
      resource, GuestBacking({std::span(memory).first(128), std::span(memory).subspan(128)})));
  ASSERT_EQ(Renderer().LiveBackingCount(), live_before + 1);

  Renderer().DestroyResource(resource);

  EXPECT_EQ(Renderer().LiveBackingCount(), live_before);
}

TEST_F(VirglRendererTest, DetachBackingFreesItAndAnotherCanBeAttached) {
  const ResourceId resource = NextResourceId();
  std::vector<uint8_t> memory(16 * 16 * 4);
  ASSERT_TRUE(CreateTarget(resource, 16, 16));
  const size_t live_before = Renderer().LiveBackingCount();
  ASSERT_TRUE(Renderer().AttachBacking(resource, GuestBacking({std::span(memory)})));

  Renderer().DetachBacking(resource);
  EXPECT_EQ(Renderer().LiveBackingCount(), live_before);
  Renderer().DetachBacking(resource);  // Nothing attached: nothing to do.
  EXPECT_EQ(Renderer().LiveBackingCount(), live_before);
  EXPECT_TRUE(Renderer().AttachBacking(resource, GuestBacking({std::span(memory)})));

  Renderer().DestroyResource(resource);
  EXPECT_EQ(Renderer().LiveBackingCount(), live_before);
}

TEST_F(VirglRendererTest, EmptyBackingIsRejected) {
  const ResourceId resource = NextResourceId();
  ASSERT_TRUE(CreateTarget(resource, 16, 16));

  EXPECT_FALSE(Renderer().AttachBacking(resource, GuestBacking()));

  Renderer().DestroyResource(resource);
}

// virglrenderer checks transfers itself: without a backing, past the resource, past the backing.
TEST_F(VirglRendererTest, TransferWithoutBackingOrBeyondItOrTheResourceIsAnError) {
  const ResourceId resource = NextResourceId();
  std::vector<uint8_t> memory(16 * 16 * 4);
  ASSERT_TRUE(CreateTarget(resource, 16, 16));

  Result<void> without_backing = Renderer().TransferToHost(
      TransferParams{.resource = resource, .box = Box{0, 0, 0, 16, 16, 1}});
  ASSERT_TRUE(Renderer().AttachBacking(resource, GuestBacking({std::span(memory)})));
  Result<void> past_resource = Renderer().TransferToHost(
      TransferParams{.resource = resource, .stride = 64, .box = Box{8, 0, 0, 16, 16, 1}});
  Result<void> past_backing = Renderer().TransferToHost(TransferParams{
      .resource = resource, .stride = 64, .box = Box{0, 0, 0, 16, 16, 1}, .offset = memory.size()});
  Result<void> inside = Renderer().TransferToHost(
      TransferParams{.resource = resource, .stride = 64, .box = Box{0, 0, 0, 16, 16, 1}});

  EXPECT_FALSE(without_backing);
  EXPECT_FALSE(past_resource);
  EXPECT_FALSE(past_backing);
  EXPECT_TRUE(inside) << inside.error().message;
  Renderer().DestroyResource(resource);
}

class VirglSubmitTest : public VirglTest {
 protected:
  void SetUp() override {
    VirglTest::SetUp();
    if (IsSkipped()) return;
    context_ = NextContextId();
    ASSERT_TRUE(Renderer().CreateContext(ContextParams{context_, kCapsetVirgl2, "submit"}));
  }
  void TearDown() override {
    if (context_.value() != 0) Renderer().DestroyContext(context_);
    VirglTest::TearDown();
  }

  ContextId context_;
};

TEST_F(VirglSubmitTest, EmptyStreamIsANoOp) { EXPECT_TRUE(Renderer().Submit(context_, {})); }

TEST_F(VirglSubmitTest, NopCommandIsAccepted) {
  const std::vector<uint32_t> stream = {CommandHeader(kCommandNop, 0, 0)};

  Result<void> submitted = Renderer().Submit(context_, AsBytes(stream));

  EXPECT_TRUE(submitted) << submitted.error().message;
}

TEST_F(VirglSubmitTest, SubContextCommandsAreAccepted) {
  const std::vector<uint32_t> stream = {
      CommandHeader(kCommandCreateSubContext, 0, 1),  1,  //
      CommandHeader(kCommandSetSubContext, 0, 1),     1,  //
      CommandHeader(kCommandSetSubContext, 0, 1),     0,  //
      CommandHeader(kCommandDestroySubContext, 0, 1), 1,
  };

  Result<void> submitted = Renderer().Submit(context_, AsBytes(stream));

  EXPECT_TRUE(submitted) << submitted.error().message;
}

TEST_F(VirglSubmitTest, StreamThatIsNotWholeDwordsIsRejected) {
  const std::vector<uint8_t> stream(6, 0);

  Result<void> submitted = Renderer().Submit(context_, stream);

  ASSERT_FALSE(submitted);
  EXPECT_EQ(submitted.error().kind, ErrorKind::kInvalidArgument);
}

TEST_F(VirglSubmitTest, GarbageIsHarmless) {
  // Lengths past the end, unknown commands, object creation with nonsense handles.
  const std::vector<uint32_t> stream = {
      CommandHeader(0xfe, 0, 3),
      1,
      2,
      3,  // Unknown command.
      CommandHeader(1, 0x55, 2),
      7,
      8,  // CREATE_OBJECT of an unknown object type.
      0xffffffffu,
      0xdeadbeefu,
      0x12345678u,
      CommandHeader(2, 1, 0xffff),  // Length far past the end of the stream.
  };
  const std::vector<uint8_t> filler_bytes(4 * 1024, 0xa5);

  Result<void> garbage = Renderer().Submit(context_, AsBytes(stream));
  Result<void> filler = Renderer().Submit(context_, filler_bytes);
  Result<void> nop_after = Renderer().Submit(context_, AsBytes({CommandHeader(kCommandNop, 0, 0)}));

  // An error would do as well as success (harmless is what matters); virglrenderer 0.10.4
  // rejects both with EINVAL, and the context stays usable.
  EXPECT_FALSE(garbage);
  EXPECT_FALSE(filler);
  EXPECT_TRUE(nop_after);
  // The renderer still works for everyone else.
  const ContextId other = NextContextId();
  EXPECT_TRUE(Renderer().CreateContext(ContextParams{other, 0, "after-garbage"}));
  Renderer().DestroyContext(other);
}

}  // namespace
}  // namespace vgpu::renderer::virgl
