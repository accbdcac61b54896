// vhost-user wire format: request ids, feature bits and payload structs.
//
// Spec: QEMU docs/interop/vhost-user.rst ("Message Specification"). All fields are in host byte
// order. Every message is a 12-byte header followed by `size` payload bytes; file descriptors
// travel as SCM_RIGHTS ancillary data with the header's bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vgpu::vhost_user {

// Spec: "Front-end message types".
enum class Request : uint32_t {
  kNone = 0,
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kSendRarp = 19,
  kNetSetMtu = 20,
  kSetBackendReqFd = 21,
  kIotlbMsg = 22,
  kSetVringEndian = 23,
  kGetConfig = 24,
  kSetConfig = 25,
  kCreateCryptoSession = 26,
  kCloseCryptoSession = 27,
  kPostcopyAdvise = 28,
  kPostcopyListen = 29,
  kPostcopyEnd = 30,
  kGetInflightFd = 31,
  kSetInflightFd = 32,
  kGpuSetSocket = 33,
  kResetDevice = 34,
  kVringKick = 35,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
  kSetStatus = 39,
  kGetStatus = 40,
  kGetShmemConfig = 44,
};

// Spec: "Back-end message types" (sent by the back-end on the channel SET_BACKEND_REQ_FD gave).
enum class BackendRequest : uint32_t {
  kConfigChangeMsg = 2,
  kShmemMap = 9,
  kShmemUnmap = 10,
};

const char* RequestName(uint32_t request);

// Header flags. Spec: "Header".
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kVersion = 0x1;
inline constexpr uint32_t kReplyFlag = 1u << 2;
inline constexpr uint32_t kNeedReplyFlag = 1u << 3;
// QEMU's vhost_user_read_header() accepts exactly this value in a reply.
inline constexpr uint32_t kReplyFlags = kVersion | kReplyFlag;

// Spec: "Header": u32 request, u32 flags, u32 size.
struct MessageHeader {
  uint32_t request;
  uint32_t flags;
  uint32_t size;
} __attribute__((packed));
static_assert(sizeof(MessageHeader) == 12);

// The most fds QEMU attaches to one message (VHOST_MEMORY_BASELINE_NREGIONS).
inline constexpr size_t kMaxFdsPerMessage = 8;
// Larger than any payload we accept (the largest is GET_CONFIG: 12 + 256).
inline constexpr uint32_t kMaxPayloadSize = 4096;

// Virtio feature bits the transport cares about (virtio 1.2 §6, vhost-user.rst).
inline constexpr uint64_t kFeatureNotifyOnEmpty = 1ull << 24;
inline constexpr uint64_t kFeatureAnyLayout = 1ull << 27;
inline constexpr uint64_t kFeatureRingIndirectDesc = 1ull << 28;
inline constexpr uint64_t kFeatureRingEventIdx = 1ull << 29;
inline constexpr uint64_t kFeatureProtocolFeatures = 1ull << 30;  // VHOST_USER_F_PROTOCOL_FEATURES
inline constexpr uint64_t kFeatureVersion1 = 1ull << 32;
inline constexpr uint64_t kFeatureRingReset = 1ull << 40;

// Protocol feature bits. Spec: "Protocol features".
enum ProtocolFeature : uint64_t {
  kProtocolMq = 1ull << 0,
  kProtocolLogShmfd = 1ull << 1,
  kProtocolReplyAck = 1ull << 3,
  kProtocolBackendReq = 1ull << 5,
  kProtocolConfig = 1ull << 9,
  kProtocolBackendSendFd = 1ull << 10,
  kProtocolResetDevice = 1ull << 13,
  kProtocolInbandNotifications = 1ull << 14,
  kProtocolConfigureMemSlots = 1ull << 15,
  kProtocolStatus = 1ull << 16,
  // VIRTIO Shared Memory Regions (GET_SHMEM_CONFIG, BACKEND_SHMEM_MAP/UNMAP). Its number moved
  // while the spec text was under review (20, 21, 22); 22 is the one the spec and crosvm settled
  // on.
  kProtocolShmem = 1ull << 22,
};

// Spec: "A single 64-bit integer" payload; also the kick/call/err "vring descriptor index" form.
struct U64Payload {
  uint64_t value;
} __attribute__((packed));
static_assert(sizeof(U64Payload) == 8);

// Bits 0-7 of a SET_VRING_KICK/CALL/ERR payload are the queue index; bit 8 says "no fd".
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFdFlag = 0x100;

// Spec: "Vring state description": u32 index, u32 num.
struct VringState {
  uint32_t index;
  uint32_t num;
} __attribute__((packed));
static_assert(sizeof(VringState) == 8);

// Spec: "Vring address description".
struct VringAddress {
  uint32_t index;
  uint32_t flags;  // Bit 0: VHOST_VRING_F_LOG.
  uint64_t descriptor_user_address;
  uint64_t used_user_address;
  uint64_t available_user_address;
  uint64_t log_guest_address;
} __attribute__((packed));
static_assert(sizeof(VringAddress) == 40);
inline constexpr uint32_t kVringFlagLog = 1u << 0;

// Spec: "Memory region description".
struct MemoryRegionDescription {
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t mmap_offset;
} __attribute__((packed));
static_assert(sizeof(MemoryRegionDescription) == 32);

// Spec: "Multiple Memory regions description": u32 nregions, u32 padding, regions[8].
inline constexpr uint32_t kMaxMemTableRegions = 8;
struct MemoryTableHeader {
  uint32_t region_count;
  uint32_t padding;
} __attribute__((packed));
static_assert(sizeof(MemoryTableHeader) == 8);

// Spec: "Single memory region description" (ADD_MEM_REG / REM_MEM_REG): u64 padding, region.
struct SingleMemoryRegion {
  uint64_t padding;
  MemoryRegionDescription region;
} __attribute__((packed));
static_assert(sizeof(SingleMemoryRegion) == 40);

// Spec: "Device config space": u32 offset, u32 size, u32 flags, u8 payload[size].
struct ConfigHeader {
  uint32_t offset;
  uint32_t size;
  uint32_t flags;
} __attribute__((packed));
static_assert(sizeof(ConfigHeader) == 12);
inline constexpr uint32_t kMaxConfigSize = 256;

// Spec: "VIRTIO Shared Memory Region configuration" (GET_SHMEM_CONFIG's reply): u32 nregions,
// u32 padding, u64 memory_sizes[256] indexed by shmid.
inline constexpr size_t kMaxShmemRegions = 256;
struct ShmemConfig {
  uint32_t region_count;
  uint32_t padding;
  uint64_t memory_sizes[kMaxShmemRegions];
} __attribute__((packed));
static_assert(sizeof(ShmemConfig) == 2056);

// Spec: "MMAP request" (BACKEND_SHMEM_MAP with the fd as SCM_RIGHTS, BACKEND_SHMEM_UNMAP
// without): u8 shmid, u8 padding[7], u64 fd_offset, u64 shm_offset, u64 len, u64 flags.
struct ShmemMap {
  uint8_t shmid;
  uint8_t padding[7];
  uint64_t fd_offset;
  uint64_t shm_offset;
  uint64_t len;
  uint64_t flags;
} __attribute__((packed));
static_assert(sizeof(ShmemMap) == 40);
inline constexpr uint64_t kShmemMapReadWrite = 1ull << 0;

}  // namespace vgpu::vhost_user
