// A received vhost-user message as the debug recorder writes it (gpu/command_recorder.h,
// VHOST_DEVICE_GPU_RECORD_VHOST_USER), for fuzz/seeds_from_recording.py to turn into
// vhost_user_message_fuzzer inputs.
//
//   std::vector<uint8_t> record = EncodeMessageRecord(message);   // After Connection::Receive.
//
// Layout (host byte order; this project's own, not a spec's):
//   MessageHeader        request, flags, size as received (size: of the payload below)
//   uint8 fd count       at most kMaxFdsPerMessage (Connection::Receive refuses more)
//   uint8 fd kind[count] FdKind of each fd, in the order they came
//   payload              `size` bytes (at most kMaxPayloadSize, as Receive enforces)
// The fds' numbers say nothing after the fact, so only their kind is kept: a seed converter
// maps each to a fuzzer's fd of that kind.
#pragma once

#include <cstdint>
#include <vector>

#include "vhost_user/connection.h"

namespace vgpu::vhost_user {

enum class FdKind : uint8_t {
  kFile = 0,       // A regular file: a memfd of guest RAM (SET_MEM_TABLE, ADD_MEM_REG).
  kAnonymous = 1,  // An anonymous inode: the eventfds of SET_VRING_KICK/CALL/ERR.
  kSocket = 2,     // VHOST_USER_GPU_SET_SOCKET's display socket.
  kPipe = 3,
  kOther = 4,  // Anything else, or an fd fstat refused.
};

// The kind of `fd`, from fstat (allowed under the sandbox).
FdKind KindOfFd(int fd);

std::vector<uint8_t> EncodeMessageRecord(const ReceivedMessage& message);

}  // namespace vgpu::vhost_user
