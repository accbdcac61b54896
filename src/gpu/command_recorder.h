// CommandRecorder: a debug facility that appends the 3D commands a guest sends to a file, so that
// a real guest's command traffic can be replayed later (vhost-gpu-bench's 3D workloads replay
// bench/streams/gl_draw.virgl, captured from the 3D end-to-end test).
//
// Off unless the environment variable VHOST_DEVICE_GPU_RECORD_3D names a file when the command
// processor is made; then CTX_CREATE, CTX_DESTROY, CTX_ATTACH/DETACH_RESOURCE,
// RESOURCE_CREATE_3D, TRANSFER_TO/FROM_HOST_3D and SUBMIT_3D (with its command stream) are
// appended to it. When off, Record() is a test of an invalid fd.
//
//   CommandRecorder recorder = CommandRecorder::FromEnvironment();
//   recorder.Record(request);                   // Any wire struct that starts with a CtrlHdr.
//   recorder.Record(submit, command_stream);    // SUBMIT_3D: the struct, then its payload.
//
// File format (version 1, little-endian as on x86 and arm64 hosts): records back to back, each
//   uint32 magic   0x52443356, the bytes "V3DR"
//   uint32 length  of what follows
//   length bytes   the request as the guest sent it: struct virtio_gpu_ctrl_hdr (type, flags,
//                  fence_id, ctx_id, ring_idx: fenced commands keep VIRTIO_GPU_FLAG_FENCE and
//                  their fence id), the command's struct, and for SUBMIT_3D the `size` bytes of
//                  virgl command stream.
// A file may hold several sessions one after another (the file is opened for appending).
//
// VHOST_DEVICE_GPU_RECORD_CONTROL=FILE records every control-queue request instead (the readable
// part of each chain, at most kMaxRecordedRequest bytes), in the same format: real guest traffic
// for the fuzzers' seed corpora (fuzz/seeds_from_recording.py).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/unique_fd.h"

namespace vgpu::gpu {

inline constexpr const char* kRecord3dEnvironmentVariable = "VHOST_DEVICE_GPU_RECORD_3D";
inline constexpr const char* kRecordControlEnvironmentVariable = "VHOST_DEVICE_GPU_RECORD_CONTROL";
inline constexpr uint32_t kRecordMagic = 0x52443356;  // "V3DR" in file byte order.
inline constexpr uint32_t kMaxRecordedRequest = 64 << 10;

// Spec: none (this project's own file format, described above).
struct RecordHeader {
  uint32_t magic;
  uint32_t length;
} __attribute__((packed));
static_assert(sizeof(RecordHeader) == 8);

class CommandRecorder {
 public:
  // Recording to the file named by VHOST_DEVICE_GPU_RECORD_3D, or off. A file that cannot be
  // opened is logged and leaves recording off: a debug aid must not stop the daemon.
  static CommandRecorder FromEnvironment(const char* variable = kRecord3dEnvironmentVariable);
  // Recording to `path` (appending); off if it cannot be opened.
  static CommandRecorder ToFile(const std::string& path,
                                const char* variable = kRecord3dEnvironmentVariable);

  CommandRecorder() = default;
  CommandRecorder(CommandRecorder&&) = default;
  CommandRecorder& operator=(CommandRecorder&&) = default;

  bool enabled() const { return file_.valid(); }

  // One record of raw request bytes (the control recorder's).
  void RecordBytes(std::span<const uint8_t> request) {
    if (!enabled()) return;
    Append(request, {});
  }

  template <class Request>
  void Record(const Request& request, std::span<const uint8_t> payload = {}) {
    if (!enabled()) return;
    Append({reinterpret_cast<const uint8_t*>(&request), sizeof(Request)}, payload);
  }

 private:
  explicit CommandRecorder(UniqueFd file) : file_(std::move(file)) {}
  // Writes one record; on a write error logs it and stops recording.
  void Append(std::span<const uint8_t> request, std::span<const uint8_t> payload);

  UniqueFd file_;
};

}  // namespace vgpu::gpu
