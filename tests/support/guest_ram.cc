#include "support/guest_ram.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "base/checked_math.h"

namespace vgpu::test {
namespace {

constexpr uint64_t kPageSize = 4096;

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

}  // namespace

Result<std::unique_ptr<GuestRam>> GuestRam::Create(uint64_t size, GuestRamLayout layout) {
  if (size == 0 || size % kPageSize != 0) {
    return MakeError(ErrorKind::kInvalidArgument, "guest RAM size must be a multiple of 4096");
  }
  if (layout == GuestRamLayout::kTwoRegionsWithVgaHole && size <= kVgaHoleEnd) {
    return MakeError(ErrorKind::kInvalidArgument, "guest RAM too small for the VGA layout");
  }
  UniqueFd fd(memfd_create("vgpu-test-guest-ram", MFD_CLOEXEC));
  if (!fd) return MakeSystemError("memfd_create");
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return MakeSystemError("ftruncate");
  void* mapping = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (mapping == MAP_FAILED) return MakeSystemError("mmap guest RAM");
  auto* base = static_cast<uint8_t*>(mapping);
  const uint64_t base_address = reinterpret_cast<uint64_t>(base);

  std::vector<GuestRamRegion> regions;
  if (layout == GuestRamLayout::kSingleRegion) {
    regions.push_back({0, size, base_address, 0});
  } else {
    regions.push_back({0, kVgaHoleStart, base_address, 0});
    regions.push_back({kVgaHoleEnd, size - kVgaHoleEnd, base_address + kVgaHoleEnd, kVgaHoleEnd});
  }
  return std::unique_ptr<GuestRam>(
      new GuestRam(layout, std::move(fd), base, size, std::move(regions)));
}

GuestRam::GuestRam(GuestRamLayout layout, UniqueFd fd, uint8_t* mapping, uint64_t file_size,
                   std::vector<GuestRamRegion> regions)
    : layout_(layout),
      fd_(std::move(fd)),
      mapping_(mapping),
      file_size_(file_size),
      regions_(std::move(regions)) {}

GuestRam::~GuestRam() { munmap(mapping_, file_size_); }

Result<UniqueFd> GuestRam::DuplicateFd() const {
  UniqueFd copy(fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy) return MakeSystemError("dup guest RAM fd");
  return copy;
}

std::vector<vhost_user::MemoryRegionDescription> GuestRam::Descriptions() const {
  std::vector<vhost_user::MemoryRegionDescription> descriptions;
  for (const GuestRamRegion& region : regions_) {
    descriptions.push_back(
        {region.guest_address, region.size, region.user_address, region.file_offset});
  }
  return descriptions;
}

const GuestRamRegion* GuestRam::FindRegion(uint64_t guest_address, uint64_t length) const {
  for (const GuestRamRegion& region : regions_) {
    if (guest_address < region.guest_address) continue;
    if (RangeFits<uint64_t>(guest_address - region.guest_address, length, region.size)) {
      return &region;
    }
  }
  return nullptr;
}

Result<uint8_t*> GuestRam::HostPointer(uint64_t guest_address, uint64_t length) const {
  const GuestRamRegion* region = FindRegion(guest_address, length);
  if (region == nullptr) {
    return MakeError(
        ErrorKind::kOutOfRange,
        "guest range outside RAM: " + std::to_string(guest_address) + "+" + std::to_string(length));
  }
  // Bounds: FindRegion checked that the range lies inside the region, which lies in the mapping.
  return mapping_ + region->file_offset + (guest_address - region->guest_address);
}

Result<uint64_t> GuestRam::UserAddress(uint64_t guest_address, uint64_t length) const {
  const GuestRamRegion* region = FindRegion(guest_address, length);
  if (region == nullptr) return MakeError(ErrorKind::kOutOfRange, "guest range outside RAM");
  return region->user_address + (guest_address - region->guest_address);
}

Result<void> GuestRam::Write(uint64_t guest_address, std::span<const uint8_t> bytes) {
  Result<uint8_t*> destination = HostPointer(guest_address, bytes.size());
  if (!destination) return ErrorOf(destination);
  if (!bytes.empty()) std::memcpy(*destination, bytes.data(), bytes.size());
  return {};
}

Result<void> GuestRam::Read(uint64_t guest_address, std::span<uint8_t> bytes) const {
  Result<uint8_t*> source = HostPointer(guest_address, bytes.size());
  if (!source) return ErrorOf(source);
  // An empty span may have no data pointer, which memcpy must not be given even for 0 bytes.
  if (!bytes.empty()) std::memcpy(bytes.data(), *source, bytes.size());
  return {};
}

Result<void> GuestRam::Fill(uint64_t guest_address, uint64_t length, uint8_t value) {
  Result<uint8_t*> destination = HostPointer(guest_address, length);
  if (!destination) return ErrorOf(destination);
  std::memset(*destination, value, length);
  return {};
}

Result<uint64_t> GuestRam::Allocate(uint64_t size, uint64_t alignment) {
  if (size == 0 || alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return MakeError(ErrorKind::kInvalidArgument, "bad allocation size or alignment");
  }
  for (const GuestRamRegion& region : regions_) {
    const uint64_t region_end = region.guest_address + region.size;
    if (next_free_ >= region_end) continue;
    uint64_t start = AlignUp(std::max(next_free_, region.guest_address), alignment);
    if (start == 0) start = alignment;
    std::optional<uint64_t> end = CheckedAdd<uint64_t>(start, size);
    if (!end || *end > region_end) continue;  // Does not fit here: try the next region.
    next_free_ = *end;
    return start;
  }
  return MakeError(ErrorKind::kResourceExhausted,
                   "guest RAM exhausted allocating " + std::to_string(size) + " bytes");
}

}  // namespace vgpu::test
