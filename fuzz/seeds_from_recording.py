#!/usr/bin/env python3
"""Turns recordings of real traffic into fuzzer seeds, in each fuzzer's input format.

The daemon records what it receives when these environment variables name files
(src/gpu/command_recorder.h: records of u32 magic "V3DR", u32 length, the record's bytes):

  --target gpu_command (default)  VHOST_DEVICE_GPU_RECORD_CONTROL: control-queue requests.
  --target vhost_user_message     VHOST_DEVICE_GPU_RECORD_VHOST_USER: vhost-user messages.
  --target display_reply          VHOST_DEVICE_GPU_RECORD_DISPLAY: reads from the display socket.
  --target virtqueue              VHOST_DEVICE_GPU_RECORD_VIRTQUEUE: ring state at kicks.

gpu_command: the requests cut into seeds of at most --commands requests each
(fuzz/gpu_command_fuzzer.cc): a prologue (flags: display attached, the VMM answers the
handshake, EDID acked; protocol features EDID|DMABUF2 like QEMU 10), then one control record per
request with a 4096-byte writable buffer. A real guest's backing pages lie anywhere in its RAM
(512 MiB in the end-to-end tests), the fuzzer's RAM is 16 MiB: RESOURCE_ATTACH_BACKING entries are
moved into it (page-aligned, lengths kept), so the recorded sequences reach the copy paths
instead of failing their bounds checks.

vhost_user_message: one seed per recording (fuzz/vhost_user_message_fuzzer.cc), every message
with its fds taken from the fuzzer's pool by kind: memfds for guest RAM (one per region), the
eventfds for call/err (3) and kick (4 for queue 0, 5 for queue 1), the socket for the display
socket. The fuzzer's memfds are 1 MiB: each memory region shrinks to its memfd, and the rings
(SET_VRING_ADDR) move into it, queue q at 0x40000 * q, keeping their relative layout. With
--rings (the same session's VHOST_DEVICE_GPU_RECORD_VIRTQUEUE recording), each queue's first
recorded ring state is written there, so that the rings hold the guest's real chains when they
start.

display_reply: one channel seed per recording (fuzz/display_reply_fuzzer.cc): each read becomes
an op 0 write of the same bytes, preceded by the request op the reply answers (1 for
GET_DISPLAY_INFO, 2 for GET_EDID of scanout 0; the handshake's GET_PROTOCOL_FEATURES is sent by
the channel itself), a new socket (an empty record) becomes op 6, and the session ends with op 7
(QEMU closes its end when it quits). Plus one parser seed per reply type: the type, then every
reply of that type back to back.

virtqueue: one seed per distinct ring state (fuzz/virtqueue_fuzzer.cc): descriptor table at 0,
available and used rings after it, then the indirect tables and buffers of the chains made
available, moved into the fuzzer's 128 KiB of RAM (descriptor addresses rewritten; writable
buffers zeroed). States that differ only in addresses and indices give one seed.

Usage: fuzz/seeds_from_recording.py RECORDING OUTPUT_DIR PREFIX [--target T] [--commands N]
                                    [--rings RECORDING]
"""
import argparse
import os
import struct
import sys

RECORD_MAGIC = 0x52443356


def read_records(path):
    with open(path, "rb") as recording:
        data = recording.read()
    offset = 0
    while offset + 8 <= len(data):
        magic, length = struct.unpack_from("<II", data, offset)
        if magic != RECORD_MAGIC:
            sys.exit(f"{path}: bad magic at offset {offset}")
        offset += 8
        yield data[offset:offset + length]
        offset += length


def align(value, alignment):
    return (value + alignment - 1) & ~(alignment - 1)


# ---- gpu_command_fuzzer -----------------------------------------------------------------------

