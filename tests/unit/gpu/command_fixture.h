// In-process harness for the device model: guest memory in a memfd, requests written into it the
// way the Linux driver lays them out, and descriptor chains pointing at them, so tests drive the
// CommandProcessor with real chains and read back exactly what it wrote.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "base/mapped_region.h"
#include "gpu/command_processor.h"
#include "gpu/protocol.h"
#include "virtio/descriptor_chain.h"
#include "virtio/guest_memory.h"

namespace vgpu::gpu::testing {

inline constexpr uint8_t kCanary = 0xAA;

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
  }

  uint8_t* Host(uint64_t address, uint64_t length) {
    return memory_->Translate(virtio::GuestAddress{address}, length)->data();
  }

  // A chain whose readable part is `request` (+ `extra` bytes after it) and whose writable part is
  // `response_size` bytes pre-filled with the canary.
  virtio::DescriptorChain Chain(const void* request, size_t request_size,
                                size_t response_size = 4096, const void* extra = nullptr,
                                size_t extra_size = 0) {
    virtio::DescriptorChain chain;
    chain.memory = memory_;
    uint8_t* request_bytes = Host(kRequestArea, request_size + extra_size);
    std::memcpy(request_bytes, request, request_size);
    if (extra_size > 0) std::memcpy(request_bytes + request_size, extra, extra_size);
    chain.readable.emplace_back(request_bytes, request_size + extra_size);
    chain.readable_length = request_size + extra_size;
    if (response_size > 0) {
      uint8_t* response = Host(kResponseArea, response_size);
      std::memset(response, kCanary, response_size);
      chain.writable.emplace_back(response, response_size);
      chain.writable_length = response_size;
    }
    return chain;
  }

  CtrlHdr Header(CommandType type, uint32_t flags = 0, uint64_t fence = 0) {
    CtrlHdr header{};
    header.type = static_cast<uint32_t>(type);
    header.flags = flags;
    header.fence_id = fence;
    return header;
  }

  // Runs a command that completes at once; returns the response header (and used length).
  template <class Request>
  CtrlHdr Run(const Request& request, uint32_t* used = nullptr, const void* extra = nullptr,
              size_t extra_size = 0) {
    virtio::DescriptorChain chain = Chain(&request, sizeof(request), 4096, extra, extra_size);
    ControlOutcome outcome = processor_->HandleControl(
        chain, [](uint32_t) { ADD_FAILURE() << "command unexpectedly answered later"; });
    EXPECT_EQ(outcome.state, ControlOutcome::State::kDone);
    if (used != nullptr) *used = outcome.used_length;
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
  std::unique_ptr<CommandProcessor> processor_;
};

}  // namespace vgpu::gpu::testing
