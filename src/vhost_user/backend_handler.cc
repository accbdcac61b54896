#include "vhost_user/backend_handler.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>

#include "base/checked_math.h"
#include "base/log.h"
#include "vhost_user/backend_channel.h"
#include "vhost_user/message_validate.h"

namespace vgpu::vhost_user {
namespace {

// Transport features we support on top of the device's own (QEMU forwards the guest's
// INDIRECT_DESC and EVENT_IDX, so both must work; docs/ARCHITECTURE.md, "What QEMU does that the
// daemon relies on").
constexpr uint64_t kTransportFeatures =
    kFeatureVersion1 | kFeatureRingIndirectDesc | kFeatureRingEventIdx | kFeatureProtocolFeatures;
// Bits QEMU may forward although we never offered them (docs/ARCHITECTURE.md, "What QEMU does that
// the daemon relies on"); accepted and ignored.
constexpr uint64_t kToleratedFeatures =
    kFeatureRingReset | kFeatureNotifyOnEmpty | kFeatureAnyLayout;

// Requests whose reply is their own payload, so REPLY_ACK adds nothing (vhost-user.rst
// "REPLY_ACK").
bool HasOwnReply(Request request) {
  switch (request) {
    case Request::kGetFeatures:
    case Request::kGetProtocolFeatures:
    case Request::kGetVringBase:
    case Request::kGetQueueNum:
    case Request::kGetConfig:
    case Request::kGetMaxMemSlots:
    case Request::kGetShmemConfig:
      return true;
    default:
      return false;
  }
}

tl::unexpected<Error> Malformed(std::string message) {
  return MakeError(ErrorKind::kMalformed, std::move(message));
}

}  // namespace

BackendHandler::BackendHandler(virtio::Device& device, DeviceThread& device_thread,
                               GpuSocketReceiver gpu_socket_receiver)
    : device_(device),
      device_thread_(device_thread),
      gpu_socket_receiver_(std::move(gpu_socket_receiver)),
      offered_features_(device.DeviceFeatures() | kTransportFeatures),
      shared_memory_regions_(device.SharedMemoryRegions()),
      offered_protocol_features_(kOfferedProtocolFeatures |
                                 (shared_memory_regions_.empty() ? 0 : kShmemProtocolFeatures)),
      vrings_(device.QueueCount()) {}

BackendHandler::~BackendHandler() { Disconnect(); }

void BackendHandler::Disconnect() {
  StopAllVrings();
  GiveMapper(nullptr);
  idle_backend_socket_ = UniqueFd();
  protocol_features_ = 0;
  vrings_.clear();
  vrings_.resize(device_.QueueCount());
  memory_.reset();
  activated_ = false;
}

void BackendHandler::StopAllVrings() {
  device_thread_.ResetDevice();
  for (Vring& vring : vrings_) vring.started = false;
}

Result<void> BackendHandler::Handle(ReceivedMessage& message, Connection& connection) {
  const Request request = static_cast<Request>(message.header.request);
  LogDebug("vhost-user <- %s (size %u, %zu fds)", RequestName(message.header.request),
           message.header.size, message.fds.size());
  const bool need_reply =
      (message.header.flags & kNeedReplyFlag) != 0 && Negotiated(kProtocolReplyAck);

  Result<Reply> reply = Dispatch(message);
  if (!reply) {
    const bool malformed = reply.error().kind == ErrorKind::kMalformed;
    LogWarning("vhost-user %s: %s", RequestName(message.header.request),
               reply.error().message.c_str());
    if (malformed || !need_reply || HasOwnReply(request)) return ErrorOf(reply);
    // A well-formed request we could not carry out: tell the frontend, keep the connection.
    reply = Reply{Reply::Kind::kU64, 1, {}};
  } else if (reply->kind == Reply::Kind::kNone && need_reply) {
    reply->kind = Reply::Kind::kU64;
    reply->value = 0;
  }

  if (reply->kind == Reply::Kind::kNone) return {};
  std::vector<uint8_t> payload;
  if (reply->kind == Reply::Kind::kU64) {
    payload.resize(sizeof(uint64_t));
    std::memcpy(payload.data(), &reply->value, sizeof(uint64_t));
  } else {
    payload = std::move(reply->bytes);
  }
  MessageHeader header{message.header.request, kReplyFlags, static_cast<uint32_t>(payload.size())};
  return connection.Send(header, payload);
}

Result<BackendHandler::Reply> BackendHandler::Dispatch(ReceivedMessage& message) {
  auto u64_reply = [](uint64_t value) { return Reply{Reply::Kind::kU64, value, {}}; };
  auto read_u64 = [&]() -> Result<uint64_t> {
    Result<void> fds = ExpectFdCount(message, 0);
    if (!fds) return ErrorOf(fds);
    Result<U64Payload> payload = PayloadAs<U64Payload>(message);
    if (!payload) return ErrorOf(payload);
    return uint64_t{payload->value};
  };
  auto read_state = [&]() -> Result<VringState> {
    Result<void> fds = ExpectFdCount(message, 0);
    if (!fds) return ErrorOf(fds);
    Result<VringState> state = PayloadAs<VringState>(message);
    if (!state) return state;
    if (state->index >= vrings_.size()) return Malformed("queue index out of range");
    return state;
  };

  switch (static_cast<Request>(message.header.request)) {
    case Request::kGetFeatures: {
      if (Result<void> empty = ExpectEmpty(message); !empty) return ErrorOf(empty);
      return u64_reply(offered_features_);
    }
    case Request::kSetFeatures: {
      Result<uint64_t> features = read_u64();
      if (!features) return ErrorOf(features);
      return SetFeatures(*features);
    }
    case Request::kSetOwner:
    case Request::kResetOwner:
    case Request::kResetDevice: {
      if (Result<void> empty = ExpectEmpty(message); !empty) return ErrorOf(empty);
      const Request request = static_cast<Request>(message.header.request);
      // SET_OWNER starts a session; there is nothing to keep for it.
      if (request == Request::kSetOwner) return Reply{};
      if (request == Request::kResetDevice && !Negotiated(kProtocolResetDevice)) {
        return Malformed("RESET_DEVICE without the RESET_DEVICE protocol feature");
      }
      return ResetDevice();
    }
    case Request::kGetProtocolFeatures: {
      if (Result<void> empty = ExpectEmpty(message); !empty) return ErrorOf(empty);
      return u64_reply(offered_protocol_features_);
    }
    case Request::kSetProtocolFeatures: {
      Result<uint64_t> features = read_u64();
      if (!features) return ErrorOf(features);
      return SetProtocolFeatures(*features);
    }
    case Request::kGetQueueNum: {
      if (Result<void> empty = ExpectEmpty(message); !empty) return ErrorOf(empty);
      return u64_reply(device_.QueueCount());
    }
    case Request::kGetMaxMemSlots: {
      if (Result<void> empty = ExpectEmpty(message); !empty) return ErrorOf(empty);
      if (!Negotiated(kProtocolConfigureMemSlots)) {
        return Malformed("GET_MAX_MEM_SLOTS without CONFIGURE_MEM_SLOTS");
      }
      return u64_reply(kMaxMemorySlots);
    }
    case Request::kSetMemTable:
      return SetMemTable(message);
    case Request::kAddMemReg:
      return AddMemoryRegion(message);
    case Request::kRemMemReg:
      return RemoveMemoryRegion(message);
    case Request::kSetVringNum: {
      Result<VringState> state = read_state();
      if (!state) return ErrorOf(state);
      return SetVringNum(state->index, state->num);
    }
    case Request::kSetVringAddr:
      return SetVringAddress(message);
    case Request::kSetVringBase: {
      Result<VringState> state = read_state();
      if (!state) return ErrorOf(state);
      return SetVringBase(state->index, state->num);
    }
    case Request::kGetVringBase: {
      Result<VringState> state = read_state();
      if (!state) return ErrorOf(state);
      return GetVringBase(state->index);
    }
    case Request::kSetVringKick:
    case Request::kSetVringCall:
    case Request::kSetVringErr:
      return SetVringFd(message);
    case Request::kSetVringEnable: {
      Result<VringState> state = read_state();
      if (!state) return ErrorOf(state);
      return SetVringEnable(state->index, state->num);
    }
    case Request::kGetConfig:
      return GetConfig(message);
    case Request::kSetConfig:
      return SetConfig(message);
    case Request::kGpuSetSocket:
      return SetGpuSocket(message);
    case Request::kSetBackendReqFd:
      return SetBackendChannel(message);
    case Request::kGetShmemConfig:
      return GetShmemConfig(message);
    default:
      return Malformed("unsupported request " + std::to_string(message.header.request));
  }
}

Result<BackendHandler::Reply> BackendHandler::SetFeatures(uint64_t features) {
  // QEMU forwards whatever the guest acked, offered or not (docs/ARCHITECTURE.md, "What QEMU does
  // that the daemon relies on"): keep what we offered, ignore the rest.
  const uint64_t unknown = features & ~(offered_features_ | kToleratedFeatures);
  if (unknown != 0) {
    LogWarning("SET_FEATURES acks bits never offered (0x%llx); ignoring them",
               static_cast<unsigned long long>(unknown));
  }
  if (!(features & kFeatureVersion1)) {
    // virtio-gpu is a modern-only device (virtio 1.2 §5.7); a legacy driver cannot drive it.
    return MakeError(ErrorKind::kUnsupported, "SET_FEATURES without VIRTIO_F_VERSION_1");
  }
  acked_features_ = features & offered_features_;
  // Without VHOST_USER_F_PROTOCOL_FEATURES, rings are enabled as soon as they start
  // (vhost-user.rst "Ring states").
  if (!(features & kFeatureProtocolFeatures)) {
    for (uint32_t index = 0; index < vrings_.size(); ++index) {
      if (vrings_[index].enabled) continue;
      vrings_[index].enabled = true;
      if (vrings_[index].started) device_thread_.SetQueueEnabled(index, true);
    }
  }
  LogDebug("features acked: 0x%llx", static_cast<unsigned long long>(acked_features_));
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::SetProtocolFeatures(uint64_t features) {
  if (features & ~offered_protocol_features_) {
    return Malformed("SET_PROTOCOL_FEATURES acks features never offered");
  }
  protocol_features_ = features;
  return Reply{};
}

Result<virtio::GuestMemoryRegion> BackendHandler::MapRegion(
    const MemoryRegionDescription& description, int fd) {
  if (description.memory_size == 0) return Malformed("memory region of size zero");
  if (!CheckedAdd<uint64_t>(description.guest_phys_addr, description.memory_size) ||
      !CheckedAdd<uint64_t>(description.userspace_addr, description.memory_size) ||
      !CheckedAdd<uint64_t>(description.mmap_offset, description.memory_size)) {
    return Malformed("memory region wraps the address space");
  }
  Result<MappedRegion> mapping =
      MappedRegion::MapShared(fd, description.memory_size, description.mmap_offset);
  if (!mapping) return ErrorOf(mapping);
  virtio::GuestMemoryRegion region;
  region.guest_address = description.guest_phys_addr;
  region.size = description.memory_size;
  region.user_address = description.userspace_addr;
  region.mapping = std::make_shared<const MappedRegion>(std::move(*mapping));
  return region;
}

Result<void> BackendHandler::InstallMemory(std::vector<virtio::GuestMemoryRegion> regions) {
  Result<std::shared_ptr<const virtio::GuestMemory>> memory =
      virtio::GuestMemory::Create(std::move(regions));
  if (!memory) return ErrorOf(memory);
  memory_ = std::move(*memory);
  // A ring whose memory disappeared stopped on the device thread (its chains went back); it is
  // stopped here too, so that the frontend can set it up again.
  for (uint32_t index : device_thread_.ReplaceMemory(memory_)) vrings_[index].started = false;
  return {};
}

Result<BackendHandler::Reply> BackendHandler::SetMemTable(ReceivedMessage& message) {
  if (message.payload.size() < sizeof(MemoryTableHeader)) return Malformed("short memory table");
  MemoryTableHeader table;
  std::memcpy(&table, message.payload.data(), sizeof(table));
  if (table.region_count == 0 || table.region_count > kMaxMemTableRegions) {
    return Malformed("memory table with " + std::to_string(table.region_count) + " regions");
  }
  if (message.payload.size() !=
      sizeof(MemoryTableHeader) + table.region_count * sizeof(MemoryRegionDescription)) {
    return Malformed("memory table size does not match its region count");
  }
  if (Result<void> fds = ExpectFdCount(message, table.region_count); !fds) {
    return ErrorOf(fds);
  }
  std::vector<virtio::GuestMemoryRegion> regions;
  for (uint32_t i = 0; i < table.region_count; ++i) {
    MemoryRegionDescription description;
    std::memcpy(&description,
                message.payload.data() + sizeof(MemoryTableHeader) + i * sizeof(description),
                sizeof(description));
    Result<virtio::GuestMemoryRegion> region = MapRegion(description, message.fds[i].get());
    if (!region) return ErrorOf(region);
    regions.push_back(std::move(*region));
  }
  if (Result<void> installed = InstallMemory(std::move(regions)); !installed) {
    return ErrorOf(installed);
  }
  LogInfo("memory table: %u regions, %llu MiB", table.region_count,
          static_cast<unsigned long long>(memory_->total_size() >> 20));
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::AddMemoryRegion(ReceivedMessage& message) {
  if (!Negotiated(kProtocolConfigureMemSlots)) {
    return Malformed("ADD_MEM_REG without CONFIGURE_MEM_SLOTS");
  }
  Result<SingleMemoryRegion> payload = PayloadAs<SingleMemoryRegion>(message);
  if (!payload) return ErrorOf(payload);
  if (Result<void> fds = ExpectFdCount(message, 1); !fds) return ErrorOf(fds);
  std::vector<virtio::GuestMemoryRegion> regions;
  if (memory_) regions = memory_->regions();
  if (regions.size() >= kMaxMemorySlots) {
    return MakeError(ErrorKind::kResourceExhausted, "all memory slots in use");
  }
  Result<virtio::GuestMemoryRegion> region = MapRegion(payload->region, message.fds[0].get());
  if (!region) return ErrorOf(region);
  regions.push_back(std::move(*region));
  if (Result<void> installed = InstallMemory(std::move(regions)); !installed) {
    return ErrorOf(installed);
  }
  LogDebug("memory region added: gpa 0x%llx size 0x%llx",
           static_cast<unsigned long long>(payload->region.guest_phys_addr),
           static_cast<unsigned long long>(payload->region.memory_size));
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::RemoveMemoryRegion(ReceivedMessage& message) {
  if (!Negotiated(kProtocolConfigureMemSlots)) {
    return Malformed("REM_MEM_REG without CONFIGURE_MEM_SLOTS");
  }
  Result<SingleMemoryRegion> payload = PayloadAs<SingleMemoryRegion>(message);
  if (!payload) return ErrorOf(payload);
  // QEMU may attach the region's fd; it is not needed and closes with the message.
  if (message.fds.size() > 1) return Malformed("REM_MEM_REG with more than one fd");
  if (!memory_) return MakeError(ErrorKind::kNotFound, "REM_MEM_REG with no memory mapped");
  std::vector<virtio::GuestMemoryRegion> regions = memory_->regions();
  // Match on guest address, user address and size; the mmap offset is ignored, as QEMU's
  // own back-ends do (docs/ARCHITECTURE.md, "What QEMU does that the daemon relies on").
  auto match = std::find_if(regions.begin(), regions.end(), [&](const auto& region) {
    return region.guest_address == payload->region.guest_phys_addr &&
           region.user_address == payload->region.userspace_addr &&
           region.size == payload->region.memory_size;
  });
  if (match == regions.end()) return MakeError(ErrorKind::kNotFound, "no such memory region");
  regions.erase(match);
  if (Result<void> installed = InstallMemory(std::move(regions)); !installed) {
    return ErrorOf(installed);
  }
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::SetVringNum(uint32_t index, uint32_t size) {
  const uint32_t limit = std::min(device_.MaxQueueSize(index), virtio::kMaxQueueSize);
  if (size == 0 || size > limit) {
    return Malformed("queue size " + std::to_string(size) + " outside 1.." + std::to_string(limit));
  }
  if (vrings_[index].started) return Malformed("SET_VRING_NUM on a started ring");
  vrings_[index].size = size;
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::SetVringAddress(ReceivedMessage& message) {
  if (Result<void> fds = ExpectFdCount(message, 0); !fds) return ErrorOf(fds);
  Result<VringAddress> address = PayloadAs<VringAddress>(message);
  if (!address) return ErrorOf(address);
  if (address->index >= vrings_.size()) return Malformed("queue index out of range");
  if (address->flags & kVringFlagLog) {
    return MakeError(ErrorKind::kUnsupported, "dirty logging was never offered");
  }
  if (address->flags != 0) return Malformed("unknown vring address flags");
  // virtio 1.2 §2.7 alignment: descriptor table 16, available ring 2, used ring 4.
  if (address->descriptor_user_address % 16 != 0 || address->available_user_address % 2 != 0 ||
      address->used_user_address % 4 != 0) {
    return Malformed("ring address misaligned");
  }
  Vring& vring = vrings_[address->index];
  if (vring.started) return Malformed("SET_VRING_ADDR on a started ring");
  if (memory_) {
    // With memory known, refuse rings outside it now rather than at SET_VRING_KICK. The full
    // sizes are checked again when the ring starts (the size may still change).
    const uint64_t size = std::max<uint32_t>(vring.size, 1);
    if (!memory_->TranslateUserAddress(address->descriptor_user_address, 16 * size) ||
        !memory_->TranslateUserAddress(address->available_user_address, 6 + 2 * size) ||
        !memory_->TranslateUserAddress(address->used_user_address, 6 + 8 * size)) {
      return MakeError(ErrorKind::kOutOfRange, "ring addresses outside guest memory");
    }
  }
  vring.layout.descriptor_user_address = address->descriptor_user_address;
  vring.layout.available_user_address = address->available_user_address;
  vring.layout.used_user_address = address->used_user_address;
  vring.addresses_set = true;
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::SetVringBase(uint32_t index, uint32_t base) {
  // Split rings use only bits 0-15 (vhost-user.rst, SET_VRING_BASE).
  if (base > 0xffff) return Malformed("split ring base over 16 bits");
  if (vrings_[index].started) return Malformed("SET_VRING_BASE on a started ring");
  vrings_[index].base = static_cast<uint16_t>(base);
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::GetVringBase(uint32_t index) {
  Vring& vring = vrings_[index];
  // Stops the ring; the device completes what it holds first (vhost-user.rst GET_VRING_BASE).
  std::optional<uint16_t> next = device_thread_.StopQueue(index);
  if (next) vring.base = *next;
  vring.started = false;
  VringState state{index, vring.base};
  Reply reply{Reply::Kind::kBytes, 0, std::vector<uint8_t>(sizeof(state))};
  std::memcpy(reply.bytes.data(), &state, sizeof(state));
  return reply;
}

Result<void> BackendHandler::StartVring(uint32_t index, UniqueFd kick_fd) {
  Vring& vring = vrings_[index];
  if (vring.size == 0 || !vring.addresses_set) {
    return MakeError(ErrorKind::kNotFound, "SET_VRING_KICK before the ring was configured");
  }
  if (!memory_) {
    // QEMU leaves out every RAM region that has no fd: the guest's memory is not shareable.
    return MakeError(ErrorKind::kNotFound,
                     "SET_VRING_KICK before any guest memory was shared with the daemon: the "
                     "guest's RAM must be shareable (QEMU: -object "
                     "memory-backend-memfd,id=mem,size=...,share=on -machine memory-backend=mem; "
                     "libvirt: <memoryBacking><source type='memfd'/><access mode='shared'/>"
                     "</memoryBacking>)");
  }
  vring.layout.size = vring.size;
  const virtio::QueueFeatures queue_features{(acked_features_ & kFeatureRingIndirectDesc) != 0,
                                             (acked_features_ & kFeatureRingEventIdx) != 0};
  Result<std::unique_ptr<virtio::SplitVirtqueue>> queue =
      virtio::SplitVirtqueue::Create(memory_, vring.layout, queue_features, vring.base);
  if (!queue) return ErrorOf(queue);
  if (vring.call_fd.valid()) (*queue)->set_call_fd(DuplicateFd(vring.call_fd.get()));
  if (!activated_) {
    device_thread_.Activate(acked_features_);
    activated_ = true;
  }
  Result<void> started =
      device_thread_.StartQueue(index, std::move(*queue), std::move(kick_fd), vring.enabled);
  if (!started) return started;
  vring.started = true;
  LogDebug("queue %u started: size %u, next available %u", index, vring.size, vring.base);
  return {};
}

Result<BackendHandler::Reply> BackendHandler::SetVringFd(ReceivedMessage& message) {
  Result<U64Payload> payload = PayloadAs<U64Payload>(message);
  if (!payload) return ErrorOf(payload);
  const uint64_t value = uint64_t{payload->value};
  if (value & ~(kVringIndexMask | kVringNoFdFlag)) return Malformed("unknown vring fd flags");
  const uint32_t index = static_cast<uint32_t>(value & kVringIndexMask);
  if (index >= vrings_.size()) return Malformed("queue index out of range");
  const bool no_fd = (value & kVringNoFdFlag) != 0;
  if (Result<void> fds = ExpectFdCount(message, no_fd ? 0 : 1); !fds) {
    return ErrorOf(fds);
  }
  UniqueFd fd = no_fd ? UniqueFd() : std::move(message.fds[0]);
  Vring& vring = vrings_[index];
  switch (static_cast<Request>(message.header.request)) {
    case Request::kSetVringKick: {
      // A kick fd starts the ring (vhost-user.rst "Ring states"). Without an fd we would have to
      // poll, which we do not: the ring starts but only processes on enable.
      Result<void> started = StartVring(index, std::move(fd));
      if (!started) return ErrorOf(started);
      return Reply{};
    }
    case Request::kSetVringCall:
      vring.call_fd = std::move(fd);
      if (vring.started) {
        device_thread_.SetCallFd(
            index, vring.call_fd.valid() ? DuplicateFd(vring.call_fd.get()) : UniqueFd());
      }
      return Reply{};
    default:
      vring.error_fd = std::move(fd);
      return Reply{};
  }
}

Result<BackendHandler::Reply> BackendHandler::SetVringEnable(uint32_t index, uint32_t enable) {
  if (enable > 1) return Malformed("SET_VRING_ENABLE with a value other than 0 or 1");
  Vring& vring = vrings_[index];
  vring.enabled = enable == 1;
  if (vring.started) device_thread_.SetQueueEnabled(index, vring.enabled);
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::GetConfig(ReceivedMessage& message) {
  if (!Negotiated(kProtocolConfig)) return Malformed("GET_CONFIG without the CONFIG feature");
  if (Result<void> fds = ExpectFdCount(message, 0); !fds) return ErrorOf(fds);
  if (message.payload.size() < sizeof(ConfigHeader)) return Malformed("short GET_CONFIG");
  ConfigHeader config;
  std::memcpy(&config, message.payload.data(), sizeof(config));
  if (config.size > kMaxConfigSize || message.payload.size() != sizeof(config) + config.size) {
    return Malformed("GET_CONFIG size does not match its payload");
  }
  Reply reply{Reply::Kind::kBytes, 0, {}};
  if (!RangeFits<uint64_t>(config.offset, config.size, device_.ConfigSize())) {
    // QEMU reads a zero-size reply as failure (vhost-user.rst GET_CONFIG).
    LogWarning("GET_CONFIG outside config space (offset %u, size %u)", config.offset, config.size);
    return reply;
  }
  reply.bytes.resize(sizeof(config) + config.size);
  std::memcpy(reply.bytes.data(), &config, sizeof(config));
  device_.ReadConfig(config.offset,
                     std::span<uint8_t>(reply.bytes.data() + sizeof(config), config.size));
  return reply;
}

Result<BackendHandler::Reply> BackendHandler::SetConfig(ReceivedMessage& message) {
  if (!Negotiated(kProtocolConfig)) return Malformed("SET_CONFIG without the CONFIG feature");
  if (Result<void> fds = ExpectFdCount(message, 0); !fds) return ErrorOf(fds);
  if (message.payload.size() < sizeof(ConfigHeader)) return Malformed("short SET_CONFIG");
  ConfigHeader config;
  std::memcpy(&config, message.payload.data(), sizeof(config));
  if (config.size > kMaxConfigSize || message.payload.size() != sizeof(config) + config.size) {
    return Malformed("SET_CONFIG size does not match its payload");
  }
  if (!RangeFits<uint64_t>(config.offset, config.size, device_.ConfigSize())) {
    return MakeError(ErrorKind::kOutOfRange, "SET_CONFIG outside config space");
  }
  device_.WriteConfig(config.offset, std::span<const uint8_t>(
                                         message.payload.data() + sizeof(config), config.size));
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::ResetDevice() {
  // Rings stop and device state goes; the memory table stays, because QEMU's CONFIGURE_MEM_SLOTS
  // bookkeeping keeps believing we have it and will not send it again.
  StopAllVrings();
  for (Vring& vring : vrings_) {
    UniqueFd call_fd = std::move(vring.call_fd);
    UniqueFd error_fd = std::move(vring.error_fd);
    vring = Vring{};
    vring.call_fd = std::move(call_fd);
    vring.error_fd = std::move(error_fd);
  }
  acked_features_ = 0;
  activated_ = false;
  LogInfo("device reset by the frontend");
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::SetGpuSocket(ReceivedMessage& message) {
  if (!message.payload.empty()) return Malformed("GPU_SET_SOCKET with a payload");
  if (Result<void> fds = ExpectFdCount(message, 1); !fds) return ErrorOf(fds);
  if (!gpu_socket_receiver_) return Malformed("GPU_SET_SOCKET to a device without a display");
  gpu_socket_receiver_(std::move(message.fds[0]));
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::SetBackendChannel(ReceivedMessage& message) {
  if (!Negotiated(kProtocolBackendReq)) {
    return Malformed("SET_BACKEND_REQ_FD without the BACKEND_REQ protocol feature");
  }
  if (!message.payload.empty()) return Malformed("SET_BACKEND_REQ_FD with a payload");
  if (Result<void> fds = ExpectFdCount(message, 1); !fds) return ErrorOf(fds);
  // Only blob mappings use the channel; without SHMEM nothing is ever sent on it, so it is only
  // kept (closed with the connection).
  if (!Negotiated(kProtocolShmem)) {
    idle_backend_socket_ = std::move(message.fds[0]);
    return Reply{};
  }
  GiveMapper(
      std::make_shared<BackendChannel>(std::move(message.fds[0]), Negotiated(kProtocolReplyAck)));
  return Reply{};
}

Result<BackendHandler::Reply> BackendHandler::GetShmemConfig(ReceivedMessage& message) {
  if (!Negotiated(kProtocolShmem)) return Malformed("GET_SHMEM_CONFIG without SHMEM");
  if (Result<void> empty = ExpectEmpty(message); !empty) return ErrorOf(empty);
  ShmemConfig config{};
  for (size_t shmid = 0; shmid < shared_memory_regions_.size() && shmid < kMaxShmemRegions;
       ++shmid) {
    config.memory_sizes[shmid] = shared_memory_regions_[shmid];
    if (shared_memory_regions_[shmid] != 0) ++config.region_count;
  }
  Reply reply{Reply::Kind::kBytes, 0, {}};
  reply.bytes.resize(sizeof(config));
  std::memcpy(reply.bytes.data(), &config, sizeof(config));
  return reply;
}

void BackendHandler::GiveMapper(std::shared_ptr<virtio::SharedMemoryMapper> mapper) {
  if (!mapper && !has_mapper_) return;
  has_mapper_ = mapper != nullptr;
  device_thread_.RunSync([&] { device_.SetSharedMemoryMapper(std::move(mapper)); });
}

}  // namespace vgpu::vhost_user