ATTACH_BACKING = 0x0106
FUZZ_RAM = 16 << 20
BACKING_AREA = 0x100000  # Past the fuzzer's request (0x1000) and response (0x18000) areas.
PROLOGUE_FLAGS = 0x1 | 0x2 | 0x4  # kFlagDisplay | kFlagAnswerHandshake | kFlagAckEdid.
PROTOCOL_FEATURES = 0x3  # EDID | DMABUF2, what QEMU 10 answers.
CONTROL_RECORD = 0


def move_backing_into_fuzz_ram(request):
    if len(request) < 32 or struct.unpack_from("<I", request, 0)[0] != ATTACH_BACKING:
        return request
    moved = bytearray(request)
    entries = struct.unpack_from("<I", moved, 28)[0]
    cursor = BACKING_AREA
    for index in range(entries):
        at = 32 + 16 * index
        if at + 16 > len(moved):
            break
        _, length, padding = struct.unpack_from("<QII", moved, at)
        if cursor + length > FUZZ_RAM:
            cursor = BACKING_AREA
        struct.pack_into("<QII", moved, at, cursor, length, padding)
        cursor = (cursor + length + 4095) & ~4095
    return bytes(moved)


def gpu_command_seeds(records, arguments):
    requests = [move_backing_into_fuzz_ram(r) for r in records]
    requests = [r for r in requests if len(r) <= 0xffff]
    for start in range(0, len(requests), arguments.commands):
        seed = bytearray(struct.pack("<IQ", PROLOGUE_FLAGS, PROTOCOL_FEATURES))
        for request in requests[start:start + arguments.commands]:
            seed += struct.pack("<BBH", CONTROL_RECORD, 0, len(request)) + request
        yield f"{start // arguments.commands:03d}", bytes(seed)


# ---- Ring state (virtio/ring_record.h), shared by virtqueue and vhost_user_message -----------

DESCRIPTOR_NEXT = 1
DESCRIPTOR_WRITE = 2
DESCRIPTOR_INDIRECT = 4
RING_INDIRECT = 1
RING_EVENT_INDEX = 2


class RingRecord:
    """One VHOST_DEVICE_GPU_RECORD_VIRTQUEUE record."""

    def __init__(self, record):
        (self.queue_index, self.size, self.flags, _, self.next_available,
         piece_count) = struct.unpack_from("<HHBBHI", record, 0)
        offset = 12
        self.table = record[offset:offset + 16 * self.size]
        offset += 16 * self.size
        self.available = record[offset:offset + 6 + 2 * self.size]
        offset += 6 + 2 * self.size
        self.used = record[offset:offset + 6 + 8 * self.size]
        offset += 6 + 8 * self.size
        self.pieces = {}
        for _ in range(piece_count):
            address, length = struct.unpack_from("<QI", record, offset)
            offset += 12
            self.pieces.setdefault(address, record[offset:offset + length])
            offset += length
        self.available_index = struct.unpack_from("<H", self.available, 2)[0]

    def heads(self):
        pending = min((self.available_index - self.next_available) & 0xffff, self.size)
        for i in range(pending):
            slot = (self.next_available + i) % self.size
            yield struct.unpack_from("<H", self.available, 4 + 2 * slot)[0]


