// Writes the seed corpora of the fuzz targets: message sequences shaped like the real traffic
// (QEMU 10's vhost-user negotiation, the Linux virtio-gpu driver's commands at boot and while
// drawing, QEMU's display replies), in each target's input format. The seeds are synthetic:
// written from the protocol and from what the test frontend and E2E notes record, not captured.
//
//   make_fuzz_seeds fuzz/corpus     # Writes fuzz/corpus/<fuzzer>/<seed>, replacing old seeds.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gpu/display_protocol.h"
#include "gpu/protocol.h"
#include "virtio_gpu/blob.h"

namespace {

using namespace vgpu::gpu;
namespace display = vgpu::gpu::display;

class Bytes {
 public:
  template <class T>
  Bytes& Put(const T& value) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    data_.insert(data_.end(), bytes, bytes + sizeof(T));
    return *this;
  }
  Bytes& Append(const std::vector<uint8_t>& bytes) {
    data_.insert(data_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  const std::vector<uint8_t>& data() const { return data_; }
  size_t size() const { return data_.size(); }

 private:
  std::vector<uint8_t> data_;
};

template <class T>
std::vector<uint8_t> BytesOf(const T& value) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  return std::vector<uint8_t>(bytes, bytes + sizeof(T));
}

void WriteSeed(const std::filesystem::path& directory, const std::string& name,
               const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(directory);
  std::ofstream file(directory / name, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

// ---- gpu_command_fuzzer ----------------------------------------------------------------------

constexpr uint32_t kFlagDisplay = 1u << 0;
constexpr uint32_t kFlagAnswerHandshake = 1u << 1;
constexpr uint32_t kFlagAckEdid = 1u << 2;
constexpr uint32_t kFlagAckUuid = 1u << 3;
constexpr uint32_t kFlagAckBlob = 1u << 5;
constexpr uint64_t kRegionSize = 8ull << 20;

class GpuScript {
 public:
  GpuScript(uint32_t flags, uint64_t vmm_features) { bytes_.Put(flags).Put(vmm_features); }

  template <class T>
  GpuScript& Control(const T& request, uint8_t options = 0,
                     const std::vector<uint8_t>& extra = {}) {
    std::vector<uint8_t> bytes = BytesOf(request);
    bytes.insert(bytes.end(), extra.begin(), extra.end());
    return Record(0, options, bytes);
  }
  GpuScript& Cursor(const UpdateCursor& request) { return Record(1, 0, BytesOf(request)); }
  GpuScript& Fill(uint32_t address, uint32_t length, uint8_t value) {
    Bytes bytes;
    bytes.Put(address).Put(length).Put(value);
    return Record(3, 0, bytes.data());
  }
  GpuScript& Write(uint32_t address, const std::vector<uint8_t>& data) {
    Bytes bytes;
    bytes.Put(address).Append(data);
    return Record(2, 0, bytes.data());
  }
  template <class T>
  GpuScript& DisplayReply(display::Request request, const T& payload) {
    Bytes bytes;
    bytes
        .Put(display::MessageHeader{static_cast<uint32_t>(request), display::kReplyFlag,
                                    static_cast<uint32_t>(sizeof(T))})
        .Put(payload);
    return Record(4, 0, bytes.data());
  }
  GpuScript& Reset() { return Record(5, 0, {}); }
  const std::vector<uint8_t>& data() const { return bytes_.data(); }

 private:
  GpuScript& Record(uint8_t kind, uint8_t options, const std::vector<uint8_t>& bytes) {
    bytes_.Put(kind).Put(options).Put(static_cast<uint16_t>(bytes.size())).Append(bytes);
    return *this;
  }
  Bytes bytes_;
};

CtrlHdr Header(CommandType type, bool fenced = false, uint64_t fence = 0) {
  CtrlHdr header{};
  header.type = static_cast<uint32_t>(type);
  header.flags = fenced ? kFlagFence : 0;
  header.fence_id = fence;
  return header;
}

ResourceCreate2d Create2d(uint32_t id, Format format, uint32_t width, uint32_t height) {
  return ResourceCreate2d{Header(CommandType::kResourceCreate2d), id, static_cast<uint32_t>(format),
                          width, height};
}

// The driver's backing: page-sized entries, consecutive pages scattered the way a guest's
// allocator hands them out (every other page from `address`).
std::vector<uint8_t> PageEntries(uint64_t address, uint64_t length, bool scattered) {
  Bytes bytes;
  for (uint64_t offset = 0; offset < length; offset += 4096) {
    const uint32_t page = static_cast<uint32_t>(std::min<uint64_t>(4096, length - offset));
    bytes.Put(MemEntry{address + (scattered ? 2 * offset : offset), page, 0});
  }
  return bytes.data();
}

GpuScript& AttachPages(GpuScript& script, uint32_t id, uint64_t address, uint64_t length,
                       bool scattered, uint8_t options = 0) {
  const uint32_t entries = static_cast<uint32_t>((length + 4095) / 4096);
  ResourceAttachBacking request{Header(CommandType::kResourceAttachBacking), id, entries};
  return script.Control(request, options, PageEntries(address, length, scattered));
}

RespDisplayInfo DisplayInfo(uint32_t outputs, uint32_t width, uint32_t height) {
  RespDisplayInfo info{};
  info.hdr.type = static_cast<uint32_t>(ResponseType::kOkDisplayInfo);
  for (uint32_t i = 0; i < outputs; ++i) {
    info.pmodes[i].r = Rect{0, 0, width, height};
    info.pmodes[i].enabled = 1;
  }
  return info;
}

RespEdid Edid() {
  RespEdid edid{};
  edid.hdr.type = static_cast<uint32_t>(ResponseType::kOkEdid);
  edid.size = 128;
  const uint8_t header[8] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  std::memcpy(edid.edid, header, sizeof(header));
  return edid;
}

// The Linux driver's start: display info and EDIDs, the fbdev framebuffer, and its first frame.
// `answer_vmm`: the VMM answers GET_DISPLAY_INFO; `answer_edid`: it speaks EDID (QEMU >= 8.1).
void LinuxBoot(GpuScript& script, bool answer_vmm, bool answer_edid, uint32_t outputs,
               uint32_t width, uint32_t height, Format format, bool scattered) {
  script.Control(Header(CommandType::kGetDisplayInfo));
  if (answer_vmm) {
    script.DisplayReply(display::Request::kGetDisplayInfo, DisplayInfo(outputs, width, height));
  }
  for (uint32_t scanout = 0; scanout < outputs; ++scanout) {
    script.Control(GetEdid{Header(CommandType::kGetEdid), scanout, 0});
    if (answer_edid) script.DisplayReply(display::Request::kGetEdid, Edid());
  }
  const uint64_t frame_bytes = uint64_t{width} * height * 4;
  const uint64_t backing = 0x100000;
  script.Control(Create2d(1, format, width, height));
  AttachPages(script, 1, backing, frame_bytes, scattered);
  for (uint32_t scanout = 0; scanout < outputs; ++scanout) {
    script.Control(
        SetScanout{Header(CommandType::kSetScanout), Rect{0, 0, width, height}, scanout, 1});
  }
  script.Fill(static_cast<uint32_t>(backing), static_cast<uint32_t>(frame_bytes), 0x40);
  script.Control(TransferToHost2d{Header(CommandType::kTransferToHost2d, true, 1),
                                  Rect{0, 0, width, height}, 0, 1, 0});
  script.Control(
      ResourceFlush{Header(CommandType::kResourceFlush, true, 2), Rect{0, 0, width, height}, 1, 0});
}

// A damaged rectangle redrawn, as a console cursor blink or a window move does.
void Damage(GpuScript& script, uint32_t width, Rect rect, uint64_t fence) {
  const uint64_t offset = (uint64_t{rect.y} * width + rect.x) * 4;
  script.Control(
      TransferToHost2d{Header(CommandType::kTransferToHost2d, true, fence), rect, offset, 1, 0});
  script.Control(ResourceFlush{Header(CommandType::kResourceFlush, true, fence + 1), rect, 1, 0});
}

// The hardware cursor: a 64x64 ARGB resource, its image, then moves.
void Cursor(GpuScript& script, uint32_t id) {
  const uint64_t backing = 0x600000;
  script.Control(Create2d(id, Format::kB8G8R8A8Unorm, 64, 64));
  AttachPages(script, id, backing, 64 * 64 * 4, false);
  script.Fill(static_cast<uint32_t>(backing), 64 * 64 * 4, 0xc0);
  script.Control(TransferToHost2d{Header(CommandType::kTransferToHost2d, true, 10),
                                  Rect{0, 0, 64, 64}, 0, id, 0});
  UpdateCursor update{};
  update.hdr = Header(CommandType::kUpdateCursor);
  update.pos = CursorPos{0, 10, 20, 0};
  update.resource_id = id;
  update.hot_x = 1;
  update.hot_y = 2;
  script.Cursor(update);
  UpdateCursor move = update;
  move.hdr = Header(CommandType::kMoveCursor);
  move.pos = CursorPos{0, 30, 40, 0};
  script.Cursor(move);
  UpdateCursor hide = update;
  hide.resource_id = 0;
  script.Cursor(hide);
}

// A guest blob (what Linux makes a dumb buffer with RESOURCE_BLOB and no VIRGL): its pages,
// RESOURCE_CREATE_BLOB, SET_SCANOUT_BLOB with a padded stride, the TRANSFER_TO_HOST_2D Linux
// still sends, and a flush.
void GuestBlobFrame(GpuScript& script, uint32_t id, Format format, uint32_t width, uint32_t height,
                    uint64_t address, bool scattered) {
  const uint32_t stride = width * 4 + 64;
  const uint64_t size = (uint64_t{stride} * height + 4095) & ~uint64_t{4095};
  ResourceCreateBlob create{};
  create.hdr = Header(CommandType::kResourceCreateBlob);
  create.resource_id = id;
  create.blob_mem = vgpu::virtio_gpu::blob::kBlobMemGuest;
  create.blob_flags = vgpu::virtio_gpu::blob::kBlobFlagUseShareable;
  create.nr_entries = static_cast<uint32_t>(size / 4096);
  create.size = size;
  script.Control(create, 0, PageEntries(address, size, scattered));
  // The fuzzer fills at most 4 MiB at a time.
  script.Fill(static_cast<uint32_t>(address),
              static_cast<uint32_t>(std::min<uint64_t>(scattered ? 2 * size : size, 4u << 20)),
              0x5a);
  SetScanoutBlob scanout{};
  scanout.hdr = Header(CommandType::kSetScanoutBlob);
  scanout.r = Rect{0, 0, width, height};
  scanout.resource_id = id;
  scanout.width = width;
  scanout.height = height;
  scanout.format = static_cast<uint32_t>(format);
  scanout.strides[0] = stride;
  script.Control(scanout);
  script.Control(TransferToHost2d{Header(CommandType::kTransferToHost2d), Rect{0, 0, width, height},
                                  0, id, 0});
  script.Control(ResourceFlush{Header(CommandType::kResourceFlush, true, 5),
                               Rect{0, 0, width, height}, id, 0});
}

void Teardown(GpuScript& script, uint32_t id) {
  script.Control(SetScanout{Header(CommandType::kSetScanout), Rect{}, 0, 0});
  script.Control(ResourceDetachBacking{Header(CommandType::kResourceDetachBacking), id, 0});
  script.Control(ResourceUnref{Header(CommandType::kResourceUnref), id, 0});
}

void GpuSeeds(const std::filesystem::path& root) {
  const std::filesystem::path directory = root / "gpu_command_fuzzer";
  const uint64_t qemu10_features =
      (1ull << display::kFeatureEdid) | (1ull << display::kFeatureDmabuf2);
  const uint32_t with_display = kFlagDisplay | kFlagAnswerHandshake | kFlagAckEdid | kFlagAckUuid;
  {
    GpuScript script(kFlagAckEdid | kFlagAckUuid, 0);  // Headless: no display channel.
    LinuxBoot(script, false, false, 1, 64, 48, Format::kB8G8R8X8Unorm, false);
    Damage(script, 64, Rect{8, 8, 16, 8}, 3);
    Cursor(script, 2);
    Teardown(script, 1);
    WriteSeed(directory, "linux_boot_headless", script.data());
  }
  {
    GpuScript script(with_display, qemu10_features);
    LinuxBoot(script, true, true, 1, 64, 48, Format::kB8G8R8X8Unorm, true);
    Damage(script, 64, Rect{0, 40, 64, 8}, 3);
    Cursor(script, 2);
    script.Control(ResourceAssignUuid{Header(CommandType::kResourceAssignUuid), 1, 0});
    Teardown(script, 1);
    WriteSeed(directory, "linux_boot_qemu10_display", script.data());
  }
  {
    // Two heads, a non-native format, requests split over descriptors and regions.
    GpuScript script(with_display, 1ull << display::kFeatureEdid);
    LinuxBoot(script, true, true, 2, 48, 32, Format::kR8G8B8A8Unorm, false);
    script.Control(TransferToHost2d{Header(CommandType::kTransferToHost2d), Rect{4, 4, 8, 8},
                                    (4 * 48 + 4) * 4, 1, 0},
                   0x80 | (3 << 3));
    script.Control(ResourceFlush{Header(CommandType::kResourceFlush), Rect{4, 4, 8, 8}, 1, 0},
                   0x40 | (5 << 3));
    script.Reset();
    LinuxBoot(script, true, true, 1, 32, 32, Format::kX8B8G8R8Unorm, false);
    WriteSeed(directory, "two_heads_rgba_split", script.data());
  }
  {
    // QEMU 7.2: the handshake answers no features, so no GET_EDID goes to the VMM.
    GpuScript script(with_display, 0);
    LinuxBoot(script, true, false, 1, 64, 64, Format::kA8R8G8B8Unorm, false);
    // The framebuffer's backing straddles the two RAM regions.
    script.Control(Create2d(3, Format::kX8R8G8B8Unorm, 32, 32));
    AttachPages(script, 3, kRegionSize - 2 * 4096, 32 * 32 * 4, false);
    script.Control(
        TransferToHost2d{Header(CommandType::kTransferToHost2d), Rect{0, 0, 32, 32}, 0, 3, 0});
    script.Control(SetScanout{Header(CommandType::kSetScanout), Rect{0, 0, 32, 32}, 0, 3});
    Cursor(script, 4);
    WriteSeed(directory, "qemu72_straddling_backing", script.data());
  }
  {
    // A real-size console (1280x800 XRGB, 1000 scattered pages) without a display: the
    // attach-backing path with a long entry list.
    GpuScript script(kFlagAckEdid, 0);
    LinuxBoot(script, false, false, 1, 1280, 800, Format::kB8G8R8X8Unorm, false);
    Damage(script, 1280, Rect{0, 0, 1280, 16}, 3);
    WriteSeed(directory, "linux_console_1280x800", script.data());
  }
  {
    // Guest blobs: a frame shown from the guest's pages, one in a format that is converted, a
    // blob cursor, and the blob unreferenced while shown.
    GpuScript script(with_display | kFlagAckBlob, qemu10_features);
    script.Control(Header(CommandType::kGetDisplayInfo));
    script.DisplayReply(display::Request::kGetDisplayInfo, DisplayInfo(1, 64, 48));
    GuestBlobFrame(script, 1, Format::kB8G8R8X8Unorm, 64, 48, 0x100000, true);
    GuestBlobFrame(script, 2, Format::kR8G8B8A8Unorm, 48, 32, 0x200000, false);
    ResourceCreateBlob cursor{};
    cursor.hdr = Header(CommandType::kResourceCreateBlob);
    cursor.resource_id = 3;
    cursor.blob_mem = vgpu::virtio_gpu::blob::kBlobMemGuest;
    cursor.nr_entries = 4;
    cursor.size = 64 * 64 * 4;
    script.Control(cursor, 0, PageEntries(0x600000, 64 * 64 * 4, false));
    UpdateCursor update{};
    update.hdr = Header(CommandType::kUpdateCursor);
    update.pos = CursorPos{0, 10, 20, 0};
    update.resource_id = 3;
    script.Cursor(update);
    script.Control(ResourceUnref{Header(CommandType::kResourceUnref), 2, 0});
    script.Control(ResourceFlush{Header(CommandType::kResourceFlush), Rect{0, 0, 48, 32}, 2, 0});
    WriteSeed(directory, "guest_blob_scanout_and_cursor", script.data());
  }
  {
    // A 1280x800 blob in scattered pages: more pieces than one display message takes, so the
    // flush goes in several bands.
    GpuScript script(with_display | kFlagAckBlob, qemu10_features);
    GuestBlobFrame(script, 1, Format::kB8G8R8X8Unorm, 1280, 800, 0x100000, true);
    WriteSeed(directory, "guest_blob_1280x800_in_bands", script.data());
  }
}

// ---- vhost_user_message_fuzzer ---------------------------------------------------------------

enum VhostRequest : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kSetMemTable = 5,
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
  kGetConfig = 24,
  kSetConfig = 25,
  kGpuSetSocket = 33,
  kResetDevice = 34,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kNeedReply = 1u << 3;
constexpr uint64_t kUserBase = 0x7f0000000000ull;
// Pool indices (vhost_user_message_fuzzer.cc).
constexpr uint8_t kRamA = 0, kRamB = 1, kCall0 = 3, kKick0 = 4, kKick1 = 5, kGpuSocket = 6;

class VhostScript {
 public:
  VhostScript& Message(uint32_t request, const std::vector<uint8_t>& payload,
                       const std::vector<uint8_t>& fds = {}, uint32_t flags = kVersion) {
    bytes_.Put(uint8_t{0}).Put(static_cast<uint8_t>(fds.size()));
    for (uint8_t fd : fds) bytes_.Put(fd);
    bytes_.Put(request).Put(flags).Put(static_cast<uint16_t>(payload.size())).Append(payload);
    return *this;
  }
  VhostScript& U64(uint32_t request, uint64_t value, const std::vector<uint8_t>& fds = {},
                   uint32_t flags = kVersion) {
    return Message(request, BytesOf(value), fds, flags);
  }
  VhostScript& State(uint32_t request, uint32_t index, uint32_t value) {
    Bytes payload;
    payload.Put(index).Put(value);
    return Message(request, payload.data());
  }
  VhostScript& WriteRam(uint8_t memfd, uint32_t offset, const std::vector<uint8_t>& data) {
    bytes_.Put(uint8_t{3})
        .Put(memfd)
        .Put(offset)
        .Put(static_cast<uint16_t>(data.size()))
        .Append(data);
    return *this;
  }
  const std::vector<uint8_t>& data() const { return bytes_.data(); }

 private:
  Bytes bytes_;
};

std::vector<uint8_t> Region(uint64_t guest, uint64_t size, uint64_t offset, bool single) {
  Bytes bytes;
  if (single) bytes.Put(uint64_t{0});
  bytes.Put(guest).Put(size).Put(kUserBase + guest).Put(offset);
  return bytes.data();
}

// Queue `index` of size 16: descriptors at 0x1000 + 0x1000 * index, avail after them, used at
// +0x800 (in RAM A, guest address 0).
void StartQueue(VhostScript& script, uint32_t index, uint8_t kick) {
  const uint64_t base = 0x10000 + 0x1000 * index;
  script.State(kSetVringNum, index, 16);
  Bytes address;
  address.Put(index)
      .Put(uint32_t{0})
      .Put(kUserBase + base)
      .Put(kUserBase + base + 0x800)
      .Put(kUserBase + base + 0x100)
      .Put(uint64_t{0});
  script.Message(kSetVringAddr, address.data());
  script.State(kSetVringBase, index, 0);
  script.U64(kSetVringKick, index, {kick});
  script.State(kSetVringEnable, index, 1);
}

// One request in queue 0: a readable and a writable descriptor, made available.
void QueueOneRequest(VhostScript& script) {
  Bytes descriptors;
  descriptors.Put(uint64_t{0x20000}).Put(uint32_t{24}).Put(uint16_t{1}).Put(uint16_t{1});
  descriptors.Put(uint64_t{0x21000}).Put(uint32_t{24}).Put(uint16_t{2}).Put(uint16_t{0});
  script.WriteRam(kRamA, 0x10000, descriptors.data());
  Bytes available;
  available.Put(uint16_t{0}).Put(uint16_t{1}).Put(uint16_t{0});
  script.WriteRam(kRamA, 0x10100, available.data());
  Bytes request;
  request.Put(Header(CommandType::kGetDisplayInfo));
  script.WriteRam(kRamA, 0x20000, request.data());
}

void Qemu10Negotiation(VhostScript& script, bool memory_slots) {
  const uint64_t protocol =
      (1ull << 0) | (1ull << 3) | (1ull << 9) | (1ull << 13) | (memory_slots ? 1ull << 15 : 0);
  script.Message(kGetFeatures, {});
  script.Message(kGetProtocolFeatures, {});
  script.U64(kSetProtocolFeatures, protocol);
  script.Message(kGetQueueNum, {});
  if (memory_slots) script.Message(kGetMaxMemSlots, {});
  script.Message(kSetOwner, {});
  script.Message(kGetFeatures, {});
  for (uint32_t queue = 0; queue < 2; ++queue) {
    script.U64(kSetVringCall, queue, {kCall0});
    script.U64(kSetVringErr, queue, {kCall0});
  }
  Bytes config;
  config.Put(uint32_t{0}).Put(uint32_t{16}).Put(uint32_t{0}).Append(std::vector<uint8_t>(16));
  script.Message(kGetConfig, config.data());
  script.Message(kGpuSetSocket, {}, {kGpuSocket});
  const uint64_t features =
      (1ull << 32) | (1ull << 28) | (1ull << 29) | (1ull << 30) | (1ull << 1) | (1ull << 40);
  script.U64(kSetFeatures, features);
  if (memory_slots) {
    script.Message(kAddMemReg, Region(0, 1 << 20, 0, true), {kRamA}, kVersion | kNeedReply);
    script.Message(kAddMemReg, Region(1 << 20, 1 << 20, 0, true), {kRamB}, kVersion | kNeedReply);
  } else {
    Bytes table;
    table.Put(uint32_t{2}).Put(uint32_t{0});
    table.Append(Region(0, 1 << 20, 0, false)).Append(Region(1 << 20, 1 << 20, 0, false));
    script.Message(kSetMemTable, table.data(), {kRamA, kRamB});
  }
}

void VhostSeeds(const std::filesystem::path& root) {
  const std::filesystem::path directory = root / "vhost_user_message_fuzzer";
  {
    VhostScript script;
    QueueOneRequest(script);
    Qemu10Negotiation(script, true);
    StartQueue(script, 0, kKick0);
    StartQueue(script, 1, kKick1);
    script.State(kGetVringBase, 0, 0);
    script.State(kGetVringBase, 1, 0);
    script.Message(kRemMemReg, Region(1 << 20, 1 << 20, 0, true));
    WriteSeed(directory, "qemu10_boot_and_stop", script.data());
  }
  {
    VhostScript script;
    QueueOneRequest(script);
    Qemu10Negotiation(script, false);
    StartQueue(script, 0, kKick0);
    Bytes config;
    config.Put(uint32_t{4}).Put(uint32_t{4}).Put(uint32_t{0}).Put(uint32_t{1});
    script.Message(kSetConfig, config.data());
    script.Message(kResetDevice, {});
    StartQueue(script, 0, kKick0);
    WriteSeed(directory, "set_mem_table_reset_restart", script.data());
  }
}

// ---- virtqueue_fuzzer -------------------------------------------------------------------------

struct Descriptor {
  uint64_t address;
  uint32_t length;
  uint16_t flags;
  uint16_t next;
} __attribute__((packed));

// Guest RAM image plus the 16-byte header of virtqueue_fuzzer.cc.
std::vector<uint8_t> QueueSeed(uint16_t size, uint8_t bits, uint32_t descriptors,
                               uint32_t available, uint32_t used,
                               const std::vector<Descriptor>& table,
                               const std::vector<uint16_t>& heads,
                               const std::vector<std::pair<uint32_t, Descriptor>>& extra = {}) {
  std::vector<uint8_t> ram(0x20000);
  std::memcpy(ram.data() + descriptors, table.data(), table.size() * sizeof(Descriptor));
  for (size_t i = 0; i < heads.size(); ++i) {
    std::memcpy(ram.data() + available + 4 + 2 * i, &heads[i], 2);
  }
  for (const auto& [offset, descriptor] : extra) {
    std::memcpy(ram.data() + offset, &descriptor, sizeof(descriptor));
  }
  // Trim trailing zeros: the fuzzer zero-fills the rest.
  size_t end = ram.size();
  while (end > 0 && ram[end - 1] == 0) --end;
  ram.resize(end);
  Bytes bytes;
  bytes.Put(static_cast<uint16_t>(size - 1))
      .Put(bits)
      .Put(uint8_t{0})
      .Put(descriptors)
      .Put(static_cast<uint16_t>(available / 2))
      .Put(static_cast<uint16_t>(used / 4))
      .Put(uint16_t{0})
      .Put(static_cast<uint16_t>(heads.size()))
      .Append(ram);
  return bytes.data();
}

void VirtqueueSeeds(const std::filesystem::path& root) {
  const std::filesystem::path directory = root / "virtqueue_fuzzer";
  constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;
  // A GPU command: request, then response; and a second chain of one readable descriptor.
  WriteSeed(
      directory, "two_chains",
      QueueSeed(16, 0, 0x0, 0x100, 0x200,
                {{0x1000, 40, kNext, 1}, {0x2000, 24, kWrite, 0}, {0x3000, 56, 0, 0}}, {0, 2}));
  // EVENT_IDX with a call fd; a chain whose buffer crosses into the second region.
  WriteSeed(directory, "event_index_cross_region",
            QueueSeed(8, 2 | 8, 0x0, 0x80, 0x100,
                      {{0xff00, 0x200, kNext, 1}, {0x11000, 0x1000, kWrite, 0}}, {0}));
  // An indirect table of three descriptors (INDIRECT_DESC negotiated).
  WriteSeed(directory, "indirect_table",
            QueueSeed(16, 1 | 16, 0x0, 0x100, 0x200, {{0x4000, 48, kIndirect, 0}}, {0},
                      {{0x4000, {0x5000, 24, kNext, 1}},
                       {0x4010, {0x5100, 16, kNext, 2}},
                       {0x4020, {0x6000, 4096, kWrite, 0}}}));
  // A full ring of 256 with the device continuing at index 250 (wraps the ring).
  std::vector<Descriptor> table;
  std::vector<uint16_t> heads;
  for (uint16_t i = 0; i < 256; ++i) {
    table.push_back({0x8000u + 16u * i, 16, kWrite, 0});
    heads.push_back(i);
  }
  WriteSeed(directory, "full_ring_256", QueueSeed(256, 0, 0x0, 0x1000, 0x2000, table, heads));
}

// ---- display_reply_fuzzer ---------------------------------------------------------------------

template <class T>
std::vector<uint8_t> Reply(display::Request request, const T& payload) {
  Bytes bytes;
  bytes
      .Put(display::MessageHeader{static_cast<uint32_t>(request), display::kReplyFlag,
                                  static_cast<uint32_t>(sizeof(T))})
      .Put(payload);
  return bytes.data();
}

void DisplaySeeds(const std::filesystem::path& root) {
  const std::filesystem::path directory = root / "display_reply_fuzzer";
  const uint64_t qemu10_features =
      (1ull << display::kFeatureEdid) | (1ull << display::kFeatureDmabuf2);
  // For the parser: reply streams.
  {
    Bytes bytes;
    bytes.Put(static_cast<uint8_t>(display::Request::kGetDisplayInfo))
        .Append(Reply(display::Request::kGetDisplayInfo, DisplayInfo(2, 1280, 800)))
        .Append(Reply(display::Request::kGetDisplayInfo, DisplayInfo(1, 640, 480)));
    WriteSeed(directory, "parser_display_info", bytes.data());
  }
  {
    Bytes bytes;
    bytes.Put(static_cast<uint8_t>(display::Request::kGetEdid))
        .Append(Reply(display::Request::kGetEdid, Edid()));
    WriteSeed(directory, "parser_edid", bytes.data());
  }
  // For the channel: QEMU 10's session (handshake, display info, EDID, output, reboot).
  auto write_op = [](Bytes& bytes, const std::vector<uint8_t>& reply) {
    bytes.Put(uint8_t{0}).Put(static_cast<uint16_t>(reply.size())).Append(reply);
  };
  {
    Bytes bytes;
    bytes.Put(uint8_t{0});
    write_op(bytes, Reply(display::Request::kGetProtocolFeatures, qemu10_features));
    bytes.Put(uint8_t{1});
    write_op(bytes, Reply(display::Request::kGetDisplayInfo, DisplayInfo(1, 1280, 800)));
    bytes.Put(uint8_t{2}).Put(uint8_t{0});
    write_op(bytes, Reply(display::Request::kGetEdid, Edid()));
    bytes.Put(uint8_t{3}).Put(uint8_t{0}).Put(uint16_t{64}).Put(uint16_t{48});
    bytes.Put(uint8_t{4}).Put(uint8_t{0}).Put(uint8_t{2}).Put(uint8_t{3}).Put(uint8_t{0x77});
    bytes.Put(uint8_t{5}).Put(uint8_t{2}).Put(uint8_t{0});
    bytes.Put(uint8_t{5}).Put(uint8_t{0}).Put(uint8_t{0});
    bytes.Put(uint8_t{6});
    write_op(bytes, Reply(display::Request::kGetProtocolFeatures, uint64_t{0}));
    bytes.Put(uint8_t{1}).Put(uint8_t{2}).Put(uint8_t{0});
    bytes.Put(uint8_t{7});
    WriteSeed(directory, "channel_qemu10_session", bytes.data());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIRECTORY\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  GpuSeeds(root);
  VhostSeeds(root);
  VirtqueueSeeds(root);
  DisplaySeeds(root);
  return 0;
}
