// In-process harness for the device model: guest memory in a memfd, requests written into it the
// way the Linux driver lays them out, and descriptor chains pointing at them. Each chain goes the
// way the device sends it (decoded once, its writable part admitted to an InFlightChains whose
// used ring here records every return), so tests see exactly what was written and returned.
//
//   uint16_t head = Submit(Chain(&request, sizeof(request)));
//   EXPECT_EQ(ring_.Returns(head), 1u);          // Returned exactly once.
//   CtrlHdr response = Run(request);              // Submit, expect an answer at once, read it.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "base/mapped_region.h"
#include "gpu/command_decoder.h"
#include "gpu/command_dispatcher.h"
#include "gpu/protocol.h"
#include "gpu/reply.h"
#include "virtio/descriptor_chain.h"
#include "virtio/guest_memory.h"
#include "virtio/pending_chain.h"

namespace vgpu::gpu::testing {

inline constexpr uint8_t kCanary = 0xAA;

// A used ring that records what goes back to the driver: the last kHistory returns, in a fixed
// buffer (so that heap-counting tests see no growth of their own).
class RecordingUsedRing final : public virtio::UsedRing {
 public:
  static constexpr size_t kHistory = 256;

  void PushUsed(uint16_t head, uint32_t length) override {
    history_[total_ % kHistory] = {head, length};
    ++total_;
  }
  void NotifyIfNeeded() override { ++notifications; }

  // The recorded returns, oldest first.
  std::vector<std::pair<uint16_t, uint32_t>> Returned() const {
    std::vector<std::pair<uint16_t, uint32_t>> returns;
    const size_t first = total_ > kHistory ? total_ - kHistory : 0;
    for (size_t i = first; i < total_; ++i) returns.push_back(history_[i % kHistory]);
    return returns;
  }
  size_t Returns(uint16_t head) const {
    size_t count = 0;
    const size_t first = total_ > kHistory ? total_ - kHistory : 0;
    for (size_t i = first; i < total_; ++i) count += history_[i % kHistory].first == head ? 1 : 0;
    return count;
  }
  std::optional<uint32_t> UsedLength(uint16_t head) const {
    const size_t first = total_ > kHistory ? total_ - kHistory : 0;
    for (size_t i = total_; i > first; --i) {
      if (history_[(i - 1) % kHistory].first == head) return history_[(i - 1) % kHistory].second;
    }
    return std::nullopt;
  }
  // Heads in the order they went back.
  std::vector<uint16_t> Order() const {
    std::vector<uint16_t> heads;
    for (const auto& [head, length] : Returned()) heads.push_back(head);
    return heads;
  }
  size_t total() const { return total_; }

  int notifications = 0;

 private:
  std::array<std::pair<uint16_t, uint32_t>, kHistory> history_{};
  size_t total_ = 0;
};

class CommandFixture : public ::testing::Test {
 protected:
  static constexpr uint64_t kMemorySize = 64ull << 20;
  static constexpr uint64_t kRequestArea = 0x1000;
  static constexpr uint64_t kResponseArea = 0x100000;
  static constexpr uint64_t kDataArea = 0x200000;  // Backing pages for resources.

  CommandFixture() {
    UniqueFd fd(memfd_create("gpu-test", MFD_CLOEXEC));
    EXPECT_EQ(ftruncate(fd.get(), kMemorySize), 0);
    virtio::GuestMemoryRegion region;
    region.guest_address = 0;
    region.size = kMemorySize;
    region.user_address = 0x7f0000000000ull;
    region.mapping =
        std::make_shared<const MappedRegion>(*MappedRegion::MapShared(fd.get(), kMemorySize, 0));
    memory_ = *virtio::GuestMemory::Create({region});
    in_flight_.Start(&ring_, true);
  }
  ~CommandFixture() override {
    // The model holds handles into in_flight_: it goes first.
    model_.reset();
  }

  uint8_t* Host(uint64_t address, uint64_t length) {
    return memory_->Translate(virtio::GuestAddress{address}, length)->data();
  }

  // A chain whose readable part is `request` (+ `extra` bytes after it) and whose writable part is
  // `response_size` bytes at `response_address`, pre-filled with the canary. Each chain gets a
  // head of its own.
  virtio::DescriptorChain Chain(const void* request, size_t request_size,
                                size_t response_size = 4096, const void* extra = nullptr,
                                size_t extra_size = 0, uint64_t response_address = kResponseArea) {
    virtio::DescriptorChain chain;
    chain.head_index = next_head_++;
    chain.memory = &memory_;
    uint8_t* request_bytes = Host(kRequestArea, request_size + extra_size);
    std::memcpy(request_bytes, request, request_size);
    if (extra_size > 0) std::memcpy(request_bytes + request_size, extra, extra_size);
    chain.readable.emplace_back(request_bytes, request_size + extra_size);
    chain.readable_length = request_size + extra_size;
    if (response_size > 0) {
      uint8_t* response = Host(response_address, response_size);
      std::memset(response, kCanary, response_size);
      chain.writable.emplace_back(response, response_size);
      chain.writable_length = response_size;
    }
    return chain;
  }