class RingLayout:
    """Lays a RingRecord out in `area` bytes of RAM whose first byte is guest address `base`.

    The rings go first (descriptor table, available ring, used ring, each aligned as §2.7 asks),
    then the indirect tables and buffers that the available chains point at, at new addresses.
    """

    def __init__(self, ring, base, area):
        self.ring = ring
        self.base = base
        self.ram = bytearray(area)
        size = ring.size
        self.descriptor_offset = 0
        self.available_offset = 16 * size
        self.used_offset = align(self.available_offset + 6 + 2 * size, 4)
        self.cursor = align(self.used_offset + 6 + 8 * size, 16)
        self.moved = {}  # Original (address, length) -> new (address, length).
        self.shape = []  # What the chains look like, addresses left out (dedupes seeds).
        table = bytearray(16 * size)  # Descriptors of no available chain stay zero.
        for head in ring.heads():
            self._relocate_chain(ring.table, size, head, table, False)
        self._put(self.descriptor_offset, table)
        self._put(self.available_offset, ring.available)
        self._put(self.used_offset, ring.used)

    def image(self):
        """The RAM, less its trailing zeros (the fuzzers zero-fill the rest)."""
        return bytes(self.ram).rstrip(b"\0")

    def _put(self, offset, data):
        self.ram[offset:offset + len(data)] = data

    def _place(self, address, length, data, alignment):
        """New guest address and length of a buffer; the data goes there."""
        key = (address, length)
        if key not in self.moved:
            start = align(self.cursor, alignment)
            room = len(self.ram) - start
            if room <= 0:
                self.moved[key] = key  # No room: left where it was (outside the fuzzer's RAM).
            else:
                length = min(length, room)
                self._put(start, data[:length])
                self.cursor = start + length
                self.moved[key] = (self.base + start, length)
        return self.moved[key]

    def _relocate_chain(self, source, entries, start, destination, in_indirect):
        index = start
        steps = 0
        while steps < entries and index < entries:
            address, length, flags, next_index = struct.unpack_from("<QIHH", source, 16 * index)
            if flags & DESCRIPTOR_INDIRECT:
                if in_indirect or address not in self.ring.pieces:
                    return
                indirect_source = self.ring.pieces[address]
                indirect = bytearray(len(indirect_source))
                self.shape.append(("indirect", len(indirect_source)))
                self._relocate_chain(indirect_source, len(indirect_source) // 16, 0, indirect,
                                     True)
                new_address, new_length = self._place(address, len(indirect), indirect, 16)
                struct.pack_into("<QIHH", destination, 16 * index, new_address, new_length,
                                 flags, next_index)
                return
            if flags & DESCRIPTOR_WRITE:
                data = b""  # Zeros: the RAM starts zeroed.
                self.shape.append(("writable", length))
            else:
                data = self.ring.pieces.get(address, b"")
                self.shape.append(("readable", length, data[:4]))
            new_address, new_length = self._place(address, length, data, 8)
            struct.pack_into("<QIHH", destination, 16 * index, new_address, new_length, flags,
                             next_index)
            if not flags & DESCRIPTOR_NEXT:
                return
            index = next_index
            steps += 1


# ---- virtqueue_fuzzer -------------------------------------------------------------------------

VIRTQUEUE_RAM = 0x20000  # The two adjacent 64 KiB regions at guest address 0.
VIRTQUEUE_BIT_INDIRECT = 1
VIRTQUEUE_BIT_EVENT_INDEX = 2
VIRTQUEUE_BIT_CALL_FD = 8  # QEMU always gives a call fd.


def virtqueue_seeds(records, arguments):
    seen = set()
    for record in records:
        ring = RingRecord(record)
        if ring.size > 1024:
            continue
        layout = RingLayout(ring, 0, VIRTQUEUE_RAM)
        shape = (ring.size, ring.flags, tuple(layout.shape))
        if shape in seen:
            continue
        seen.add(shape)
        bits = VIRTQUEUE_BIT_CALL_FD
        if ring.flags & RING_INDIRECT:
            bits |= VIRTQUEUE_BIT_INDIRECT
        if ring.flags & RING_EVENT_INDEX:
            bits |= VIRTQUEUE_BIT_EVENT_INDEX
        header = struct.pack("<HBBIHHHH", ring.size - 1, bits, 0, layout.descriptor_offset,
                             layout.available_offset // 2, layout.used_offset // 4,
                             ring.next_available, ring.available_index)
        yield f"q{ring.queue_index}-{len(seen) - 1:03d}", header + layout.image()


# ---- vhost_user_message_fuzzer ----------------------------------------------------------------

