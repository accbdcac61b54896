// CommandRecorder: a debug facility that appends what the daemon receives to a file, so that real
// traffic (a real QEMU, a real guest driver) can be replayed later: by vhost-gpu-bench's 3D
// workloads (bench/streams/gl_draw.virgl, captured from the 3D end-to-end test) and as the
// fuzzers' seed corpora (fuzz/seeds_from_recording.py, fuzz/README.md).
//
// Each recording is off unless its environment variable names a file. The file is opened when
// the recorder is made, which is during setup, before the seccomp sandbox (daemon/sandbox.cc)
// refuses new files; when off, recording is a test of an invalid fd. A file that cannot be
// opened is logged and leaves that recording off.
//
//   VHOST_DEVICE_GPU_RECORD_3D        CTX_CREATE, CTX_DESTROY, CTX_ATTACH/DETACH_RESOURCE,
//                                     RESOURCE_CREATE_3D, TRANSFER_TO/FROM_HOST_3D and SUBMIT_3D
//                                     (with its command stream): the struct as the guest sent it
//                                     (gpu/command_dispatcher.cc).
//   VHOST_DEVICE_GPU_RECORD_CONTROL   every control-queue request: the readable part of its chain,
//                                     at most kMaxRecordedRequest bytes (gpu/device.cc).
//   VHOST_DEVICE_GPU_RECORD_VHOST_USER  every vhost-user message from the frontend, in
//                                     vhost_user/message_record.h's layout (daemon/server.cc).
//   VHOST_DEVICE_GPU_RECORD_DISPLAY   the bytes of each read from the VMM's display socket, as
//                                     read; an empty record each time a socket is attached
//                                     (display_channel.cc).
//   VHOST_DEVICE_GPU_RECORD_VIRTQUEUE the state of a queue's rings at a kick, with the indirect
//                                     tables and readable buffers of the chains it holds, in
//                                     virtio/ring_record.h's layout (device.cc; the first
//                                     kMaxRecordedKicks kicks per queue).
//
//   CommandRecorder recorder = CommandRecorder::FromEnvironment(kRecordDisplayEnvironmentVariable);
//   recorder.Record(request);                   // Any wire struct (3D: one that starts with a
//   recorder.Record(submit, command_stream);    // CtrlHdr); SUBMIT_3D: the struct, its payload.
//   recorder.RecordBytes(bytes);                // Raw bytes, one record.
//
// File format (version 1, little-endian as on x86 and arm64 hosts): records back to back, each
//   uint32 magic   0x52443356, the bytes "V3DR"
//   uint32 length  of what follows, at most kMaxRecordLength (longer records are not written)
//   length bytes   the record. For the 3D recording: struct virtio_gpu_ctrl_hdr (type, flags,
//                  fence_id, ctx_id, ring_idx: fenced commands keep VIRTIO_GPU_FLAG_FENCE and
//                  their fence id), the command's struct, and for SUBMIT_3D the `size` bytes of
//                  virgl command stream. For the others: as described above.
// A file may hold several sessions one after another (the file is opened for appending). The
// recorded data comes from the VMM and the guest; it is for debugging and seeds, never read back
// by the daemon. Every hook bounds what it records, so that a recording cannot grow without
// limit per request.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/unique_fd.h"

namespace vgpu::gpu {

inline constexpr const char* kRecord3dEnvironmentVariable = "VHOST_DEVICE_GPU_RECORD_3D";
inline constexpr const char* kRecordControlEnvironmentVariable = "VHOST_DEVICE_GPU_RECORD_CONTROL";
inline constexpr const char* kRecordVhostUserEnvironmentVariable =
    "VHOST_DEVICE_GPU_RECORD_VHOST_USER";
inline constexpr const char* kRecordDisplayEnvironmentVariable = "VHOST_DEVICE_GPU_RECORD_DISPLAY";
inline constexpr const char* kRecordVirtqueueEnvironmentVariable =
    "VHOST_DEVICE_GPU_RECORD_VIRTQUEUE";
inline constexpr uint32_t kRecordMagic = 0x52443356;  // "V3DR" in file byte order.
inline constexpr uint32_t kMaxRecordedRequest = 64 << 10;
// The largest record written: a SUBMIT_3D with the largest command stream (4 MiB) fits.
inline constexpr uint32_t kMaxRecordLength = 8 << 20;
// Kicks recorded per queue by VHOST_DEVICE_GPU_RECORD_VIRTQUEUE (a booting guest kicks the
// control queue a few hundred times; a guest that keeps drawing, without end).
inline constexpr uint32_t kMaxRecordedKicks = 1024;

// Spec: none (this project's own file format, described above).
struct RecordHeader {
  uint32_t magic;
  uint32_t length;
} __attribute__((packed));
static_assert(sizeof(RecordHeader) == 8);

class CommandRecorder {
 public:
  // Recording to the file named by `variable`, or off.
  static CommandRecorder FromEnvironment(const char* variable = kRecord3dEnvironmentVariable);
  // Recording to `path` (appending); off if it cannot be opened. `variable` names the recording
  // in log lines.
  static CommandRecorder ToFile(const std::string& path,
                                const char* variable = kRecord3dEnvironmentVariable);

  CommandRecorder() = default;
  CommandRecorder(CommandRecorder&&) = default;
  CommandRecorder& operator=(CommandRecorder&&) = default;

  bool enabled() const { return file_.valid(); }

  // One record of raw bytes (may be empty: a marker).
  void RecordBytes(std::span<const uint8_t> bytes) {
    if (!enabled()) return;
    Append(bytes, {});
  }

  template <class Request>
  void Record(const Request& request, std::span<const uint8_t> payload = {}) {
    if (!enabled()) return;
    Append({reinterpret_cast<const uint8_t*>(&request), sizeof(Request)}, payload);
  }

 private:
  CommandRecorder(UniqueFd file, const char* variable)
      : file_(std::move(file)), variable_(variable) {}
  // Writes one record; on a write error logs it and stops recording.
  void Append(std::span<const uint8_t> request, std::span<const uint8_t> payload);

  UniqueFd file_;
  const char* variable_ = kRecord3dEnvironmentVariable;
};

}  // namespace vgpu::gpu
