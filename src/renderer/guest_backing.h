// GuestBacking: the guest pages behind a resource (RESOURCE_ATTACH_BACKING's entries), as host
// spans in the guest's order, read and written with bounds checks.
//
//   GuestBacking backing(std::move(spans));          // Made by the device model's BackingStore.
//   Result<void> copied = backing.CopyOut(offset, destination);   // Scatter -> contiguous.
//
// A view: whoever made it keeps the guest memory mapped while it is used (the device model's
// BackingStore does, until DETACH_BACKING or UNREF). The bytes are guest-controlled and may change
// under a reader; they are only ever copied, never interpreted in place.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vgpu::renderer {

class GuestBacking {
 public:
  GuestBacking() = default;
  explicit GuestBacking(std::vector<std::span<uint8_t>> spans);

  uint64_t size() const { return size_; }
  bool empty() const { return spans_.empty(); }
  const std::vector<std::span<uint8_t>>& spans() const { return spans_; }
  // The spans as iovecs, the form renderer libraries take.
  std::vector<iovec> Iovecs() const;

  // Copies destination.size() bytes starting `offset` bytes into the backing; fails (copying
  // nothing) if the range is not inside it.
  Result<void> CopyOut(uint64_t offset, std::span<uint8_t> destination) const;
  // Writes source into the backing at `offset`; the same bounds rule.
  Result<void> CopyIn(uint64_t offset, std::span<const uint8_t> source) const;
  // Appends iovecs for `length` bytes starting `offset` bytes in, for sending them where they are
  // (a scanout shown from guest memory). A piece that continues the last iovec in host memory
  // extends it. Fails, appending nothing, if the range is not inside the backing.
  Result<void> AppendIovecs(uint64_t offset, uint64_t length, std::vector<iovec>& iovecs) const;

 private:
  // The span containing byte `offset`, and the offset inside it.
  std::pair<size_t, uint64_t> Locate(uint64_t offset) const;

  std::vector<std::span<uint8_t>> spans_;
  std::vector<uint64_t> span_starts_;  // Cumulative offsets, for binary search.
  uint64_t size_ = 0;
};

}  // namespace vgpu::renderer
