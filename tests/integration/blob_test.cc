// Blob resources through the daemon process (§5.7.6.8): guest blobs shown from guest memory with
// SET_SCANOUT_BLOB, pixel-exact in QEMU's end of the display socket, and every bad blob command
// answered with its error, nothing leaked, the daemon serving on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "integration/hostile_guest_fixture.h"

namespace vgpu::test {
namespace {

constexpr uint32_t kPage = 4096;

class BlobTest : public HostileGuestTest {
 protected:
  // A blob of `pages` guest pages, every other page of what was allocated and listed in reverse
  // order, so that no two neighbouring blob pages are neighbours in guest memory: every row that
  // crosses a page comes from two places.
  struct ScatteredBlob {
    std::vector<gpu::MemEntry> entries;
    uint64_t size = 0;
  };
  ScatteredBlob AllocateScattered(uint32_t pages) {
    ScatteredBlob blob;
    std::vector<uint64_t> addresses;
    for (uint32_t i = 0; i < pages; ++i) {
      Result<uint64_t> page = session().ram->Allocate(kPage, kPage);
      Result<uint64_t> gap = session().ram->Allocate(kPage, kPage);
      EXPECT_TRUE(page && gap);
      addresses.push_back(page.value_or(0));
    }
    std::reverse(addresses.begin(), addresses.end());
    for (uint64_t address : addresses) blob.entries.push_back(gpu::MemEntry{address, kPage, 0});
    blob.size = uint64_t{pages} * kPage;
    return blob;
  }
  // Writes `bytes` at `offset` into the blob, page by page through its entries.
  void WriteBlob(const ScatteredBlob& blob, uint64_t offset, std::span<const uint8_t> bytes) {
    size_t written = 0;
    while (written < bytes.size()) {
      const uint64_t at = offset + written;
      const gpu::MemEntry& entry = blob.entries[at / kPage];
      const size_t piece = std::min<size_t>(bytes.size() - written, kPage - at % kPage);
      ASSERT_TRUE(session().ram->Write(entry.addr + at % kPage, bytes.subspan(written, piece)));
      written += piece;
    }
  }
  // Rows of `pixels` (width wide) into the blob at `offset`, `stride` bytes apart.
  void WriteRows(const ScatteredBlob& blob, uint64_t offset, uint32_t stride, uint32_t width,
                 const std::vector<uint32_t>& pixels) {
    for (size_t row = 0; row < pixels.size() / width; ++row) {
      WriteBlob(blob, offset + row * stride,
                std::span<const uint8_t>(
                    reinterpret_cast<const uint8_t*>(pixels.data() + row * width), width * 4));
    }
  }
  ResponseType CreateBlob(uint32_t id, const ScatteredBlob& blob, uint32_t blob_mem = 1,
                          std::optional<uint64_t> size = std::nullopt,
                          std::optional<uint32_t> nr_entries = std::nullopt) {
    gpu::ResourceCreateBlob create{};
    create.hdr = Header(CommandType::kResourceCreateBlob);
    create.resource_id = id;
    create.blob_mem = blob_mem;
    create.blob_flags = gpu::kBlobFlagUseShareable;
    create.nr_entries = nr_entries.value_or(static_cast<uint32_t>(blob.entries.size()));
    create.size = size.value_or(blob.size);
    return SendType(create,
                    std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(blob.entries.data()),
                                             blob.entries.size() * sizeof(gpu::MemEntry)));
  }
  static gpu::SetScanoutBlob ScanoutBlob(uint32_t id, uint32_t width, uint32_t height,
                                         uint32_t stride, uint32_t offset,
                                         gpu::Format format = gpu::Format::kB8G8R8X8Unorm) {
    gpu::SetScanoutBlob set{};
    set.hdr = Header(CommandType::kSetScanoutBlob);
    set.r = gpu::Rect{0, 0, width, height};
    set.resource_id = id;
    set.width = width;
    set.height = height;
    set.format = static_cast<uint32_t>(format);
    set.strides[0] = stride;
    set.offsets[0] = offset;
    return set;
  }
  ResponseType FlushType(uint32_t id, gpu::Rect rect) { return FlushRaw(id, rect); }
};

TEST_F(BlobTest, GuestBlobIsShownFromGuestMemoryPixelExactly) {
  ConnectWithScratch();
  // 256x64 with 64 bytes of padding per row, starting one page into the blob.
  constexpr uint32_t kWidth = 256, kHeight = 64, kStride = kWidth * 4 + 64, kOffset = kPage;
  const ScatteredBlob blob = AllocateScattered((kOffset + kStride * kHeight) / kPage + 1);
  const std::vector<uint32_t> first = Pattern(kWidth, kHeight, 5);
  WriteRows(blob, kOffset, kStride, kWidth, first);
  ASSERT_EQ(CreateBlob(1, blob), ResponseType::kOkNodata);
  ASSERT_EQ(SendType(ScanoutBlob(1, kWidth, kHeight, kStride, kOffset)), ResponseType::kOkNodata);
  ASSERT_EQ(FlushType(1, gpu::Rect{0, 0, kWidth, kHeight}), ResponseType::kOkNodata);
  EXPECT_TRUE(WaitForFrame(0, first, kWidth));

  // The guest draws into its pages; Linux still sends TRANSFER_TO_HOST_2D for a dumb buffer, which
  // copies nothing; the flush of a part shows that part.
  const std::vector<uint32_t> second = Pattern(kWidth, kHeight, 77);
  WriteRows(blob, kOffset, kStride, kWidth, second);
  EXPECT_EQ(TransferRaw(1, gpu::Rect{0, 0, kWidth, kHeight}, 0), ResponseType::kOkNodata);
  ASSERT_EQ(FlushType(1, gpu::Rect{0, 0, kWidth, kHeight / 2}), ResponseType::kOkNodata);
  std::vector<uint32_t> expected = second;
  std::copy(first.begin() + kWidth * kHeight / 2, first.end(),
            expected.begin() + kWidth * kHeight / 2);
  EXPECT_TRUE(WaitForFrame(0, expected, kWidth));
  EXPECT_EQ(Unref(1), ResponseType::kOkNodata);
}

TEST_F(BlobTest, FullHdBlobInScatteredPagesTakesSeveralUpdatesAndNoCopy) {
  ConnectWithScratch(NegotiationOptions{.memory_size = 128ull << 20});
  constexpr uint32_t kWidth = 1920, kHeight = 1080, kStride = kWidth * 4;
  const ScatteredBlob blob = AllocateScattered(kStride * kHeight / kPage);
  const std::vector<uint32_t> pixels = Pattern(kWidth, kHeight, 9);
  WriteRows(blob, 0, kStride, kWidth, pixels);
  ASSERT_EQ(CreateBlob(1, blob), ResponseType::kOkNodata);
  const size_t updates_before = display().Snapshot().messages.size();
  ASSERT_EQ(SendType(ScanoutBlob(1, kWidth, kHeight, kStride, 0)), ResponseType::kOkNodata);
  ASSERT_EQ(FlushType(1, gpu::Rect{0, 0, kWidth, kHeight}), ResponseType::kOkNodata);
  EXPECT_TRUE(WaitForFrame(0, pixels, kWidth));
  // 2025 pages, no two adjacent: more pieces than one sendmsg takes (rows that meet inside a page
  // join), so the frame went in bands: SCANOUT and at least two UPDATEs.
  EXPECT_GE(display().Count(gpu::display::Request::kUpdate), 2u);
  EXPECT_GE(display().Snapshot().messages.size(), updates_before + 3);
}

TEST_F(BlobTest, BlobInAnotherFormatIsConvertedAndBlobCursorIsShown) {
  ConnectWithScratch();
  constexpr uint32_t kWidth = 64, kHeight = 64;
  const ScatteredBlob blob = AllocateScattered(kWidth * kHeight * 4 / kPage);
  // R8G8B8X8: bytes R, G, B, X in memory; the display gets x8r8g8b8.
  const std::vector<uint32_t> expected = Pattern(kWidth, kHeight, 3);
  std::vector<uint32_t> rgbx(expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const uint32_t p = expected[i];
    rgbx[i] = ((p >> 16) & 0xff) | (p & 0xff00) | ((p & 0xff) << 16);
  }
  WriteRows(blob, 0, kWidth * 4, kWidth, rgbx);
  ASSERT_EQ(CreateBlob(1, blob), ResponseType::kOkNodata);
  ASSERT_EQ(SendType(ScanoutBlob(1, kWidth, kHeight, kWidth * 4, 0, gpu::Format::kR8G8B8X8Unorm)),
            ResponseType::kOkNodata);
  ASSERT_EQ(FlushType(1, gpu::Rect{0, 0, kWidth, kHeight}), ResponseType::kOkNodata);
  EXPECT_TRUE(WaitForFrame(0, expected, kWidth));

  // A 64x64 blob is a cursor too (Linux makes its cursor a guest blob).
  const ScatteredBlob cursor_blob = AllocateScattered(4);
  const std::vector<uint32_t> cursor = Pattern(64, 64, 11);
  WriteRows(cursor_blob, 0, 256, 64, cursor);
  ASSERT_EQ(CreateBlob(2, cursor_blob), ResponseType::kOkNodata);
  gpu::UpdateCursor update{};
  update.hdr = Header(CommandType::kUpdateCursor);
  update.resource_id = 2;
  Result<uint64_t> address = session().ram->Allocate(sizeof(update), 8);
  ASSERT_TRUE(address && session().ram->WriteObject(*address, update));
  Result<uint16_t> head = session().cursor_queue->AddChain({{*address, sizeof(update)}}, {});
  ASSERT_TRUE(head);
  session().cursor_queue->Kick();
  ASSERT_TRUE(session().cursor_queue->WaitForUsedHead(*head, kCommandTimeout));
  EXPECT_TRUE(display().WaitFor(
      [&](const FakeDisplayState& state) {
        return !state.cursors.empty() && state.cursors[0].image.size() == cursor.size() &&
               std::equal(cursor.begin(), cursor.end(), state.cursors[0].image.begin());
      },
      std::chrono::seconds(3)));
}

TEST_F(BlobTest, BadBlobCommandsGetTheirErrorsAndLeakNothing) {
  ConnectWithScratch();
  const ScatteredBlob blob = AllocateScattered(4);
  ExpectNoGrowth(
      [&] {
        // blob_mem 0 and unknown; size 0, not a page multiple, not what the entries hold.
        ASSERT_EQ(CreateBlob(1, blob, 0), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(CreateBlob(1, blob, 9), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(CreateBlob(1, blob, 1, 0), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(CreateBlob(1, blob, 1, blob.size - 100), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(CreateBlob(1, blob, 1, blob.size + kPage), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(CreateBlob(1, blob, 1, ~0ull & ~uint64_t{kPage - 1}),
                  ResponseType::kErrInvalidParameter);
        // More entries claimed than carried, more than any backing may have, none at all.
        ASSERT_EQ(CreateBlob(1, blob, 1, std::nullopt, 5), ResponseType::kErrUnspec);
        ASSERT_EQ(CreateBlob(1, blob, 1, std::nullopt, 0x80000000u),
                  ResponseType::kErrInvalidParameter);
        ASSERT_EQ(CreateBlob(1, ScatteredBlob{.entries = {}, .size = kPage}),
                  ResponseType::kErrInvalidParameter);
        // Entries outside guest RAM.
        ScatteredBlob outside = blob;
        outside.entries[1].addr = ~0ull - 100;
        ASSERT_EQ(CreateBlob(1, outside), ResponseType::kErrInvalidParameter);
        // Host memory without a 3D renderer; id 0.
        ASSERT_EQ(CreateBlob(1, ScatteredBlob{.entries = {}, .size = kPage}, gpu::kBlobMemHost3d),
                  ResponseType::kErrUnspec);
        ASSERT_EQ(CreateBlob(0, blob), ResponseType::kErrInvalidResourceId);

        ASSERT_EQ(CreateBlob(1, blob), ResponseType::kOkNodata);
        ASSERT_EQ(CreateBlob(1, blob), ResponseType::kErrInvalidResourceId);  // In use.
        // A layout outside the blob: stride under a row, the last row past the end, an offset
        // past the end, a format that is none, a rect outside the framebuffer.
        ASSERT_EQ(SendType(ScanoutBlob(1, 64, 64, 64 * 4 - 4, 0)),
                  ResponseType::kErrInvalidParameter);
        ASSERT_EQ(SendType(ScanoutBlob(1, 64, 65, 64 * 4, 0)), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(SendType(ScanoutBlob(1, 64, 64, 64 * 4, 4)), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(SendType(ScanoutBlob(1, 16, 16, 0xffffffffu, 0)),
                  ResponseType::kErrInvalidParameter);
        ASSERT_EQ(SendType(ScanoutBlob(1, 64, 64, 64 * 4, 0xfffff000u)),
                  ResponseType::kErrInvalidParameter);
        ASSERT_EQ(SendType(ScanoutBlob(1, 64, 64, 64 * 4, 0, static_cast<gpu::Format>(5))),
                  ResponseType::kErrInvalidParameter);
        gpu::SetScanoutBlob outside_rect = ScanoutBlob(1, 64, 64, 64 * 4, 0);
        outside_rect.r = gpu::Rect{60, 0, 16, 16};
        ASSERT_EQ(SendType(outside_rect), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(SendType(ScanoutBlob(2, 64, 64, 64 * 4, 0)), ResponseType::kErrInvalidResourceId);
        // A blob is not a 2D resource: no SET_SCANOUT, no second backing, no detach.
        ASSERT_EQ(SetScanoutRaw(0, 1, gpu::Rect{0, 0, 16, 16}), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(AttachEntries(1, {blob.entries[0]}), ResponseType::kErrUnspec);
        gpu::ResourceDetachBacking detach{};
        detach.hdr = Header(CommandType::kResourceDetachBacking);
        detach.resource_id = 1;
        ASSERT_EQ(SendType(detach), ResponseType::kErrUnspec);
        // Mapping: a guest blob is not mappable; unknown blobs; nothing mapped to unmap.
        gpu::ResourceMapBlob map{};
        map.hdr = Header(CommandType::kResourceMapBlob);
        map.resource_id = 1;
        ASSERT_EQ(SendType(map), ResponseType::kErrUnspec);  // No 3D: not a command here.
        gpu::ResourceUnmapBlob unmap{};
        unmap.hdr = Header(CommandType::kResourceUnmapBlob);
        unmap.resource_id = 1;
        ASSERT_EQ(SendType(unmap), ResponseType::kErrUnspec);
        // Shown, then freed while shown: the head goes dark.
        ASSERT_EQ(SendType(ScanoutBlob(1, 64, 64, 64 * 4, 0)), ResponseType::kOkNodata);
        ASSERT_EQ(FlushRaw(1, gpu::Rect{0, 0, 64, 64}), ResponseType::kOkNodata);
        ASSERT_EQ(FlushRaw(1, gpu::Rect{0xfffffff0u, 0, 64, 64}),
                  ResponseType::kErrInvalidParameter);
        ASSERT_EQ(Unref(1), ResponseType::kOkNodata);
        ASSERT_EQ(FlushRaw(1, gpu::Rect{0, 0, 64, 64}), ResponseType::kErrInvalidResourceId);
      },
      200);
}

// In virglrenderer mode a guest blob lives in virglrenderer too (so that contexts can use it);
// it is still shown from the guest's pages.
class VirglBlobTest : public BlobTest {
 protected:
  void SetUp() override { StartVirglDaemonOrSkip(); }
};

TEST_F(VirglBlobTest, GuestBlobIsShownFromGuestMemoryInVirglMode) {
  ConnectWithScratch();
  constexpr uint32_t kWidth = 128, kHeight = 96, kStride = kWidth * 4;
  const ScatteredBlob blob = AllocateScattered(kStride * kHeight / kPage);
  const std::vector<uint32_t> pixels = Pattern(kWidth, kHeight, 21);
  WriteRows(blob, 0, kStride, kWidth, pixels);
  ASSERT_EQ(CreateBlob(1, blob), ResponseType::kOkNodata);
  ASSERT_EQ(CreateContextRaw(1), ResponseType::kOkNodata);
  gpu::CtxResource attach{};
  attach.hdr = Header(CommandType::kCtxAttachResource);
  attach.hdr.ctx_id = 1;
  attach.resource_id = 1;
  EXPECT_EQ(SendType(attach), ResponseType::kOkNodata);
  ASSERT_EQ(SendType(ScanoutBlob(1, kWidth, kHeight, kStride, 0)), ResponseType::kOkNodata);
  ASSERT_EQ(FlushType(1, gpu::Rect{0, 0, kWidth, kHeight}), ResponseType::kOkNodata);
  EXPECT_TRUE(WaitForFrame(0, pixels, kWidth));
  // Bad input is refused as in null mode; nothing leaks from virglrenderer's side either.
  ExpectNoGrowth(
      [&] {
        ASSERT_EQ(CreateBlob(2, blob, 1, blob.size + kPage), ResponseType::kErrInvalidParameter);
        ASSERT_EQ(CreateBlob(2, blob), ResponseType::kOkNodata);
        ASSERT_EQ(SendType(ScanoutBlob(2, kWidth, kHeight + 1, kStride, 0)),
                  ResponseType::kErrInvalidParameter);
        gpu::ResourceMapBlob map{};
        map.hdr = Header(CommandType::kResourceMapBlob);
        map.resource_id = 2;
        ASSERT_EQ(SendType(map), ResponseType::kErrInvalidParameter);  // A guest blob.
        ASSERT_EQ(Unref(2), ResponseType::kOkNodata);
      },
      100);
  EXPECT_EQ(Unref(1), ResponseType::kOkNodata);
}

TEST_F(BlobTest, BlobCommandsNeedTheFeature) {
  // A driver that did not take RESOURCE_BLOB gets ERR_UNSPEC for each blob command.
  NegotiationOptions options;
  options.guest_features = (1ull << 32) | (1ull << gpu::kFeatureEdid);
  ConnectWithScratch(options);
  const ScatteredBlob blob = AllocateScattered(1);
  EXPECT_EQ(CreateBlob(1, blob), ResponseType::kErrUnspec);
  EXPECT_EQ(SendType(ScanoutBlob(1, 16, 16, 64, 0)), ResponseType::kErrUnspec);
}

}  // namespace
}  // namespace vgpu::test
