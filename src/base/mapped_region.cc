#include "base/mapped_region.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/checked_math.h"

namespace vgpu {

MappedRegion::~MappedRegion() { Reset(); }

MappedRegion::MappedRegion(MappedRegion&& other) noexcept
    : mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_length_(std::exchange(other.mapping_length_, 0)),
      data_(std::exchange(other.data_, nullptr)),
      length_(std::exchange(other.length_, 0)) {}

MappedRegion& MappedRegion::operator=(MappedRegion&& other) noexcept {
  if (this != &other) {
    Reset();
    mapping_ = std::exchange(other.mapping_, nullptr);
    mapping_length_ = std::exchange(other.mapping_length_, 0);
    data_ = std::exchange(other.data_, nullptr);
    length_ = std::exchange(other.length_, 0);
  }
  return *this;
}

void MappedRegion::Reset() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_length_);
  mapping_ = nullptr;
  mapping_length_ = 0;
  data_ = nullptr;
  length_ = 0;
}

Result<MappedRegion> MappedRegion::MapShared(int fd, uint64_t length, uint64_t file_offset) {
  if (length == 0) return MakeError(ErrorKind::kInvalidArgument, "zero-length mapping");
  struct stat status {};
  if (fstat(fd, &status) != 0) return MakeSystemError("fstat");
  if (!S_ISREG(status.st_mode)) {
    return MakeError(ErrorKind::kInvalidArgument, "memory fd is not a regular file or memfd");
  }
  std::optional<uint64_t> end = CheckedAdd<uint64_t>(file_offset, length);
  if (!end || *end > static_cast<uint64_t>(status.st_size)) {
    return MakeError(ErrorKind::kOutOfRange, "memory region extends past the end of its file");
  }
  const uint64_t page_size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t aligned_offset = file_offset - file_offset % page_size;
  const uint64_t lead = file_offset - aligned_offset;
  std::optional<uint64_t> mapping_length = CheckedAdd<uint64_t>(length, lead);
  if (!mapping_length || *mapping_length > SIZE_MAX) {
    return MakeError(ErrorKind::kOutOfRange, "memory region too large to map");
  }
  void* mapping = mmap(nullptr, static_cast<size_t>(*mapping_length), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_NORESERVE, fd, static_cast<off_t>(aligned_offset));
  if (mapping == MAP_FAILED) return MakeSystemError("mmap");
  // Guest memory does not belong in our core dumps.
  madvise(mapping, static_cast<size_t>(*mapping_length), MADV_DONTDUMP);
  return MappedRegion(mapping, static_cast<size_t>(*mapping_length),
                      static_cast<uint8_t*>(mapping) + lead, length);
}

Result<MappedRegion> MappedRegion::MapAnonymous(uint64_t length) {
  if (length == 0) return MakeError(ErrorKind::kInvalidArgument, "zero-length mapping");
  if (length > SIZE_MAX) return MakeError(ErrorKind::kOutOfRange, "mapping too large");
  void* mapping = mmap(nullptr, static_cast<size_t>(length), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) return MakeSystemError("mmap");
  return MappedRegion(mapping, static_cast<size_t>(length), static_cast<uint8_t*>(mapping), length);
}

}  // namespace vgpu
