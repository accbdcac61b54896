// HostImage: the host-side pixels of one 2D resource (RESOURCE_CREATE_2D).
//
//   Result<HostImage> image = HostImage::Create(request.width, request.height, request.format);
//   if (!image) return ResponseType::kErrInvalidParameter;  // Or kErrOutOfMemory, see kind.
//   // TRANSFER_TO_HOST_2D writes rows into image->bytes(); RESOURCE_FLUSH reads image->view().
//
// Rows are packed (stride = width * 4) and the pixels start zeroed, so a guest that scans out a
// resource it never wrote sees black, not stale host memory.
//
// Lending. An image of kLendableImageBytes or more is a mapping of its own, never heap memory, so
// that its pages may be lent to the kernel: an UPDATE spliced into the display socket
// (DisplayChannel::SendUpdateLending) references them until the VMM has read it. Before the
// pixels change while such a loan may be out, MoveToNewPages() gives the image new pages with the
// same content; the lent pages are unmapped and stay, unchanged, with the kernel until it lets
// them go. A page of the image is therefore never another object's memory while it is lent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

#include "base/mapped_region.h"
#include "base/result.h"
#include "renderer/software2d/image_view.h"

namespace vgpu::renderer::software2d {

// The largest image: pixman's strides and offsets are int. The device's host memory limit (256 MiB
// by default) is checked by the caller and is lower.
inline constexpr uint64_t kMaxHostImageBytes = 0x7fffffff;
// From this size on an image is a mapping of its own (lendable, see the file comment). Smaller
// ones come from the heap: they are cheaper to copy than to lend, and many small resources
// would otherwise each cost a mapping.
inline constexpr uint64_t kLendableImageBytes = 64 * 1024;

class HostImage {
 public:
  // Fails with kInvalidArgument for a zero width or height, a format that is not one of the eight
  // virtio-gpu formats, or a size whose bytes exceed kMaxHostImageBytes (computed without
  // overflow); with kResourceExhausted when the allocation fails. All values may come from the
  // guest.
  static Result<HostImage> Create(uint32_t width, uint32_t height, uint32_t format);

  // A moved-from image is empty (0x0, no bytes).
  HostImage(HostImage&& other) noexcept;
  HostImage& operator=(HostImage&& other) noexcept;
  HostImage(const HostImage&) = delete;
  HostImage& operator=(const HostImage&) = delete;

  uint32_t width() const { return width_; }
  uint32_t height() const { return height_; }
  uint32_t format() const { return format_; }
  uint32_t stride() const { return stride_; }
  size_t size_bytes() const { return size_bytes_; }

  std::span<uint8_t> bytes() { return {pixels(), size_bytes_}; }
  std::span<const uint8_t> bytes() const { return {pixels(), size_bytes_}; }
  ImageView view() const;

  // Whether the pixels are a mapping of their own, whose pages may be lent (file comment).
  bool lendable() const { return mapped_.data() != nullptr; }
  // New pages with the same pixels for a lendable image (the old ones are unmapped); nothing for
  // another. Fails with kResourceExhausted when no memory is left (the image is then unchanged).
  Result<void> MoveToNewPages();

 private:
  struct FreeDeleter {
    void operator()(uint8_t* pixels) const { std::free(pixels); }
  };

  HostImage(uint32_t width, uint32_t height, uint32_t format, uint32_t stride, size_t size_bytes,
            std::unique_ptr<uint8_t[], FreeDeleter> heap, MappedRegion mapped);
  uint8_t* pixels() const { return lendable() ? mapped_.data() : heap_.get(); }

  uint32_t width_;
  uint32_t height_;
  uint32_t format_;
  uint32_t stride_;
  size_t size_bytes_;
  // One of the two holds the pixels.
  std::unique_ptr<uint8_t[], FreeDeleter> heap_;
  MappedRegion mapped_;
};

}  // namespace vgpu::renderer::software2d
