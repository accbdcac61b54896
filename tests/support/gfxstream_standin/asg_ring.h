// gfxstream's address-space-graphics ring as a guest driver and gfxstream's reader share it in a
// blob, for the stand-in (gfxstream's side) and the tests (the guest's side). From gfxstream's
// host/include/render-utils/address_space_graphics_types.h and ring_buffer.h:
//
// the blob starts with three 4 KiB rings, the first (to_host) a struct ring_buffer
// {u32 host_version, guest_version, write_pos; u32 unused0[13]; u32 read_pos at 64; ...;
// u8 buf[2048] at 128; u32 state; u32 config[32] at 2180}, config being struct asg_ring_config
// {buffer_size, flush_interval, host_consumed_pos, guest_write_pos, transfer_mode, ...}; then the
// 1 MiB transfer buffer at 12 KiB. A type-1 transfer is {u32 offset, u32 size} in to_host's buf,
// naming bytes of the transfer buffer.
#pragma once

#include <cstdint>

namespace vgpu::test::asg {

// SUBMIT_3D opcodes (gfxstream's virtgpu_gfxstream_protocol.h): {opcode, resource id}.
inline constexpr uint32_t kOpContextCreate = 0x1001;
inline constexpr uint32_t kOpContextPing = 0x1002;

inline constexpr uint64_t kRingBlobBytes = 12288 + (1u << 20);  // Rings and transfer buffer.
inline constexpr uint64_t kHostVersion = 0;
inline constexpr uint64_t kWritePos = 8;
inline constexpr uint64_t kReadPos = 64;
inline constexpr uint64_t kToHostBuf = 128;
inline constexpr uint64_t kToHostBufBytes = 2048;
inline constexpr uint64_t kHostConsumedPos = 2180 + 8;
inline constexpr uint64_t kTransferMode = 2180 + 16;
inline constexpr uint64_t kTransferBuffer = 12288;

}  // namespace vgpu::test::asg