VHOST_SET_FEATURES = 2
VHOST_SET_MEM_TABLE = 5
VHOST_SET_VRING_ADDR = 9
VHOST_SET_VRING_KICK = 12
VHOST_SET_VRING_CALL = 13
VHOST_SET_VRING_ERR = 14
VHOST_ADD_MEM_REG = 37
VHOST_REM_MEM_REG = 38
FD_FILE, FD_ANONYMOUS, FD_SOCKET, FD_PIPE, FD_OTHER = range(5)
POOL_MEMFD_SIZES = (1 << 20, 1 << 20, 4096)
POOL_CALL, POOL_KICK0, POOL_KICK1, POOL_SOCKET, POOL_PIPE = 3, 4, 5, 6, 7
RING_AREA = 0x40000  # Per queue, in the first region's memfd.
MAX_MESSAGES = 512  # The fuzzer's limit per input.


class VhostSession:
    """The fuzzer's view of the memory regions a session set up, to move rings into them."""

    def __init__(self):
        self.regions = {}  # guest address -> (memfd index, user address).
        self.next_memfd = 0

    def shrink_region(self, payload, at):
        """Rewrites the region description at `at` to fit its memfd; returns the memfd index."""
        guest, _, user, _ = struct.unpack_from("<QQQQ", payload, at)
        if guest not in self.regions:
            self.regions[guest] = (min(self.next_memfd, 2), user)
            self.next_memfd += 1
        memfd, user = self.regions[guest]
        struct.pack_into("<QQQQ", payload, at, guest, POOL_MEMFD_SIZES[memfd], user, 0)
        return memfd

    def first_region(self):
        if not self.regions:
            return None
        guest = min(self.regions)
        return guest, self.regions[guest][1]


def vhost_message(request, flags, payload, pool_fds):
    message = struct.pack("<BB", 0, len(pool_fds)) + bytes(pool_fds)
    return message + struct.pack("<IIH", request, flags, len(payload)) + payload


def vhost_memory_write(memfd, offset, data):
    out = b""
    for start in range(0, len(data), 0xffff):
        chunk = data[start:start + 0xffff]
        out += struct.pack("<BBIH", 3, memfd, offset + start, len(chunk)) + chunk
    return out


def first_rings(path):
    """The first recorded ring state of each queue (the guest's first requests)."""
    rings = {}
    for record in read_records(path):
        ring = RingRecord(record)
        rings.setdefault(ring.queue_index, ring)
    return rings


def vhost_user_message_seeds(records, arguments):
    rings = first_rings(arguments.rings) if arguments.rings else {}
    session = VhostSession()
    messages = []
    ring_writes = b""
    for record in records:
        request, flags, size = struct.unpack_from("<III", record, 0)
        fd_count = record[12]
        kinds = list(record[13:13 + fd_count])
        payload = bytearray(record[13 + fd_count:13 + fd_count + size])
        memfds = []
        if request == VHOST_SET_MEM_TABLE and len(payload) >= 8:
            count = struct.unpack_from("<I", payload, 0)[0]
            memfds = [session.shrink_region(payload, 8 + 32 * i)
                      for i in range(count) if 8 + 32 * (i + 1) <= len(payload)]
        elif request in (VHOST_ADD_MEM_REG, VHOST_REM_MEM_REG) and len(payload) >= 40:
            memfds = [session.shrink_region(payload, 8)]
        elif request == VHOST_SET_VRING_ADDR and len(payload) >= 40:
            region = session.first_region()
            index, address_flags, descriptor, used, available, _ = struct.unpack_from(
                "<IIQQQQ", payload, 0)
            if region is not None:
                guest, user = region
                base = RING_AREA * (index % 2)
                new_descriptor = user + base
                ring = rings.get(index)
                if ring is not None:
                    layout = RingLayout(ring, guest + base, RING_AREA)
                    memfd = session.regions[guest][0]
                    ring_writes += vhost_memory_write(memfd, base, layout.image())
                    new_available = new_descriptor + layout.available_offset
                    new_used = new_descriptor + layout.used_offset
                else:
                    new_available = new_descriptor + (available - descriptor) % RING_AREA
                    new_used = new_descriptor + (used - descriptor) % RING_AREA
                struct.pack_into("<IIQQQQ", payload, 0, index, address_flags, new_descriptor,
                                 new_used, new_available, guest + (new_used - user))
        pool = []
        for position, kind in enumerate(kinds):
            if kind == FD_FILE:
                pool.append(memfds[position] if position < len(memfds) else 0)
            elif kind == FD_ANONYMOUS:
                queue = struct.unpack_from("<Q", payload, 0)[0] & 0xff if len(payload) >= 8 else 0
                pool.append((POOL_KICK0 if queue % 2 == 0 else POOL_KICK1)
                            if request == VHOST_SET_VRING_KICK else POOL_CALL)
            elif kind == FD_SOCKET:
                pool.append(POOL_SOCKET)
            else:
                pool.append(POOL_PIPE)
        messages.append(vhost_message(request, flags, bytes(payload), pool))
    for start in range(0, len(messages), MAX_MESSAGES):
        seed = ring_writes + b"".join(messages[start:start + MAX_MESSAGES])
        yield f"{start // MAX_MESSAGES:03d}", seed


