#include "base/mapped_region.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace vgpu {
namespace {

UniqueFd MemfdOfSize(size_t size) {
  UniqueFd fd(memfd_create("mapped-region-test", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(ftruncate(fd.get(), static_cast<off_t>(size)), 0);
  return fd;
}

TEST(MappedRegion, MapsAtAnUnalignedOffset) {
  UniqueFd fd = MemfdOfSize(8192);
  const uint8_t marker = 0x5a;
  ASSERT_EQ(pwrite(fd.get(), &marker, 1, 4097), 1);
  Result<MappedRegion> region = MappedRegion::MapShared(fd.get(), 100, 4097);
  ASSERT_TRUE(region) << region.error().message;
  EXPECT_EQ(region->size(), 100u);
  EXPECT_EQ(region->data()[0], marker);
}

TEST(MappedRegion, RejectsARangePastTheEndOfTheFile) {
  // Mapping past the end would succeed in mmap and then SIGBUS on access.
  UniqueFd fd = MemfdOfSize(4096);
  EXPECT_FALSE(MappedRegion::MapShared(fd.get(), 8192, 0));
  EXPECT_FALSE(MappedRegion::MapShared(fd.get(), 4096, 1));
  EXPECT_FALSE(MappedRegion::MapShared(fd.get(), 1, ~0ull));
}

TEST(MappedRegion, RejectsNonRegularFilesAndZeroLength) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  EXPECT_FALSE(MappedRegion::MapShared(read_end.get(), 4096, 0));
  UniqueFd fd = MemfdOfSize(4096);
  EXPECT_FALSE(MappedRegion::MapShared(fd.get(), 0, 0));
}

TEST(MappedRegion, AnonymousMemoryIsZeroedPageAlignedAndPrivate) {
  Result<MappedRegion> first = MappedRegion::MapAnonymous(3 * 4096 + 5);
  Result<MappedRegion> second = MappedRegion::MapAnonymous(4096);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);

  EXPECT_EQ(first->size(), 3u * 4096 + 5);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first->data()) % 4096, 0u);
  for (uint64_t i = 0; i < first->size(); ++i) ASSERT_EQ(first->data()[i], 0) << i;
  first->data()[first->size() - 1] = 7;  // Writable to its last byte.
  EXPECT_EQ(second->data()[0], 0);
  EXPECT_EQ(MappedRegion::MapAnonymous(0).error().kind, ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace vgpu
