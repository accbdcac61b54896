// GfxstreamBackend's blobs against the stand-in library: host blobs made and exported (once by
// gfxstream, then as duplicates), guest blobs left to the software renderer, and the checks on
// the gfxstream commands that name or prepare blobs.
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <string>

#include "backend_fixture.h"
#include "renderer/gfxstream/gfxstream_commands.h"
#include "virtio_gpu/blob.h"

namespace vgpu::renderer::gfxstream {
namespace {

constexpr uint32_t kContext = 1;
constexpr uint64_t kPage = 4096;

class GfxstreamBlobsTest : public GfxstreamBackendTest {
 protected:
  void SetUp() override {
    GfxstreamBackendTest::SetUp();
    Start();
    ASSERT_TRUE(backend_->CreateContext(ContextParams{ContextId{kContext}, 0, "blobs"}));
  }
  Result<void> HostBlob(uint32_t id, uint64_t size, uint64_t blob_id = 0,
                        uint32_t context = kContext) {
    return backend_->CreateBlob(BlobParams{.id = ResourceId{id},
                                           .context = ContextId{context},
                                           .blob_mem = virtio_gpu::blob::kBlobMemHost3d,
                                           .blob_flags = virtio_gpu::blob::kBlobFlagUseMappable,
                                           .blob_id = blob_id,
                                           .size = size},
                                nullptr);
  }
  Result<void> ContextCreate(uint32_t ring, uint32_t context = kContext) {
    return backend_->Submit(ContextId{context}, Bytes({kGfxstreamOpContextCreate, ring}));
  }
  Result<void> Shape(uint32_t width, uint32_t height, uint32_t blob_id) {
    return backend_->Submit(ContextId{kContext},
                            Bytes({kGfxstreamOpResourceCreate3d, 2, kFormatB8G8R8X8, 1u << 1, width,
                                   height, 1, 1, 0, 0, 0, 0, blob_id, 0}));
  }
};

TEST_F(GfxstreamBlobsTest, HostBlobsOnlyAndTheirMemoryIsExportedOnceAndDuplicated) {
  EXPECT_TRUE(backend_->HasBlobs());
  EXPECT_FALSE(backend_->HoldsGuestBlobs());
  ASSERT_TRUE(HostBlob(10, 4 * kPage));
  Result<ExportedBlob> first = backend_->ExportBlob(ResourceId{10});
  ASSERT_TRUE(first) << first.error().message;
  Result<ExportedBlob> second = backend_->ExportBlob(ResourceId{10});
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(first->size, 4 * kPage);
  EXPECT_EQ(first->offset, 0u);
  EXPECT_EQ(first->map_info, virtio_gpu::blob::kMapCacheCached);
  EXPECT_NE(first->fd.get(), second->fd.get());
  // gfxstream handed its fd over once; both exports are the same memory.
  const std::string calls = hooks_.Calls();
  EXPECT_EQ(calls.find("already given"), std::string::npos) << calls;
  void* a = mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, first->fd.get(), 0);
  void* b = mmap(nullptr, 4 * kPage, PROT_READ, MAP_SHARED, second->fd.get(), 0);
  ASSERT_NE(a, MAP_FAILED);
  ASSERT_NE(b, MAP_FAILED);
  std::memcpy(static_cast<uint8_t*>(a) + kPage, "ring", 4);
  EXPECT_EQ(std::memcmp(static_cast<uint8_t*>(b) + kPage, "ring", 4), 0);
  munmap(a, 4 * kPage);
  munmap(b, 4 * kPage);
  backend_->DestroyResource(ResourceId{10});
  EXPECT_FALSE(backend_->ExportBlob(ResourceId{10}));
}

TEST_F(GfxstreamBlobsTest, BlobsGfxstreamDidNotMakeAreRefused) {
  // A blob_id nothing prepared, an unknown context: gfxstream returns 0 and makes nothing.
  Result<void> unknown_id = HostBlob(11, kPage, 777);
  ASSERT_FALSE(unknown_id);
  EXPECT_EQ(unknown_id.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_FALSE(HostBlob(11, kPage, 0, 9));
  EXPECT_FALSE(backend_->ExportBlob(ResourceId{11}));
  // Guest pages are the software renderer's in this mode.
  EXPECT_FALSE(backend_->CreateBlob(
      BlobParams{.id = ResourceId{12}, .blob_mem = virtio_gpu::blob::kBlobMemGuest, .size = kPage},
      nullptr));
  // A resource that is not a blob has nothing to export.
  CreateTarget(13, 4, 4);
  EXPECT_FALSE(backend_->ExportBlob(ResourceId{13}));
}

TEST_F(GfxstreamBlobsTest, RingNeedsItsSizeAnAttachmentToTheContextAndOnlyOneReader) {
  ASSERT_TRUE(HostBlob(20, kGfxstreamRingBlobMinBytes - kPage));
  ASSERT_TRUE(backend_->AttachResource(ContextId{kContext}, ResourceId{20}));
  EXPECT_FALSE(ContextCreate(20));

  ASSERT_TRUE(HostBlob(21, kGfxstreamRingBlobMinBytes));
  EXPECT_FALSE(ContextCreate(21));  // Not attached to the context.
  ASSERT_TRUE(backend_->AttachResource(ContextId{kContext}, ResourceId{21}));
  ASSERT_TRUE(ContextCreate(21));
  EXPECT_FALSE(ContextCreate(21));  // A second reader on the same ring.
  // Detached from its context, the ring's reader is gone and the blob may be a ring again.
  ASSERT_TRUE(backend_->DetachResource(ContextId{kContext}, ResourceId{21}));
  ASSERT_TRUE(backend_->AttachResource(ContextId{kContext}, ResourceId{21}));
  EXPECT_TRUE(ContextCreate(21));
  // So after its context is destroyed, in another context.
  backend_->DestroyContext(ContextId{kContext});
  ASSERT_TRUE(backend_->CreateContext(ContextParams{ContextId{2}, 0, "second"}));
  ASSERT_TRUE(backend_->AttachResource(ContextId{2}, ResourceId{21}));
  EXPECT_TRUE(ContextCreate(21, 2));
  // A resource id that is no blob of this backend goes to gfxstream, which refuses it.
  EXPECT_FALSE(ContextCreate(99, 2));
}

TEST_F(GfxstreamBlobsTest, RecordedShapeNeedsABlobAsLargeAsItAndIsUsedOnce) {
  EXPECT_FALSE(Shape(0, 16, 5));
  EXPECT_FALSE(Shape(16, 20000, 5));
  ASSERT_TRUE(Shape(64, 64, 5));
  EXPECT_FALSE(HostBlob(30, kPage, 5));  // 64 x 64 x 4 bytes need four pages.
  ASSERT_TRUE(HostBlob(30, 4 * kPage, 5));
  // Used: the same blob id again is a blob nothing prepared.
  EXPECT_FALSE(HostBlob(31, 4 * kPage, 5));
  // Not exportable (a colour buffer, not shared memory).
  EXPECT_FALSE(backend_->ExportBlob(ResourceId{30}));
}

}  // namespace
}  // namespace vgpu::renderer::gfxstream
