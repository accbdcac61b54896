// LayoutOfExportedFd: where a blob's bytes are in the fd virglrenderer exports.
#include "renderer/virgl/exported_memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <optional>
#include <utility>

#include "base/unique_fd.h"
#include "renderer/virgl/virgl_api.h"

namespace vgpu::renderer::virgl {
namespace {

UniqueFd MemoryFile(uint64_t size, std::optional<std::pair<uint64_t, uint64_t>> header = {}) {
  UniqueFd fd(memfd_create("exported", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(ftruncate(fd.get(), static_cast<off_t>(size)), 0);
  if (header) {
    const uint64_t words[2] = {header->first, header->second};
    EXPECT_EQ(pwrite(fd.get(), words, sizeof(words), 0), static_cast<ssize_t>(sizeof(words)));
  }
  return fd;
}

TEST(ExportedMemoryTest, SharedMemoryAndDmabufsStartAtTheirFirstByte) {
  UniqueFd fd = MemoryFile(65536);
  Result<MemoryFdLayout> layout = LayoutOfExportedFd(fd.get(), VIRGL_RENDERER_BLOB_FD_TYPE_SHM);
  ASSERT_TRUE(layout);
  EXPECT_EQ(layout->offset, 0u);
  EXPECT_EQ(layout->size, 65536u);
}

TEST(ExportedMemoryTest, MesasOpaqueMemoryFileStartsAtItsHeadersOffset) {
  // What Debian 12's lavapipe exports for a 64 KiB allocation.
  UniqueFd fd = MemoryFile(69672, std::make_pair(uint64_t{69672}, uint64_t{4096}));
  Result<MemoryFdLayout> layout = LayoutOfExportedFd(fd.get(), VIRGL_RENDERER_BLOB_FD_TYPE_OPAQUE);
  ASSERT_TRUE(layout);
  EXPECT_EQ(layout->offset, 4096u);
  EXPECT_EQ(layout->size, 69672u - 4096u);
}

TEST(ExportedMemoryTest, OpaqueFdsOfAnotherLayoutAreRefused) {
  for (auto header : {std::make_pair(uint64_t{1000}, uint64_t{4096}),       // Not the file's size.
                      std::make_pair(uint64_t{69632}, uint64_t{100}),       // Not page-aligned.
                      std::make_pair(uint64_t{69632}, uint64_t{0}),         // No header room.
                      std::make_pair(uint64_t{69632}, uint64_t{69632})}) {  // Past the end.
    UniqueFd fd = MemoryFile(69632, header);
    Result<MemoryFdLayout> layout =
        LayoutOfExportedFd(fd.get(), VIRGL_RENDERER_BLOB_FD_TYPE_OPAQUE);
    ASSERT_FALSE(layout) << header.first << " " << header.second;
    EXPECT_EQ(layout.error().kind, ErrorKind::kUnsupported);
  }
  UniqueFd empty = MemoryFile(8);
  EXPECT_FALSE(LayoutOfExportedFd(empty.get(), VIRGL_RENDERER_BLOB_FD_TYPE_OPAQUE));
  EXPECT_FALSE(LayoutOfExportedFd(empty.get(), 77));
}

}  // namespace
}  // namespace vgpu::renderer::virgl
