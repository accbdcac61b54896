// MappedRegion: an mmap'ed range of a file, or anonymous memory, unmapped on destruction.
//
//   Result<MappedRegion> region = MappedRegion::MapShared(fd, length, file_offset);
//   uint8_t* bytes = region->data();
//   Result<MappedRegion> pixels = MappedRegion::MapAnonymous(length);   // Zero-filled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/result.h"

namespace vgpu {

class MappedRegion {
 public:
  MappedRegion() = default;
  ~MappedRegion();
  MappedRegion(MappedRegion&& other) noexcept;
  MappedRegion& operator=(MappedRegion&& other) noexcept;
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;

  // Maps `length` bytes of `fd` from `file_offset` (any alignment) read-write and shared, without
  // reserving swap. Checks that the file is a regular file at least that long, so that a short
  // file cannot turn a later access into SIGBUS.
  static Result<MappedRegion> MapShared(int fd, uint64_t length, uint64_t file_offset);
  // `length` bytes of private, zero-filled memory of their own (no page is shared with the heap).
  static Result<MappedRegion> MapAnonymous(uint64_t length);

  uint8_t* data() const { return data_; }
  uint64_t size() const { return length_; }

 private:
  MappedRegion(void* mapping, size_t mapping_length, uint8_t* data, uint64_t length)
      : mapping_(mapping), mapping_length_(mapping_length), data_(data), length_(length) {}
  void Reset();

  void* mapping_ = nullptr;  // What mmap returned (page aligned).
  size_t mapping_length_ = 0;
  uint8_t* data_ = nullptr;  // The first byte the caller asked for.
  uint64_t length_ = 0;
};

}  // namespace vgpu
