// VhostUserFrontend::NegotiateLikeQemu10 and StopLikeQemu10: the message sequence QEMU 10.0.2
// was seen to send (docs/ARCHITECTURE.md, "What QEMU does that the daemon relies on", "Boot
// order").
#include <sys/socket.h>

#include "support/vhost_user_frontend.h"

namespace vgpu::test {
namespace {

constexpr uint32_t kControlQueue = 0;
constexpr uint32_t kCursorQueue = 1;
constexpr uint32_t kConfigSize = 16;  // struct virtio_gpu_config (§5.7.4).

}  // namespace

Result<Session> VhostUserFrontend::NegotiateLikeQemu10(const NegotiationOptions& options) {
  Session session;

  // Realize (vhost_user_backend_init + vhost_dev_init).
  Result<uint64_t> features = GetFeatures();
  if (!features) return ErrorOf(features);
  session.offered_features = *features;
  if ((*features & vhost_user::kFeatureProtocolFeatures) == 0) {
    return MakeError(ErrorKind::kUnsupported, "backend does not offer PROTOCOL_FEATURES");
  }
  Result<uint64_t> protocol = GetProtocolFeatures();
  if (!protocol) return ErrorOf(protocol);
  session.offered_protocol_features = *protocol;
  const uint64_t shmem_features =
      options.shmem ? (vhost_user::kProtocolBackendReq | vhost_user::kProtocolShmem) : 0;
  session.protocol_features = *protocol & (options.protocol_feature_mask | shmem_features);
  if ((session.protocol_features & vhost_user::kProtocolConfig) == 0) {
    // QEMU: "vhost-user device expecting VHOST_USER_PROTOCOL_F_CONFIG but the vhost-user backend
    // does not support it."
    return MakeError(ErrorKind::kUnsupported, "backend does not offer PROTOCOL_F_CONFIG");
  }
  if (Result<void> set = SetProtocolFeatures(session.protocol_features); !set) {
    return ErrorOf(set);
  }
  if (session.protocol_features & vhost_user::kProtocolMq) {
    Result<uint64_t> queues = GetQueueNum();
    if (!queues) return ErrorOf(queues);
    session.queue_count = *queues;
  }
  const bool memory_slots =
      (session.protocol_features & vhost_user::kProtocolConfigureMemSlots) != 0;
  if (memory_slots) {
    Result<uint64_t> slots = GetMaxMemSlots();
    if (!slots) return ErrorOf(slots);
    session.max_memory_slots = *slots;
  }
  if (Result<void> owner = SetOwner(); !owner) return ErrorOf(owner);
  if ((session.protocol_features & shmem_features) == shmem_features && options.shmem) {
    // A VMM with SHMEM asks for the regions at realize and gives the backend its channel.
    Result<vhost_user::ShmemConfig> config = GetShmemConfig();
    if (!config) return ErrorOf(config);
    session.shmem_config = *config;
    const uint64_t size = config->memory_sizes[1];
    if (size != 0) {
      Result<std::unique_ptr<ShmemWindow>> window =
          ShmemWindow::Create(size, options.shmem_options);
      if (!window) return ErrorOf(window);
      session.shmem = std::move(*window);
      UniqueFd daemon_end = session.shmem->TakeDaemonEnd();
      if (Result<void> set = SetBackendReqFd(daemon_end.get()); !set) return ErrorOf(set);
    }
  }
  Result<uint64_t> features_again = GetFeatures();
  if (!features_again) return ErrorOf(features_again);
  for (uint32_t queue : {kControlQueue, kCursorQueue}) {
    Result<EventFd> masked_call = EventFd::Create();
    Result<EventFd> error = EventFd::Create();
    if (!masked_call || !error) return MakeError(ErrorKind::kSystem, "eventfd");
    if (Result<void> set = SetVringCall(queue, masked_call->fd()); !set) {
      return ErrorOf(set);
    }
    if (Result<void> set = SetVringErr(queue, error->fd()); !set) {
      return ErrorOf(set);
    }
    session.initial_notifiers.push_back(std::move(*masked_call));
    session.initial_notifiers.push_back(std::move(*error));
  }

  // The guest driver loads: it reads config space, then sets DRIVER_OK.
  for (int read = 0; read < options.config_reads; ++read) {
    Result<std::vector<uint8_t>> config = GetConfig(0, kConfigSize);
    if (!config) return ErrorOf(config);
    session.config = std::move(*config);
  }

  // vhost_user_gpu_set_status(DRIVER_OK): do_set_socket() first.
  UniqueFd backend_end;
  if (options.serve_display) {
    auto [display, daemon_end] = FakeDisplay::Create(options.display_options);
    session.display = std::make_unique<FakeDisplay>(std::move(display));
    backend_end = std::move(daemon_end);
  } else {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      return MakeSystemError("socketpair");
    }
    session.gpu_socket = UniqueFd(pair[0]);
    backend_end = UniqueFd(pair[1]);
  }
  if (Result<void> set = GpuSetSocket(backend_end.get()); !set) return ErrorOf(set);
  backend_end.reset();