# ---- display_reply_fuzzer ---------------------------------------------------------------------

DISPLAY_GET_PROTOCOL_FEATURES = 1
DISPLAY_GET_DISPLAY_INFO = 3
DISPLAY_GET_EDID = 11
OP_WRITE, OP_DISPLAY_INFO, OP_EDID, OP_ATTACH, OP_SHUT = 0, 1, 2, 6, 7


def display_reply_seeds(records, arguments):
    channel = bytearray([0])  # For the parser: no request pending.
    replies = {}  # Request -> every reply to it, in order.
    pending = b""  # Bytes of a reply that spans reads.
    first_socket = True
    for record in records:
        if not record:
            if not first_socket:
                channel.append(OP_ATTACH)
            first_socket = False
            pending = b""
            continue
        # The requests whose replies start in this read are made just before it arrives.
        stream = pending + record
        offset = 0
        while offset + 12 <= len(stream):
            request, _, size = struct.unpack_from("<III", stream, offset)
            if offset >= len(pending):
                if request == DISPLAY_GET_DISPLAY_INFO:
                    channel.append(OP_DISPLAY_INFO)
                elif request == DISPLAY_GET_EDID:
                    channel += bytes([OP_EDID, 0])
            if offset + 12 + size > len(stream):
                break
            replies.setdefault(request, []).append(stream[offset:offset + 12 + size])
            offset += 12 + size
        pending = stream[offset:]
        channel += struct.pack("<BH", OP_WRITE, len(record)) + record
    channel.append(OP_SHUT)
    yield "channel", bytes(channel)
    names = {DISPLAY_GET_PROTOCOL_FEATURES: "protocol_features",
             DISPLAY_GET_DISPLAY_INFO: "display_info", DISPLAY_GET_EDID: "edid"}
    for request, bodies in sorted(replies.items()):
        yield f"parser-{names.get(request, request)}", bytes([request]) + b"".join(bodies)


TARGETS = {
    "gpu_command": gpu_command_seeds,
    "vhost_user_message": vhost_user_message_seeds,
    "display_reply": display_reply_seeds,
    "virtqueue": virtqueue_seeds,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("output_dir")
    parser.add_argument("prefix")
    parser.add_argument("--target", choices=sorted(TARGETS), default="gpu_command")
    parser.add_argument("--commands", type=int, default=48, help="gpu_command: requests per seed")
    parser.add_argument("--rings", help="vhost_user_message: the session's ring recording")
    arguments = parser.parse_args()
    records = list(read_records(arguments.recording))
    os.makedirs(arguments.output_dir, exist_ok=True)
    written = 0
    for suffix, seed in TARGETS[arguments.target](records, arguments):
        with open(os.path.join(arguments.output_dir, f"{arguments.prefix}-{suffix}"),
                  "wb") as output:
            output.write(seed)
        written += 1
    print(f"{len(records)} records -> {written} seeds in {arguments.output_dir}")


if __name__ == "__main__":
    main()
