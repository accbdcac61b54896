#!/usr/bin/env python3
"""Turns a recording of real guest traffic into gpu_command_fuzzer seeds.

The daemon records every control-queue request when VHOST_DEVICE_GPU_RECORD_CONTROL names a
file (src/gpu/command_recorder.h: records of u32 magic "V3DR", u32 length, the request bytes).
This script cuts the recording into seeds of at most --commands requests each, in the fuzzer's
input format (fuzz/gpu_command_fuzzer.cc): a prologue (flags: display attached, the VMM answers
the handshake, EDID acked; protocol features EDID|DMABUF2 like QEMU 10), then one control record
per request with a 4096-byte writable buffer.

A real guest's backing pages lie anywhere in its RAM (512 MiB in the end-to-end tests), the
fuzzer's RAM is 16 MiB: RESOURCE_ATTACH_BACKING entries are moved into it (page-aligned, lengths
kept), so the recorded sequences reach the copy paths instead of failing their bounds checks.

Usage: fuzz/seeds_from_recording.py RECORDING OUTPUT_DIR PREFIX [--commands N]
"""
import argparse
import os
import struct
import sys

RECORD_MAGIC = 0x52443356
ATTACH_BACKING = 0x0106
FUZZ_RAM = 16 << 20
BACKING_AREA = 0x100000  # Past the fuzzer's request (0x1000) and response (0x18000) areas.
PROLOGUE_FLAGS = 0x1 | 0x2 | 0x4  # kFlagDisplay | kFlagAnswerHandshake | kFlagAckEdid.
PROTOCOL_FEATURES = 0x3  # EDID | DMABUF2, what QEMU 10 answers.
CONTROL_RECORD = 0


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("output_dir")
    parser.add_argument("prefix")
    parser.add_argument("--commands", type=int, default=48)
    arguments = parser.parse_args()
    requests = [move_backing_into_fuzz_ram(r) for r in read_records(arguments.recording)]
    requests = [r for r in requests if len(r) <= 0xffff]
    os.makedirs(arguments.output_dir, exist_ok=True)
    written = 0
    for start in range(0, len(requests), arguments.commands):
        seed = bytearray(struct.pack("<IQ", PROLOGUE_FLAGS, PROTOCOL_FEATURES))
        for request in requests[start:start + arguments.commands]:
            seed += struct.pack("<BBH", CONTROL_RECORD, 0, len(request)) + request
        name = f"{arguments.prefix}-{start // arguments.commands:03d}"
        with open(os.path.join(arguments.output_dir, name), "wb") as output:
            output.write(seed)
        written += 1
    print(f"{len(requests)} requests -> {written} seeds in {arguments.output_dir}")


if __name__ == "__main__":
    main()