  // What the device does with a popped chain: decode once, admit, dispatch. Returns its head.
  uint16_t Submit(virtio::DescriptorChain chain) {
    DecodedCommand decoded = DecodeControl(chain, model_->decode_policy());
    const CtrlHdr header = decoded.header;
    const uint16_t head = chain.head_index;
    Reply reply(in_flight_.Admit(head, std::move(chain.writable), chain.writable_length), header);
    model_->Dispatch(std::move(decoded), std::move(reply));
    return head;
  }
  bool Returned(uint16_t head) const { return ring_.Returns(head) > 0; }
  void RunCursor(virtio::DescriptorChain chain) { model_->DispatchCursor(DecodeCursor(chain)); }

  CtrlHdr Header(CommandType type, uint32_t flags = 0, uint64_t fence = 0) {
    CtrlHdr header{};
    header.type = static_cast<uint32_t>(type);
    header.flags = flags;
    header.fence_id = fence;
    return header;
  }

  // Runs a command that is answered at once; returns the response header (and used length).
  template <class Request>
  CtrlHdr Run(const Request& request, uint32_t* used = nullptr, const void* extra = nullptr,
              size_t extra_size = 0) {
    const uint16_t head = Submit(Chain(&request, sizeof(request), 4096, extra, extra_size));
    EXPECT_EQ(ring_.Returns(head), 1u) << "command not answered at once";
    if (used != nullptr) *used = ring_.UsedLength(head).value_or(0);
    CtrlHdr response{};
    std::memcpy(&response, Host(kResponseArea, sizeof(response)), sizeof(response));
    return response;
  }
  ResponseType RunType(const auto& request) { return static_cast<ResponseType>(Run(request).type); }

  // RESOURCE_CREATE_3D of a width x height 2D texture (PIPE_TEXTURE_2D) bound as a render target.
  ResponseType Create3dTexture(uint32_t id, uint32_t format, uint32_t width, uint32_t height) {
    ResourceCreate3d request{};
    request.hdr = Header(CommandType::kResourceCreate3d);
    request.resource_id = id;
    request.target = 2;  // PIPE_TEXTURE_2D.
    request.format = format;
    request.bind = 2;  // VIRGL_BIND_RENDER_TARGET.
    request.width = width;
    request.height = height;
    request.depth = 1;
    request.array_size = 1;
    return RunType(request);
  }
  ResponseType Create(uint32_t id, uint32_t width, uint32_t height,
                      Format format = Format::kB8G8R8X8Unorm) {
    ResourceCreate2d request{};
    request.hdr = Header(CommandType::kResourceCreate2d);
    request.resource_id = id;
    request.format = static_cast<uint32_t>(format);
    request.width = width;
    request.height = height;
    return RunType(request);
  }
  // Attaches one contiguous backing range at `address`.
  ResponseType Attach(uint32_t id, uint64_t address, uint32_t length) {
    ResourceAttachBacking request{};
    request.hdr = Header(CommandType::kResourceAttachBacking);
    request.resource_id = id;
    request.nr_entries = 1;
    MemEntry entry{address, length, 0};
    return static_cast<ResponseType>(Run(request, nullptr, &entry, sizeof(entry)).type);
  }
  ResponseType Transfer(uint32_t id, Rect rect, uint64_t offset) {
    TransferToHost2d request{};
    request.hdr = Header(CommandType::kTransferToHost2d);
    request.r = rect;
    request.offset = offset;
    request.resource_id = id;
    return RunType(request);
  }
  ResponseType SetScanoutTo(uint32_t scanout, uint32_t id, Rect rect) {
    SetScanout request{};
    request.hdr = Header(CommandType::kSetScanout);
    request.r = rect;
    request.scanout_id = scanout;
    request.resource_id = id;
    return RunType(request);
  }
  ResponseType Flush(uint32_t id, Rect rect) {
    ResourceFlush request{};
    request.hdr = Header(CommandType::kResourceFlush);
    request.r = rect;
    request.resource_id = id;
    return RunType(request);
  }
  ResponseType Unref(uint32_t id) {
    ResourceUnref request{};
    request.hdr = Header(CommandType::kResourceUnref);
    request.resource_id = id;
    return RunType(request);
  }

  std::shared_ptr<const virtio::GuestMemory> memory_;
  RecordingUsedRing ring_;
  virtio::InFlightChains in_flight_;  // Before the model: it outlives the model's handles.
  std::unique_ptr<CommandDispatcher> model_;
  uint16_t next_head_ = 1;
};

}  // namespace vgpu::gpu::testing