  // vhost_user_backend_start() -> vhost_dev_start().
  const uint64_t ring_features = vhost_user::kFeatureVersion1 |
                                 vhost_user::kFeatureRingIndirectDesc |
                                 vhost_user::kFeatureRingEventIdx | kGpuDeviceFeatureMask;
  session.acked_features =
      options.guest_features.value_or((*features & ring_features) | vhost_user::kFeatureRingReset);
  session.acked_features |= vhost_user::kFeatureProtocolFeatures;
  if (Result<void> set = SetFeatures(session.acked_features); !set) {
    return ErrorOf(set);
  }

  Result<std::unique_ptr<GuestRam>> ram =
      GuestRam::Create(options.memory_size, options.memory_layout);
  if (!ram) return ErrorOf(ram);
  session.ram = std::move(*ram);
  if (memory_slots && !options.force_set_mem_table) {
    for (const vhost_user::MemoryRegionDescription& region : session.ram->Descriptions()) {
      Result<UniqueFd> fd = session.ram->DuplicateFd();
      if (!fd) return ErrorOf(fd);
      if (Result<void> added = AddMemReg(region, fd->get()); !added) {
        return ErrorOf(added);
      }
    }
  } else if (Result<void> table = SetMemTable(*session.ram); !table) {
    return ErrorOf(table);
  }

  const bool event_index = (session.acked_features & vhost_user::kFeatureRingEventIdx) != 0;
  Result<std::unique_ptr<DriverQueue>> control = DriverQueue::Create(
      *session.ram, {.size = options.control_queue_size, .event_index = event_index});
  if (!control) return ErrorOf(control);
  session.control_queue = std::move(*control);
  Result<std::unique_ptr<DriverQueue>> cursor = DriverQueue::Create(
      *session.ram, {.size = options.cursor_queue_size, .event_index = event_index});
  if (!cursor) return ErrorOf(cursor);
  session.cursor_queue = std::move(*cursor);
  if (options.stop_after == NegotiationStage::kMemory) return session;

  for (uint32_t index : {kControlQueue, kCursorQueue}) {
    DriverQueue& queue = session.queue(index);
    if (Result<void> set = SetVringNum(index, queue.size()); !set) {
      return ErrorOf(set);
    }
    if (Result<void> set = SetVringBase(index, queue.available_index()); !set) {
      return ErrorOf(set);
    }
    if (Result<void> set = SetVringAddr(VringAddressOf(index, queue)); !set) {
      return ErrorOf(set);
    }
    if (Result<void> set = SetVringKick(index, queue.kick().fd()); !set) {
      return ErrorOf(set);
    }
  }
  if (session.acked_features & vhost_user::kFeatureProtocolFeatures) {
    for (uint32_t index : {kControlQueue, kCursorQueue}) {
      if (Result<void> set = SetVringEnable(index, true); !set) return ErrorOf(set);
    }
  }
  for (uint32_t index : {kControlQueue, kCursorQueue}) {
    if (Result<void> set = SetVringCall(index, session.queue(index).call().fd()); !set) {
      return ErrorOf(set);
    }
  }
  return session;
}

Result<void> VhostUserFrontend::StartQueue(Session& session, uint32_t index) {
  DriverQueue& queue = session.queue(index);
  if (Result<void> set = SetVringNum(index, queue.size()); !set) return ErrorOf(set);
  if (Result<void> set = SetVringBase(index, queue.available_index()); !set) return ErrorOf(set);
  if (Result<void> set = SetVringAddr(VringAddressOf(index, queue)); !set) return ErrorOf(set);
  if (Result<void> set = SetVringKick(index, queue.kick().fd()); !set) return ErrorOf(set);
  if (session.acked_features & vhost_user::kFeatureProtocolFeatures) {
    if (Result<void> set = SetVringEnable(index, true); !set) return ErrorOf(set);
  }
  return SetVringCall(index, queue.call().fd());
}

Result<void> VhostUserFrontend::RestartAfterReset(Session& session,
                                                  const FakeDisplayOptions& display_options) {
  if (Result<void> set = SetFeatures(session.acked_features); !set) return ErrorOf(set);
  auto [display, daemon_end] = FakeDisplay::Create(display_options);
  session.display = std::make_unique<FakeDisplay>(std::move(display));
  if (Result<void> set = GpuSetSocket(daemon_end.get()); !set) return ErrorOf(set);
  for (uint32_t index : {kControlQueue, kCursorQueue}) {
    if (Result<void> started = StartQueue(session, index); !started) return ErrorOf(started);
  }
  return {};
}

Result<std::vector<uint32_t>> VhostUserFrontend::StopLikeQemu10(Session& session) {
  std::vector<uint32_t> bases;
  for (uint32_t index : {kControlQueue, kCursorQueue}) {
    if (Result<void> set = SetVringEnable(index, false); !set) return ErrorOf(set);
  }
  for (uint32_t index : {kControlQueue, kCursorQueue}) {
    Result<uint32_t> base = GetVringBase(index);
    if (!base) return ErrorOf(base);
    bases.push_back(*base);
  }
  if (session.display) session.display->Disconnect();
  session.gpu_socket.reset();
  Close();
  return bases;
}

}  // namespace vgpu::test
