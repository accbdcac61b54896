#!/usr/bin/env python3
"""End-to-end tests: a real QEMU and a real Linux guest against a vhost-user GPU daemon.

Each case starts the daemon under test (any command: ours, or QEMU's own
/usr/lib/qemu/vhost-user-gpu), boots QEMU under TCG with a vhost-user GPU device connected to it,
has the guest draw a known test pattern, and compares QMP screendumps with the pattern pixel by
pixel, polling until they match or a deadline passes (the guest's writes reach the device
asynchronously).

The guest (kernel + initramfs made by scripts/prepare-e2e-guest.sh, guest side in
tests/e2e/guest/) takes commands on its serial console and answers with "@@vgpu ..." lines; the
harness listens on Unix sockets that QEMU connects to for the serial console and for QMP, so no
file has to be polled for. Every process runs in its own process group and is killed on every
exit path.

Usage:
  e2e.py --daemon 'CMD' --case pci|vga|reboot|two-heads|qemu-kill|qemu-kill-streaming|virgl|demo
         [--guest-dir DIR] [--qemu BINARY] [--keep-artifacts DIR] [--demo-output PNG]
  e2e.py --daemon 'CMD'|qemu-builtin-gl --case glmark2 [--glmark2-args 'ARGS'] [--json FILE]
  e2e.py --daemon BINARY --case libvirt-2d|libvirt-3d [--installed-descriptor]

CMD is split like a shell would; "{socket}" in it is replaced by the daemon's socket path, or,
when absent, "--socket-path SOCKET" is appended; with "{fd}" instead, the daemon serves one end of
a socketpair, "{fd}" replaced by its number, and QEMU gets the other (`-chardev socket,fd=N`), as
libvirt starts a backend. The libvirt cases start libvirtd and virtlogd themselves and let
libvirt run BINARY with its own command line (`virsh screenshot` instead of QMP screendumps). "qemu-builtin-gl" (glmark2 only) runs no daemon:
QEMU's own virtio-gpu-gl-pci renders, shown with `-display gtk,gl=on` on an Xvfb server the
harness starts. Exit status: 0 pass, 1 fail, 77 skip (reason printed), as CTest's
SKIP_RETURN_CODE expects.

Python 3 standard library only.
"""

import argparse
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_SKIP = 77

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREPARE_GUEST_SCRIPT = os.path.join(SOURCE_DIR, "scripts", "prepare-e2e-guest.sh")

# Deadlines in seconds. Under TCG the guest reaches "ready" in about 6 s on a 2-core machine.
BOOT_TIMEOUT = 40.0
DRAW_TIMEOUT = 15.0
# The GL guest: unpacking its 200 MB initramfs, loading Mesa and libLLVM and rendering, under TCG.
GL_BOOT_TIMEOUT = 90.0
GL_DRAW_TIMEOUT = 90.0
GL_SCREEN_TIMEOUT = 30.0
# glmark2: per scene on top of its duration (shader compiles and model loads under TCG).
GLMARK2_SCENE_SETUP_TIMEOUT = 60.0
XVFB_TIMEOUT = 10.0
SCREEN_TIMEOUT = 10.0
STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
QMP_TIMEOUT = 20.0
# How often the screen is sampled while waiting for it to match.
SCREEN_POLL_INTERVAL = 0.1
# qemu-kill-streaming: from "stream" to the frame marker (the guest first computes its patterns),
# and from QEMU's death to the daemon having logged it and closed that connection's descriptors.
STREAM_TIMEOUT = 30.0
RELEASE_TIMEOUT = 10.0
# How often the daemon's log and descriptor table are sampled meanwhile.
RELEASE_POLL_INTERVAL = 0.05

MARKER = "@@vgpu "
PANIC_TEXT = "Kernel panic"


class Skip(Exception):
    """The case cannot run here (missing tool or guest); not a failure of the daemon."""


class Failure(Exception):
    """The case ran and the system under test did not behave as expected."""


# ---------------------------------------------------------------------------------------------
# The test pattern: the same function as PatternPixel() in tests/e2e/guest/pattern.h.

PATTERN_BARS = (0xFFFFFF, 0xFFFF00, 0x00FFFF, 0x00FF00, 0xFF00FF, 0xFF0000, 0x0000FF, 0x000000)
PATTERN_BORDER = 0xFF8000


def pattern_pixel(x, y, width, height, pattern):
    """Returns pixel (x, y) of the test pattern as 0xRRGGBB (see guest/pattern.h)."""
    if x == 0 or y == 0 or x == width - 1 or y == height - 1:
        return PATTERN_BORDER
    half = height // 2
    if y < half:
        return PATTERN_BARS[(x * 8 // width + pattern) % 8]
    red = x * 255 // (width - 1)
    green = (y - half) * 255 // (height - half - 1)
    blue = ((x ^ y) * (pattern + 1)) & 0xFF
    return (red << 16) | (green << 8) | blue


def pattern_image(width, height, pattern):
    """Returns the whole pattern as packed RGB bytes, row by row (the layout of a P6 PPM)."""
    rows = []
    bar_row = None
    for y in range(height):
        if 0 < y < height // 2 and bar_row is not None:
            rows.append(bar_row)  # Every bar row is the same.
            continue
        row = bytearray(width * 3)
        for x in range(width):
            rgb = pattern_pixel(x, y, width, height, pattern)
            row[3 * x:3 * x + 3] = rgb.to_bytes(3, "big")
        row = bytes(row)
        if 0 < y < height // 2:
            bar_row = row
        rows.append(row)
    return b"".join(rows)


# ---------------------------------------------------------------------------------------------
# Images.


class Image:
    """An RGB image, 3 bytes per pixel, rows packed."""

    def __init__(self, width, height, pixels):
        if len(pixels) != width * height * 3:
            raise Failure(f"image of {width}x{height} has {len(pixels)} bytes")
        self.width = width
        self.height = height
        self.pixels = pixels

    @classmethod
    def read_ppm(cls, path):
        """Reads a binary (P6, maxval 255) PPM, the format QMP screendump writes."""
        with open(path, "rb") as file:
            data = file.read()
        # Header: magic, width, height, maxval, separated by whitespace (comments are not used).
        match = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
        if not match or int(match.group(3)) != 255:
            raise Failure(f"{path}: not a P6 PPM with maxval 255")
        width, height = int(match.group(1)), int(match.group(2))
        return cls(width, height, data[match.end():match.end() + width * height * 3])

    @classmethod
    def read_png(cls, path):
        """Reads an 8-bit RGB or RGBA PNG without interlacing, what `virsh screenshot` saves."""
        with open(path, "rb") as file:
            data = file.read()
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            raise Failure(f"{path}: not a PNG")
        position, header, compressed = 8, None, bytearray()
        while position + 8 <= len(data):
            length = int.from_bytes(data[position:position + 4], "big")
            kind = data[position + 4:position + 8]
            body = data[position + 8:position + 8 + length]
            position += 12 + length
            if kind == b"IHDR":
                header = body
            elif kind == b"IDAT":
                compressed += body
            elif kind == b"IEND":
                break
        if header is None or header[8] != 8 or header[9] not in (2, 6) or header[12] != 0:
            raise Failure(f"{path}: not an 8-bit RGB/RGBA PNG without interlacing")
        width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
        channels = 3 if header[9] == 2 else 4
        stride = width * channels
        raw = zlib.decompress(bytes(compressed))
        if len(raw) != height * (stride + 1):
            raise Failure(f"{path}: {len(raw)} bytes of image data for {width}x{height}")
        rows = bytearray(height * stride)
        previous = bytearray(stride)
        for y in range(height):
            kind = raw[y * (stride + 1)]
            row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            PNG_UNFILTER[kind](row, previous, channels)
            rows[y * stride:(y + 1) * stride] = row
            previous = row
        if channels == 4:
            rows = bytearray(b for i, b in enumerate(rows) if i % 4 != 3)
        return cls(width, height, bytes(rows))

    def write_ppm(self, path):
        with open(path, "wb") as file:
            file.write(b"P6\n%d %d\n255\n" % (self.width, self.height))
            file.write(self.pixels)

    def pixel(self, x, y):
        offset = 3 * (y * self.width + x)
        return int.from_bytes(self.pixels[offset:offset + 3], "big")


def _png_none(row, previous, channels):
    pass


def _png_sub(row, previous, channels):
    for i in range(channels, len(row)):
        row[i] = (row[i] + row[i - channels]) & 0xFF


def _png_up(row, previous, channels):
    for i in range(len(row)):
        row[i] = (row[i] + previous[i]) & 0xFF


def _png_average(row, previous, channels):
    for i in range(len(row)):
        left = row[i - channels] if i >= channels else 0
        row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF


def _png_paeth(row, previous, channels):
    for i in range(len(row)):
        a = row[i - channels] if i >= channels else 0
        b = previous[i]
        c = previous[i - channels] if i >= channels else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF


# PNG's row filters (PNG specification, section 9), undone in place.
PNG_UNFILTER = (_png_none, _png_sub, _png_up, _png_average, _png_paeth)


def describe_differences(actual, expected, limit=5):
    """Returns a one-paragraph description of how `actual` differs from `expected`."""
    if (actual.width, actual.height) != (expected.width, expected.height):
        return (f"screen is {actual.width}x{actual.height}, "
                f"expected {expected.width}x{expected.height}")
    mismatches = []
    count = 0
    for index in range(expected.width * expected.height):
        offset = 3 * index
        if actual.pixels[offset:offset + 3] != expected.pixels[offset:offset + 3]:
            count += 1
            if len(mismatches) < limit:
                x, y = index % expected.width, index // expected.width
                mismatches.append(f"({x},{y}) is {actual.pixel(x, y):06x} "
                                  f"expected {expected.pixel(x, y):06x}")
    return f"{count} of {expected.width * expected.height} pixels differ: " + "; ".join(mismatches)


class GlPicture:
    """The picture tests/e2e/guest/gl_draw.c renders on a WIDTH x HEIGHT head (same numbers).

    Pixel coordinates with the origin at the top left: background cleared to CLEAR; a rectangle
    [W/8, 3W/8) x [H/8, 3H/8) in RECTANGLE; a triangle (9W/16, 7H/8), (15W/16, 7H/8),
    (15W/16, 9H/16) in TRIANGLE. The layout is asymmetric in both axes, so a picture shown upside
    down or mirrored fails.

    Tolerance: none on colours. Each channel is n/255, which GL's float-to-unorm8 conversion
    turns back into exactly n, and with blending and dithering off every covered pixel holds
    exactly its shape's colour; the read-back and QEMU's screendump copy 8-bit channels as they
    are. What is left out is geometry an implementation may decide either way: a pixel whose
    centre lies within EDGE_MARGIN pixels of a shape's edge (GL's rasterization rules settle
    ties on an edge, and a diagonal edge's pixels depend on the rasterizer's subpixel precision).
    Every other pixel of the screen (99.5% of 1280x800) must be exact.
    """

    CLEAR = 0x204080
    RECTANGLE = 0xFFC000
    TRIANGLE = 0x00FF60
    EDGE_MARGIN = 1.0

    def __init__(self, width, height):
        self.width = width
        self.height = height
        w, h = float(width), float(height)
        rectangle = ((w / 8, h / 8), (3 * w / 8, h / 8), (3 * w / 8, 3 * h / 8), (w / 8, 3 * h / 8))
        triangle = ((9 * w / 16, 7 * h / 8), (15 * w / 16, 7 * h / 8), (15 * w / 16, 9 * h / 16))
        # Drawn in this order: the later shape wins where they overlap (they do not).
        self.shapes = [(self.TRIANGLE, triangle), (self.RECTANGLE, rectangle)]
        self.rows = [self._row(y) for y in range(height)]
        self.compared = sum(end - start for runs in self.rows for start, end, _ in runs)

    @staticmethod
    def _coverage(polygon, x, y, margin):
        """True inside by more than `margin`, False outside by more, None in between.

        `polygon` is convex; its edges' inner sides are found from its orientation.
        """
        count = len(polygon)
        area = sum(polygon[i][0] * polygon[(i + 1) % count][1] -
                   polygon[(i + 1) % count][0] * polygon[i][1] for i in range(count))
        sign = 1.0 if area > 0 else -1.0
        inside = True
        for i in range(count):
            (x0, y0), (x1, y1) = polygon[i], polygon[(i + 1) % count]
            length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
            distance = sign * ((x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)) / length
            if distance < -margin:
                return False
            if distance <= margin:
                inside = None
        return inside

    def _row(self, y):
        """Row y as runs (start, end, expected RGB bytes) of pixels to compare."""
        expected = bytearray(self.CLEAR.to_bytes(3, "big") * self.width)
        compare = bytearray(b"\x01" * self.width)
        centre_y = y + 0.5
        for colour, polygon in self.shapes:
            left = max(0, int(min(px for px, _ in polygon) - self.EDGE_MARGIN) - 1)
            right = min(self.width, int(max(px for px, _ in polygon) + self.EDGE_MARGIN) + 2)
            top = min(py for _, py in polygon) - self.EDGE_MARGIN - 1
            bottom = max(py for _, py in polygon) + self.EDGE_MARGIN + 1
            if not top <= centre_y <= bottom:
                continue
            for x in range(left, right):
                inside = self._coverage(polygon, x + 0.5, centre_y, self.EDGE_MARGIN)
                if inside is None:
                    compare[x] = 0
                elif inside:
                    expected[3 * x:3 * x + 3] = colour.to_bytes(3, "big")
        runs = []
        start = compare.find(b"\x01")
        while start >= 0:
            end = compare.find(b"\x00", start)
            end = self.width if end < 0 else end
            runs.append((start, end, bytes(expected[3 * start:3 * end])))
            start = compare.find(b"\x01", end)
        return runs

    def differences(self, image, limit=5):
        """Returns (count of differing compared pixels, description of the first `limit`)."""
        if (image.width, image.height) != (self.width, self.height):
            return -1, (f"screen is {image.width}x{image.height}, "
                        f"expected {self.width}x{self.height}")
        count = 0
        details = []
        for y, runs in enumerate(self.rows):
            row = 3 * y * self.width
            for start, end, expected in runs:
                if image.pixels[row + 3 * start:row + 3 * end] == expected:
                    continue
                for x in range(start, end):
                    want = int.from_bytes(expected[3 * (x - start):3 * (x - start) + 3], "big")
                    if image.pixel(x, y) != want:
                        count += 1
                        if len(details) < limit:
                            details.append(f"({x},{y}) is {image.pixel(x, y):06x} "
                                           f"expected {want:06x}")
        return count, "; ".join(details)


# ---------------------------------------------------------------------------------------------
# Processes, serial console, QMP.


class Process:
    """A child process in a process group of its own, output to a log file."""

    def __init__(self, name, argv, log_path, env=None, pass_fds=()):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          env=dict(os.environ, **env) if env else None,
                                          pass_fds=pass_fds)

    def exit_status(self):
        """None while running, else the exit status (negative: killed by that signal)."""
        return self.popen.poll()

    def check_running(self):
        status = self.exit_status()
        if status is not None:
            raise Failure(f"{self.name} exited with status {status}; log: {self.log_tail()}")

    def kill(self, signal_number=signal.SIGKILL):
        try:
            os.killpg(self.popen.pid, signal_number)
        except ProcessLookupError:
            pass

    def stop(self):
        """Terminates the whole process group: SIGTERM, then SIGKILL after STOP_TIMEOUT."""
        self.kill(signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.popen.wait()
        # Children that outlived the leader still belong to the group.
        self.kill(signal.SIGKILL)

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, "r", errors="replace") as log:
                return "".join(log.readlines()[-lines:]).strip() or "(empty)"
        except OSError:
            return "(unreadable)"


def listen_unix(path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    return listener


def accept_from(listener, process, what):
    """Accepts QEMU's connection to `listener`, failing early if QEMU exits first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    listener.settimeout(0.2)
    while True:
        try:
            connection, _ = listener.accept()
            connection.settimeout(None)
            return connection
        except socket.timeout:
            process.check_running()
            if time.monotonic() > deadline:
                raise Failure(f"QEMU did not connect to the {what} socket")


class SerialConsole:
    """The guest's serial console: a thread logs every line and collects "@@vgpu" markers."""

    def __init__(self, connection, log_path):
        self.connection = connection
        self.log = open(log_path, "w", errors="replace")
        self.condition = threading.Condition()
        self.markers = []  # Marker lines (without the prefix), in arrival order.
        self.consumed = 0  # Markers before this index have been waited for already.
        self.panic = None
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        pending = b""
        while True:
            try:
                data = self.connection.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._handle_line(raw.decode("utf-8", "replace").rstrip("\r"))
        with self.condition:
            self.closed = True
            self.condition.notify_all()

    def _handle_line(self, line):
        self.log.write(line + "\n")
        self.log.flush()
        with self.condition:
            position = line.find(MARKER)
            if position >= 0:
                self.markers.append(line[position + len(MARKER):].strip())
            elif PANIC_TEXT in line and self.panic is None:
                self.panic = line
            self.condition.notify_all()

    def send(self, command):
        self.connection.sendall(command.encode() + b"\n")

    def wait_for(self, pattern, timeout, processes):
        """Waits for the next marker matching regex `pattern`; returns its match object.

        Markers before it are skipped, except "error ..." markers, which fail the case. Every
        0.2 s checks that `processes` are still running, so a crash fails fast.
        """
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                while self.consumed < len(self.markers):
                    marker = self.markers[self.consumed]
                    self.consumed += 1
                    if marker.startswith("error"):
                        raise Failure(f"guest reported: {marker}")
                    match = re.fullmatch(pattern, marker)
                    if match:
                        return match
                if self.panic:
                    raise Failure(f"guest kernel panic: {self.panic}")
                if self.closed:
                    raise Failure(f"serial console closed while waiting for '{pattern}'")
                for process in processes:
                    process.check_running()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Failure(f"no '{pattern}' from the guest within {timeout:.0f} s")
                self.condition.wait(min(remaining, 0.2))

    def close(self):
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()
        self.thread.join(STOP_TIMEOUT)
        self.log.close()


class Qmp:
    """A minimal QMP client (one command at a time; asynchronous events are skipped)."""

    def __init__(self, connection):
        self.connection = connection
        # A QEMU stuck (e.g. on an unresponsive vhost-user back-end) must fail the case, not hang.
        connection.settimeout(QMP_TIMEOUT)
        self.file = connection.makefile("rwb")
        greeting = self._read_message()
        if "QMP" not in greeting:
            raise Failure(f"unexpected QMP greeting {greeting}")
        self.execute("qmp_capabilities")

    def _read_message(self):
        try:
            line = self.file.readline()
        except OSError as error:  # socket.timeout is an OSError.
            raise Failure(f"no answer on QMP: {error}") from None
        if not line:
            raise Failure("QMP connection closed")
        return json.loads(line)

    def execute(self, command, **arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.file.write(json.dumps(request).encode() + b"\n")
        self.file.flush()
        while True:
            reply = self._read_message()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise Failure(f"QMP {command} failed: {reply['error'].get('desc')}")
            # Anything else is an event; skip it.

    def close(self):
        self.file.close()
        self.connection.close()


# ---------------------------------------------------------------------------------------------
# The system under test.


class Daemon:
    """The vhost-user GPU daemon under test: listening on a socket in the work directory, or,
    with "{fd}" in its command, serving one end of a socketpair whose other end QEMU gets, as
    libvirt starts a backend (`--fd=N`, QEMU's `-chardev socket,fd=M`)."""

    def __init__(self, command, work_dir):
        self.socket_path = os.path.join(work_dir, "gpu.sock")
        self.qemu_end = None
        pass_fds = ()
        if "{fd}" in command:
            daemon_end, self.qemu_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            argv = [word.replace("{fd}", str(daemon_end.fileno()))
                    for word in shlex.split(command)]
            pass_fds = (daemon_end.fileno(),)
        elif "{socket}" in command:
            argv = [word.replace("{socket}", self.socket_path) for word in shlex.split(command)]
        else:
            argv = shlex.split(command) + ["--socket-path", self.socket_path]
        if not argv or shutil.which(argv[0]) is None:
            raise Skip(f"daemon {argv[0] if argv else '(empty)'} is not executable")
        self.process = Process("daemon", argv, os.path.join(work_dir, "daemon.log"),
                               pass_fds=pass_fds)
        if self.qemu_end is not None:
            daemon_end.close()  # The daemon holds it now.
            return
        try:
            self._wait_for_socket()
        except BaseException:
            self.stop()  # The caller never gets this object to clean up.
            raise

    def release_qemu_end(self):
        if self.qemu_end is not None:
            self.qemu_end.close()
            self.qemu_end = None

    def chardev(self):
        """QEMU's -chardev options (after "socket,id=vgpu,") and the fds QEMU must inherit."""
        if self.qemu_end is not None:
            return f"fd={self.qemu_end.fileno()}", (self.qemu_end.fileno(),)
        return f"path={self.socket_path}", ()

    def _wait_for_socket(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        # The daemon has no readiness notification; its socket appearing is the signal.
        while not os.path.exists(self.socket_path):
            self.process.check_running()
            if time.monotonic() > deadline:
                raise Failure(f"daemon did not create {self.socket_path}")
            time.sleep(0.05)

    def stop(self):
        self.process.stop()
        self.release_qemu_end()


class Xvfb:
    """An X server without a screen, for QEMU's GTK display with GL (glmark2 on the built-in
    virtio-gpu-gl-pci, which needs a GL display to render at all)."""

    def __init__(self, work_dir):
        if shutil.which("Xvfb") is None:
            raise Skip("Xvfb not found (scripts/install-deps.sh installs xvfb)")
        # A display number of our own: the lowest one whose lock file does not exist.
        number = next(n for n in range(90, 200) if not os.path.exists(f"/tmp/.X{n}-lock"))
        self.display = f":{number}"
        self.process = Process("xvfb", ["Xvfb", self.display, "-screen", "0", "1920x1080x24",
                                        "-nolisten", "tcp"],
                               os.path.join(work_dir, "xvfb.log"))
        deadline = time.monotonic() + XVFB_TIMEOUT
        # Its socket appearing is the signal that it serves.
        while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
            self.process.check_running()
            if time.monotonic() > deadline:
                self.process.stop()
                raise Failure(f"Xvfb did not start on {self.display}")
            time.sleep(0.05)

    def stop(self):
        self.process.stop()


class Qemu:
    """One QEMU process with its serial console and QMP connection."""

    def __init__(self, binary, guest, daemon_chardev, device, work_dir, name="qemu",
                 max_outputs=None, memory="512M", initramfs=None, display="none", env=None,
                 kernel_arguments=""):
        self.started = time.monotonic()
        self.process = None
        self.serial = None
        self.qmp = None
        serial_path = os.path.join(work_dir, f"{name}-serial.sock")
        qmp_path = os.path.join(work_dir, f"{name}-qmp.sock")
        # daemon_chardev None: a device of QEMU's own (no vhost-user back-end).
        device_options = f"{device},id=gpu0" + (",chardev=vgpu" if daemon_chardev else "")
        if max_outputs is not None:
            device_options += f",max_outputs={max_outputs}"
        chardev_options, pass_fds = daemon_chardev or (None, ())
        backend = ["-chardev", f"socket,id=vgpu,{chardev_options}"] if daemon_chardev else []
        argv = [
            binary, "-nodefaults", "-no-user-config",
            # vhost-user needs the guest RAM in a shareable file (here a memfd).
            "-machine", "q35,accel=tcg,memory-backend=mem0", "-m", memory,
            "-object", f"memory-backend-memfd,id=mem0,size={memory},share=on",
            *backend,
            "-device", device_options,
            "-vga", "none", "-display", display,
            # QEMU connects to our listening sockets (client mode): no socket file to wait for.
            "-chardev", f"socket,id=serial0,path={serial_path}", "-serial", "chardev:serial0",
            "-chardev", f"socket,id=qmp0,path={qmp_path}", "-mon", "chardev=qmp0,mode=control",
            "-kernel", guest.kernel, "-initrd", initramfs or guest.initramfs,
            "-append", f"console=ttyS0 loglevel=4 {kernel_arguments}".strip(),
        ]
        serial_listener = listen_unix(serial_path)
        qmp_listener = listen_unix(qmp_path)
        try:
            self.process = Process(name, argv, os.path.join(work_dir, f"{name}.log"), env,
                                   pass_fds)
            self.serial = SerialConsole(accept_from(serial_listener, self.process, "serial"),
                                        os.path.join(work_dir, f"{name}-serial.log"))
            self.qmp = Qmp(accept_from(qmp_listener, self.process, "QMP"))
        except BaseException:
            self.stop()  # The caller never gets this object to clean up.
            raise
        finally:
            serial_listener.close()
            qmp_listener.close()

    def elapsed(self):
        return time.monotonic() - self.started

    def screendump(self, head, path):
        """QMP screendump of `head` into `path`.ppm, read back."""
        self.qmp.execute("screendump", filename=path + ".ppm", format="ppm", device="gpu0",
                         head=head)
        return Image.read_ppm(path + ".ppm")

    def stop(self):
        if self.qmp:
            self.qmp.close()
        if self.process:
            self.process.stop()
        if self.serial:
            self.serial.close()


# libvirt: a libvirtd of the case's own in system mode (as a host's administrator runs it), with
# a vhost-user descriptor that puts the daemon under test first (libvirt reads the descriptors of
# /usr/share/qemu/vhost-user and /etc/qemu/vhost-user in file-name order).
LIBVIRT_URI = "qemu:///system"
LIBVIRT_DESCRIPTOR = "/etc/qemu/vhost-user/10-vhost-device-gpu-e2e.json"
LIBVIRT_TIMEOUT = 30.0
LIBVIRT_DOMAIN = "vgpu-e2e"


def virsh(*arguments, check=True):
    result = subprocess.run(["virsh", "-c", LIBVIRT_URI, *arguments], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=QMP_TIMEOUT)
    if check and result.returncode != 0:
        raise Failure(f"virsh {' '.join(arguments)}: {result.stdout.strip()}")
    return result


def processes_running(binary, argument_prefix=None):
    """{pid: argv} of the processes whose executable is `binary` (and, with `argument_prefix`,
    that have an argument starting with it)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/exe") != binary:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                argv = [word.decode() for word in file.read().split(b"\0") if word]
        except OSError:
            continue  # Gone meanwhile, or not ours to look at.
        if argument_prefix is None or any(word.startswith(argument_prefix) for word in argv):
            found[int(entry)] = argv
    return found


class WatchedPid:
    """A process the case did not start (libvirt did), checked for being alive."""

    def __init__(self, name, pid):
        self.name = name
        self.pid = pid

    def check_running(self):
        if not os.path.exists(f"/proc/{self.pid}"):
            raise Failure(f"{self.name} (pid {self.pid}) exited")


# Where the Debian package (and `cmake --install` with prefix /usr) puts the daemon's descriptor.
INSTALLED_DESCRIPTOR = "/usr/share/qemu/vhost-user/40-vhost-device-gpu.json"


class LibvirtHost:
    """libvirtd and virtlogd started for the case, and the descriptor naming the daemon binary:
    one the case writes, or with `installed_descriptor` the one the package installed."""

    def __init__(self, work_dir, daemon_binary, installed_descriptor=False):
        for tool in ("libvirtd", "virtlogd", "virsh"):
            if shutil.which(tool) is None:
                raise Skip(f"{tool} not found (scripts/install-deps.sh installs libvirt)")
        if os.geteuid() != 0:
            raise Skip("the libvirt cases run libvirtd in system mode, as root")
        if virsh("version", check=False).returncode == 0:
            raise Skip(f"a libvirt daemon already serves {LIBVIRT_URI}; these cases start their own")
        # libvirt runs the daemon as its unprivileged user: every directory above must let it in.
        directory = os.path.dirname(daemon_binary)
        while directory != "/":
            if not os.stat(directory).st_mode & 0o001:
                raise Skip(f"{directory} is not searchable by other users, so libvirt's user "
                           f"cannot run {daemon_binary}")
            directory = os.path.dirname(directory)
        self.work_dir = work_dir
        self.daemon_binary = daemon_binary
        self.processes = []
        self.domain_started = False
        self.wrote_descriptor = not installed_descriptor
        self.made_descriptor_dir = False
        if installed_descriptor:
            try:
                with open(INSTALLED_DESCRIPTOR) as descriptor:
                    named = json.load(descriptor).get("binary")
            except (OSError, ValueError) as error:
                raise Failure(f"no usable installed descriptor {INSTALLED_DESCRIPTOR}: {error}")
            if named != daemon_binary:
                raise Failure(f"{INSTALLED_DESCRIPTOR} names {named}, not {daemon_binary}")
        try:
            if self.wrote_descriptor:
                directory = os.path.dirname(LIBVIRT_DESCRIPTOR)
                if not os.path.isdir(directory):
                    os.makedirs(directory)
                    self.made_descriptor_dir = True
                # Overwrites one a killed run left behind.
                with open(LIBVIRT_DESCRIPTOR, "w") as descriptor:
                    json.dump({"description": "vhost-device-gpu under test (e2e.py)",
                               "type": "gpu", "binary": daemon_binary}, descriptor)
            # In the foreground, so that the case stops exactly what it started.
            self.processes.append(Process("virtlogd", ["virtlogd"],
                                          os.path.join(work_dir, "virtlogd.log")))
            self.processes.append(Process("libvirtd", ["libvirtd"],
                                          os.path.join(work_dir, "libvirtd.log")))
            deadline = time.monotonic() + LIBVIRT_TIMEOUT
            while virsh("version", check=False).returncode != 0:
                for process in self.processes:
                    process.check_running()
                if time.monotonic() > deadline:
                    raise Failure(f"libvirtd did not answer on {LIBVIRT_URI}")
                time.sleep(0.1)
            # A domain of a run that was killed (libvirt keeps transient domains running).
            if virsh("domstate", LIBVIRT_DOMAIN, check=False).returncode == 0:
                virsh("destroy", LIBVIRT_DOMAIN, check=False)
        except BaseException:
            self.stop()
            raise

    def start_domain(self, guest, initramfs, accel3d, memory_mib):
        """Creates the transient domain; returns a LibvirtDomain once its serial is connected."""
        # libvirt hands the kernel to QEMU's user, and relabels it: copies of our own.
        os.chmod(self.work_dir, 0o755)
        kernel = os.path.join(self.work_dir, "vmlinuz")
        initrd = os.path.join(self.work_dir, "initramfs.img")
        shutil.copyfile(guest.kernel, kernel)
        shutil.copyfile(initramfs, initrd)
        serial_path = os.path.join(self.work_dir, "libvirt-serial.sock")
        acceleration = "<acceleration accel3d='yes'/>" if accel3d else ""
        xml = f"""<domain type='qemu'>
  <name>{LIBVIRT_DOMAIN}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{kernel}</kernel><initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 loglevel=4</cmdline></os>
  <devices>
    <serial type='unix'><source mode='connect' path='{serial_path}'/></serial>
    <video><model type='virtio' heads='1'>{acceleration}</model><driver name='vhostuser'/></video>
  </devices>
</domain>
"""
        xml_path = os.path.join(self.work_dir, "domain.xml")
        with open(xml_path, "w") as file:
            file.write(xml)
        listener = listen_unix(serial_path)
        os.chmod(serial_path, 0o666)  # QEMU runs as libvirt's user.
        try:
            started = time.monotonic()
            virsh("create", xml_path)
            self.domain_started = True
            qemus = processes_running(os.path.realpath(shutil.which("qemu-system-x86_64")))
            # Started with --fd: the integration tests' daemons (same binary) use socket paths.
            daemons = processes_running(self.daemon_binary, "--fd=")
            if len(qemus) != 1 or len(daemons) != 1:
                raise Failure(f"after virsh create: QEMU processes {sorted(qemus)}, daemon "
                              f"processes {daemons} (one of each expected)")
            domain = LibvirtDomain(self, started, next(iter(qemus)), *next(iter(daemons.items())))
            domain.serial = SerialConsole(accept_from(listener, domain.process, "serial"),
                                          os.path.join(self.work_dir, "libvirt-serial.log"))
            return domain
        finally:
            listener.close()

    def destroy_domain(self):
        if self.domain_started:
            self.domain_started = False
            virsh("destroy", LIBVIRT_DOMAIN, check=False)

    def stop(self):
        try:
            self.destroy_domain()
        except (subprocess.TimeoutExpired, OSError) as error:
            print(f"virsh destroy {LIBVIRT_DOMAIN} failed: {error}")
        for process in reversed(self.processes):
            process.stop()
        if self.wrote_descriptor:
            try:
                os.unlink(LIBVIRT_DESCRIPTOR)
                if self.made_descriptor_dir:
                    os.rmdir(os.path.dirname(LIBVIRT_DESCRIPTOR))
            except OSError:
                pass


class LibvirtDomain:
    """The running domain as the cases see a Qemu: a serial console, screendumps, liveness."""

    class Liveness:
        name = "libvirt domain"

        def __init__(self, watched):
            self.watched = watched

        def check_running(self):
            for process in self.watched:
                process.check_running()

        def log_tail(self, lines=15):
            """QEMU's log as libvirt keeps it (the daemon's own output goes to syslog)."""
            try:
                with open(f"/var/log/libvirt/qemu/{LIBVIRT_DOMAIN}.log", errors="replace") as log:
                    return "".join(log.readlines()[-lines:]).strip() or "(empty)"
            except OSError:
                return "(unreadable)"

    def __init__(self, host, started, qemu_pid, daemon_pid, daemon_argv):
        self.host = host
        self.started = started
        self.daemon_pid = daemon_pid
        self.daemon_argv = daemon_argv
        self.process = self.Liveness(host.processes + [WatchedPid("QEMU", qemu_pid),
                                                       WatchedPid("daemon", daemon_pid)])
        self.serial = None

    def elapsed(self):
        return time.monotonic() - self.started

    def screendump(self, head, path):
        """`virsh screenshot` of `head` into `path`.png, read back."""
        virsh("screenshot", LIBVIRT_DOMAIN, path + ".png", "--screen", str(head))
        return Image.read_png(path + ".png")

    def stop(self):
        if self.serial:
            self.serial.close()


class Guest:
    """Paths of the guest kernel and initramfs, prepared on demand by PREPARE_GUEST_SCRIPT.

    With `gl`, also the initramfs with Mesa's virgl driver and gl_draw (gl_initramfs).
    """

    def __init__(self, directory, gl=False, glmark2=False):
        os.makedirs(directory, exist_ok=True)
        flags = ["--glmark2"] if glmark2 else ["--gl"] if gl else []
        # Parallel test runs share the directory; the lock serialises preparing it.
        with open(os.path.join(directory, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            result = subprocess.run([PREPARE_GUEST_SCRIPT, directory] + flags,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode == EXIT_SKIP:
            raise Skip(f"guest kernel unavailable: {result.stdout.strip()}")
        if result.returncode != 0:
            raise Failure(f"preparing the guest failed: {result.stdout.strip()}")
        self.kernel = os.path.join(directory, "vmlinuz")
        self.initramfs = os.path.join(directory, "initramfs.img")
        self.gl_initramfs = os.path.join(directory, "initramfs-gl.img") if gl else None
        self.glmark2_initramfs = (os.path.join(directory, "initramfs-glmark2.img")
                                  if glmark2 else None)


def check_qemu(binary):
    """Skips unless `binary` is QEMU 8 or newer (7.x refuses vhost-user devices without KVM)."""
    path = shutil.which(binary)
    if path is None:
        raise Skip(f"{binary} not found")
    version = subprocess.run([path, "--version"], stdout=subprocess.PIPE, text=True).stdout
    match = re.search(r"version (\d+)\.(\d+)", version)
    if not match or int(match.group(1)) < 8:
        raise Skip(f"{binary} is not QEMU >= 8 (vhost-user needs KVM before 8.0): "
                   f"{version.splitlines()[0] if version else '?'}")
    return path


# ---------------------------------------------------------------------------------------------
# Steps shared by the cases.


class Run:
    """State of one case: work directory, processes to clean up, timings."""

    def __init__(self, options, work_dir):
        self.options = options
        self.work_dir = work_dir
        self.qemu_binary = check_qemu(options.qemu)
        self.guest = Guest(options.guest_dir, gl=options.case in GL_CASES,
                           glmark2=options.case in GLMARK2_CASES)
        self.daemon = None
        self.xvfb = None
        self.libvirt = None
        self.qemus = []
        self.expected_images = {}

    def start_daemon(self):
        self.daemon = Daemon(self.options.daemon, self.work_dir)

    def start_qemu(self, device="vhost-user-gpu-pci", max_outputs=None, memory="512M",
                   initramfs=None, display="none", env=None, kernel_arguments=""):
        name = f"qemu{len(self.qemus) + 1}"
        qemu = Qemu(self.qemu_binary, self.guest, self.daemon.chardev() if self.daemon else None,
                    device, self.work_dir, name, max_outputs, memory, initramfs, display, env,
                    kernel_arguments)
        self.qemus.append(qemu)
        if self.daemon:
            # As libvirt does: QEMU holds its end now, so QEMU's exit is what the daemon sees.
            self.daemon.release_qemu_end()
        return qemu

    def stop(self):
        for qemu in self.qemus:
            qemu.stop()
        if self.daemon:
            self.daemon.stop()
        if self.libvirt:
            self.libvirt.stop()
        if self.xvfb:
            self.xvfb.stop()

    def note(self, qemu, what):
        # Times count from the start of that QEMU process.
        print(f"  {qemu.process.name} {qemu.elapsed():6.2f} s  {what}", flush=True)

    def wait_for_marker(self, qemu, pattern, timeout):
        processes = [qemu.process] + ([self.daemon.process] if self.daemon else [])
        return qemu.serial.wait_for(pattern, timeout, processes)

    def boot(self, qemu, timeout=BOOT_TIMEOUT):
        """Waits for the guest's "ready" marker."""
        self.wait_for_marker(qemu, r"ready .*", timeout)
        self.note(qemu, "guest ready")

    def expected(self, width, height, pattern):
        key = (width, height, pattern)
        if key not in self.expected_images:
            self.expected_images[key] = Image(width, height,
                                              pattern_image(width, height, pattern))
        return self.expected_images[key]

    def expect_screen(self, qemu, head, width, height, pattern):
        """Polls QMP screendump of `head` until it equals the pattern, or fails at the deadline."""
        expected = self.expected(width, height, pattern)
        path = os.path.join(self.work_dir, f"{qemu.process.name}-head{head}")
        deadline = time.monotonic() + SCREEN_TIMEOUT
        samples = 0
        while True:
            actual = qemu.screendump(head, path)
            samples += 1
            if (actual.width, actual.height) == (width, height) and \
                    actual.pixels == expected.pixels:
                self.note(qemu, f"head {head} matches pattern {pattern} ({width}x{height}, "
                                f"{samples} screendumps)")
                return
            if time.monotonic() > deadline:
                expected_path = os.path.join(self.work_dir, f"expected-head{head}.ppm")
                expected.write_ppm(expected_path)
                raise Failure(f"head {head} does not show pattern {pattern} after "
                              f"{SCREEN_TIMEOUT:.0f} s: {describe_differences(actual, expected)} "
                              f"(screen {os.path.basename(path)}.*, expected "
                              f"{os.path.basename(expected_path)}; see --keep-artifacts)")
            qemu.process.check_running()
            time.sleep(SCREEN_POLL_INTERVAL)  # Sampling interval, not synchronisation.

    def daemon_log(self):
        try:
            with open(os.path.join(self.work_dir, "daemon.log"), errors="replace") as log:
                return log.read()
        except OSError:
            return ""

    def expect_gl_picture(self, qemu, picture):
        """Polls QMP screendump of head 0 until it shows `picture` (GlPicture), or fails."""
        path = os.path.join(self.work_dir, f"{qemu.process.name}-head0")
        deadline = time.monotonic() + GL_SCREEN_TIMEOUT
        samples = 0
        while True:
            actual = qemu.screendump(0, path)
            samples += 1
            count, details = picture.differences(actual)
            if count == 0:
                width, height = picture.width, picture.height
                total = width * height
                # One pixel inside each region, for the log.
                background = actual.pixel(4, 4)
                rectangle = actual.pixel(width // 4, height // 4)
                triangle = actual.pixel(7 * width // 8, 3 * height // 4)
                self.note(qemu, f"head 0 shows the GL picture: {picture.compared} of {total} "
                                f"pixels exact, {total - picture.compared} on shape edges left "
                                f"out ({samples} screendumps); background {background:06x}, "
                                f"rectangle {rectangle:06x}, triangle {triangle:06x}")
                return
            if time.monotonic() > deadline:
                what = details if count < 0 else f"{count} of {picture.compared} compared " \
                                                  f"pixels differ: {details}"
                raise Failure(f"head 0 does not show the GL picture after "
                              f"{GL_SCREEN_TIMEOUT:.0f} s: {what} (screen "
                              f"{os.path.basename(path)}; see --keep-artifacts)")
            qemu.process.check_running()
            time.sleep(SCREEN_POLL_INTERVAL)  # Sampling interval, not synchronisation.

    def draw_fb(self, qemu, pattern):
        """Has the guest draw `pattern` on /dev/fb0 and checks head 0 shows it."""
        qemu.serial.send(f"fb {pattern}")
        match = self.wait_for_marker(qemu, rf"drawn fb0 (\d+)x(\d+) pattern={pattern}",
                                     DRAW_TIMEOUT)
        self.note(qemu, f"guest drew pattern {pattern} on fb0")
        self.expect_screen(qemu, 0, int(match.group(1)), int(match.group(2)), pattern)


# ---------------------------------------------------------------------------------------------
# The cases.


def case_pci(run):
    """vhost-user-gpu-pci: a pattern drawn on /dev/fb0 appears in the screendump."""
    run.start_daemon()
    qemu = run.start_qemu("vhost-user-gpu-pci")
    run.boot(qemu)
    run.draw_fb(qemu, 1)


def case_vga(run):
    """vhost-user-vga: the same through the VGA-compatible device (two guest memory regions)."""
    run.start_daemon()
    qemu = run.start_qemu("vhost-user-vga")
    run.boot(qemu)
    run.draw_fb(qemu, 1)


def case_reboot(run):
    """The guest reboots; QEMU stays up, hands the daemon a new GPU socket, and drawing works."""
    run.start_daemon()
    qemu = run.start_qemu("vhost-user-gpu-pci")
    run.boot(qemu)
    run.draw_fb(qemu, 1)
    qemu.serial.send("reboot")
    run.wait_for_marker(qemu, "rebooting", DRAW_TIMEOUT)
    run.boot(qemu)
    run.draw_fb(qemu, 2)


def case_two_heads(run):
    """max_outputs=2: the guest sets a mode on both connectors; each head shows its pattern."""
    run.start_daemon()
    qemu = run.start_qemu("vhost-user-gpu-pci", max_outputs=2)
    run.boot(qemu)
    patterns = (3, 4)
    qemu.serial.send("kms " + " ".join(str(pattern) for pattern in patterns))
    heads = []
    for head, pattern in enumerate(patterns):
        match = run.wait_for_marker(qemu, rf"drawn head={head} (\d+)x(\d+) pattern={pattern}",
                                    DRAW_TIMEOUT)
        heads.append((head, int(match.group(1)), int(match.group(2)), pattern))
    run.wait_for_marker(qemu, "kms-ready", DRAW_TIMEOUT)
    run.note(qemu, "guest set modes on " + ", ".join(f"head {h} ({w}x{ht})"
                                                     for h, w, ht, _ in heads))
    for head, width, height, pattern in heads:
        run.expect_screen(qemu, head, width, height, pattern)


def case_qemu_kill(run):
    """QEMU dies (SIGKILL) mid-run; a new QEMU connects to the same daemon and drawing works.

    Needs a daemon that keeps serving after its front-end disconnects. QEMU's own
    vhost-user-gpu exits instead, so against it this case fails, by design, with
    "daemon exited ... after the front-end disconnected".
    """
    run.start_daemon()
    first = run.start_qemu("vhost-user-gpu-pci")
    run.boot(first)
    run.draw_fb(first, 1)
    first.process.kill(signal.SIGKILL)
    first.process.popen.wait()
    run.note(first, "QEMU killed with SIGKILL")
    try:
        second = run.start_qemu("vhost-user-gpu-pci")
        run.boot(second)
        run.draw_fb(second, 2)  # A different pattern: a stale frame cannot pass.
    except Failure as failure:
        status = run.daemon.process.exit_status()
        if status is not None:
            raise Failure(f"daemon exited (status {status}) after the front-end disconnected; "
                          f"this case needs a daemon that keeps serving ({failure})") from None
        raise


def open_descriptors(pid):
    """Returns {fd: target} of process `pid`'s open file descriptors (from /proc/PID/fd)."""
    descriptors = {}
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        try:
            descriptors[int(name)] = os.readlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass  # Closed between the listing and the readlink.
    return descriptors


def case_qemu_kill_streaming(run):
    """QEMU dies (SIGKILL) while the guest streams full-screen updates, three times over.

    Each QEMU boots, draws a pattern on fb0 that must show exactly (so each one after a kill
    proves the daemon accepted it and serves it right), then runs `kms_draw --stream`: page
    flips between two framebuffers as fast as the device takes them (about 300 full-screen
    frames a second here, each a 4 MB UPDATE to QEMU). Once the guest reports frame N (1, 20,
    500: right after the first flip, early in the stream, after about 1.5 s of it) QEMU gets
    SIGKILL with the stream running, often with an UPDATE half sent. The daemon must still be
    running, log the disconnect and close every descriptor of that connection: its descriptor
    table returns to what it was before the first QEMU connected. A last QEMU then draws a
    pattern that must show exactly too.
    """
    kill_frames = (1, 20, 500)
    stream_pattern = 5  # Patterns 5..8 stream; the fb0 patterns are 1..4: no stale frame passes.
    run.start_daemon()
    pid = run.daemon.process.popen.pid
    idle = open_descriptors(pid)
    print(f"  daemon (pid {pid}) {len(idle)} descriptors before any QEMU: "
          f"{', '.join(f'{fd}->{target}' for fd, target in sorted(idle.items()))}", flush=True)
    updates_before = 0
    for round_number, kill_frame in enumerate(kill_frames, 1):
        qemu = run.start_qemu("vhost-user-gpu-pci")
        run.boot(qemu)
        run.draw_fb(qemu, round_number)
        connected = open_descriptors(pid)
        qemu.serial.send(f"stream {stream_pattern}")
        match = run.wait_for_marker(qemu, r"streaming head=0 (\d+)x(\d+)", STREAM_TIMEOUT)
        run.note(qemu, f"guest streams full-screen page flips ({match.group(1)}x"
                       f"{match.group(2)}); daemon holds {len(connected)} descriptors")
        run.wait_for_marker(qemu, rf"frame {kill_frame}", STREAM_TIMEOUT)
        qemu.process.kill(signal.SIGKILL)
        qemu.process.popen.wait()
        run.note(qemu, f"QEMU killed with SIGKILL after frame {kill_frame}, guest still flipping")
        qemu.stop()  # Our ends of its serial and QMP sockets.
        log = wait_for_release(run, pid, idle, round_number)
        # For the record, from the totals the daemon logs after a disconnect (if it has yet): how
        # many updates it sent this QEMU, boot and fb0 included.
        totals = re.findall(r"totals so far: .*, (\d+) display updates sent",
                            log.rsplit("frontend disconnected", 1)[-1])
        updates = ""
        if totals:
            updates = f"; {int(totals[-1]) - updates_before} display updates sent to it"
            updates_before = int(totals[-1])
        run.note(qemu, f"daemon alive, logged the disconnect, back to {len(idle)} descriptors"
                       + updates)
    last = run.start_qemu("vhost-user-gpu-pci")
    run.boot(last)
    run.draw_fb(last, len(kill_frames) + 1)


def wait_for_release(run, pid, idle, disconnects):
    """Waits until the daemon has logged `disconnects` disconnects in all and holds exactly the
    descriptors `idle` again; fails if it exits or RELEASE_TIMEOUT passes. Returns the log."""
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while True:
        status = run.daemon.process.exit_status()
        if status is not None:
            raise Failure(f"daemon exited (status {status}) after QEMU was killed; log: "
                          f"{run.daemon.process.log_tail()}")
        log = run.daemon_log()
        logged = len(re.findall(r"frontend disconnected", log))
        current = open_descriptors(pid)
        if logged >= disconnects and current == idle:
            return log
        if time.monotonic() > deadline:
            extra = {fd: target for fd, target in current.items() if idle.get(fd) != target}
            missing = sorted(set(idle) - set(current))
            raise Failure(f"{RELEASE_TIMEOUT:.0f} s after QEMU was killed the daemon has logged "
                          f"{logged} of {disconnects} disconnects and holds {len(current)} "
                          f"descriptors, {len(idle)} before any QEMU (left open: {extra or 'none'}"
                          f", closed: {missing or 'none'})")
        time.sleep(RELEASE_POLL_INTERVAL)  # No event for either: sampled, with a deadline.


def case_demo(run):
    """The demo of ./run.sh: boot through vhost-user-vga, draw, save a PNG and report.

    The picture goes to --demo-output; the daemon's own totals (commands served, display updates
    sent) are read from its log after QEMU disconnects.
    """
    output = os.path.abspath(run.options.demo_output or "demo.png")
    run.start_daemon()
    qemu = run.start_qemu("vhost-user-vga")
    run.boot(qemu)
    run.draw_fb(qemu, 1)
    qemu.qmp.execute("screendump", filename=output, format="png", device="gpu0", head=0)
    run.note(qemu, f"screendump saved to {output}")
    qemu.qmp.execute("quit")
    qemu.process.popen.wait(timeout=STOP_TIMEOUT)
    run.daemon.stop()
    with open(os.path.join(run.work_dir, "daemon.log"), errors="replace") as log:
        totals = [line.split("totals so far: ", 1)[1].strip()
                  for line in log if "totals so far: " in line]
    print("")
    print("What happened:")
    print("  QEMU 10 booted Debian's Linux kernel with vhost-user-vga served by vhost-device-gpu")
    print("  (null mode: the software 2D renderer); the guest drew colour bars on /dev/fb0.")
    if totals:
        print(f"  daemon: {totals[-1]}")
    print(f"  picture: {output}")


def start_virgl_daemon(run):
    """Starts the daemon in virglrenderer mode; a skip where virglrenderer cannot start here."""
    try:
        run.start_daemon()
    except Failure as failure:
        log = run.daemon_log()
        if re.search(r"virglrenderer (cannot start|initialisation failed)", log):
            raise Skip("virglrenderer cannot start on this host: " +
                       " ".join(log.strip().splitlines()[-2:])) from None
        raise failure


def case_virgl(run):
    """virglrenderer mode: the guest renders with OpenGL ES through Mesa's virgl driver.

    The daemon must run with --gpu-mode virglrenderer. The guest boots initramfs-gl.img, runs
    gl_draw (GBM + EGL + GLES2, shown with drmModeSetCrtc), and the screendump must show
    GlPicture. Also checked: the guest's GL_RENDERER names virgl, and the daemon logged that it
    shows 3D results by read-back (no dmabuf export with software GL on this host).
    Skips when virglrenderer cannot start on this host (the daemon says so and exits).
    """
    start_virgl_daemon(run)
    # 1 GiB: the 200 MB initramfs is held twice while the kernel unpacks it.
    qemu = run.start_qemu("vhost-user-gpu-pci", memory="1G", initramfs=run.guest.gl_initramfs)
    run.boot(qemu, GL_BOOT_TIMEOUT)
    qemu.serial.send("gl")
    match = run.wait_for_marker(qemu, r"gl renderer=(.*) vendor=(.*) version=(.*)",
                                GL_DRAW_TIMEOUT)
    renderer, vendor, version = match.groups()
    run.note(qemu, f"guest GL_RENDERER '{renderer}', GL_VENDOR '{vendor}', "
                   f"GL_VERSION '{version}'")
    if "virgl" not in renderer.lower():
        raise Failure(f"guest GL_RENDERER '{renderer}' does not name virgl: the guest is not "
                      f"rendering through the virtio-gpu 3D path")
    match = run.wait_for_marker(qemu, r"gl-drawn (\d+)x(\d+)", GL_DRAW_TIMEOUT)
    width, height = int(match.group(1)), int(match.group(2))
    run.note(qemu, f"guest rendered and set the mode ({width}x{height})")
    run.expect_gl_picture(qemu, GlPicture(width, height))
    path_lines = [line for line in run.daemon_log().splitlines() if "scanout path" in line]
    if not any("read-back" in line for line in path_lines):
        raise Failure("the daemon did not log that it shows 3D results by read-back "
                      f"(lines about the scanout path: {path_lines or 'none'})")
    run.note(qemu, "daemon: " + path_lines[0].split(": ", 1)[-1].strip())


def libvirt_daemon_binary(run):
    """The --daemon of a libvirt case: the binary alone (libvirt writes its command line)."""
    argv = shlex.split(run.options.daemon)
    if len(argv) != 1 or shutil.which(argv[0]) is None:
        raise Skip(f"--daemon for a libvirt case is one executable, not '{run.options.daemon}'")
    return os.path.realpath(shutil.which(argv[0]))


def host_has_render_node():
    """Whether /dev/dri has a render node: then the daemon offers "render-node" and libvirt adds
    --render-node=PATH to every command line."""
    try:
        return any(name.startswith("renderD") for name in os.listdir("/dev/dri"))
    except OSError:
        return False


def expect_libvirt_argv(domain, extra):
    """The daemon runs with libvirt's own command line: the binary, --fd=N, then `extra`, then
    --render-node=PATH where the host has a render node."""
    argv = domain.daemon_argv
    expected = 2 + len(extra) + (1 if host_has_render_node() else 0)
    render_node_ok = (not host_has_render_node() or
                      re.fullmatch(r"--render-node=/dev/dri/renderD\d+", argv[-1] if argv else ""))
    if len(argv) != expected or not re.fullmatch(r"--fd=\d+", argv[1]) or \
            argv[2:2 + len(extra)] != extra or not render_node_ok:
        raise Failure(f"libvirt started the daemon as {argv}, expected "
                      f"[binary, '--fd=N'{''.join(', ' + repr(word) for word in extra)}"
                      f"{', --render-node=PATH' if host_has_render_node() else ''}]")


def destroy_and_expect_no_daemon(run, host, domain):
    """`virsh destroy` ends the daemon too; none of its processes is left."""
    host.destroy_domain()
    deadline = time.monotonic() + STOP_TIMEOUT
    while processes_running(host.daemon_binary, "--fd="):
        if time.monotonic() > deadline:
            raise Failure(f"daemon processes left after virsh destroy: "
                          f"{processes_running(host.daemon_binary, '--fd=')}")
        time.sleep(0.05)
    run.note(domain, "virsh destroy: no daemon process left")


def case_libvirt_2d(run):
    """libvirt finds the daemon through its vhost-user descriptor and starts it for a 2D domain
    with its unmodified command line (`--fd=N`); a pattern drawn on /dev/fb0 is in `virsh
    screenshot`, pixel for pixel; `virsh destroy` leaves no daemon behind."""
    run.libvirt = LibvirtHost(run.work_dir, libvirt_daemon_binary(run),
                              run.options.installed_descriptor)
    domain = run.libvirt.start_domain(run.guest, run.guest.initramfs, accel3d=False,
                                      memory_mib=512)
    run.qemus.append(domain)
    expect_libvirt_argv(domain, [])
    run.note(domain, f"libvirt started the daemon as {' '.join(domain.daemon_argv)}")
    run.boot(domain)
    run.draw_fb(domain, 1)
    destroy_and_expect_no_daemon(run, run.libvirt, domain)


def case_libvirt_3d(run):
    """The same with <acceleration accel3d='yes'/>: libvirt adds --virgl, the GL guest renders
    through virglrenderer and `virsh screenshot` shows its picture."""
    run.libvirt = LibvirtHost(run.work_dir, libvirt_daemon_binary(run),
                              run.options.installed_descriptor)
    domain = run.libvirt.start_domain(run.guest, run.guest.gl_initramfs, accel3d=True,
                                      memory_mib=1024)
    run.qemus.append(domain)
    expect_libvirt_argv(domain, ["--virgl"])
    run.note(domain, f"libvirt started the daemon as {' '.join(domain.daemon_argv)}")
    run.boot(domain, GL_BOOT_TIMEOUT)
    domain.serial.send("gl")
    match = run.wait_for_marker(domain, r"gl renderer=(.*) vendor=(.*) version=(.*)",
                                GL_DRAW_TIMEOUT)
    if "virgl" not in match.group(1).lower():
        raise Failure(f"guest GL_RENDERER '{match.group(1)}' does not name virgl")
    match = run.wait_for_marker(domain, r"gl-drawn (\d+)x(\d+)", GL_DRAW_TIMEOUT)
    run.expect_gl_picture(domain, GlPicture(int(match.group(1)), int(match.group(2))))
    destroy_and_expect_no_daemon(run, run.libvirt, domain)


BUILTIN_GL = "qemu-builtin-gl"
# XRGB8888 (alpha=0): the only format virtio-gpu's primary plane takes; glmark2 would pick
# ARGB8888 and fail every modeset.
GLMARK2_DEFAULT_ARGS = ("--visual-config alpha=0 -b build:duration=2 -b texture:duration=2 "
                        "-b shading:duration=2")
# glmark2-drm runs full-screen in the connector's largest mode; the EDID the guest kernel is
# told to use (guest/init, vgpu.edid) makes that 1024x768 on every device: the size the
# virtio-gpu driver accepts whatever the device reports as its display size.
GLMARK2_EDID = "edid/1024x768.bin"
# "[scene] option=value:...: FPS: 123 FrameTime: 8.130 ms"
GLMARK2_SCENE = re.compile(r"\[(\w+)\] (.*): FPS: (\d+) FrameTime: ([\d.]+) ms")
# Lines of glmark2 that say a scene did not run as asked.
GLMARK2_PROBLEM = re.compile(r"(?i)(error|fail|unsupported|not supported|cannot|could not)")
# What glmark2 always says on virtio-gpu, and is no problem: it cannot tear, so SwapInterval(0)
# becomes mailbox (newest frame wins at the next flip).
GLMARK2_EXPECTED = re.compile(r"DRM_CAP_ASYNC_PAGE_FLIP not supported, falling back to 'mailbox'")


def case_glmark2(run):
    """Runs glmark2-es2-drm in the GL guest and reports each scene's FPS and the score.

    With our daemon (--gpu-mode virglrenderer): vhost-user-gpu-pci, no display (frames are read
    back and sent to QEMU as UPDATE messages). With --daemon qemu-builtin-gl: QEMU's own
    virtio-gpu-gl-pci, shown by `-display gtk,gl=on` on an Xvfb server. Every scene must render:
    glmark2 must exit 0, print an FPS line for every scene and no error line; the guest's
    GL_RENDERER must name virgl. --json writes the figures.
    """
    builtin = run.options.daemon == BUILTIN_GL
    if builtin:
        run.xvfb = Xvfb(run.work_dir)
        qemu = run.start_qemu("virtio-gpu-gl-pci", memory="1G",
                              initramfs=run.guest.glmark2_initramfs, display="gtk,gl=on",
                              env={"DISPLAY": run.xvfb.display},
                              kernel_arguments=f"vgpu.edid={GLMARK2_EDID}")
    else:
        start_virgl_daemon(run)
        qemu = run.start_qemu("vhost-user-gpu-pci", memory="1G",
                              initramfs=run.guest.glmark2_initramfs,
                              kernel_arguments=f"vgpu.edid={GLMARK2_EDID}")
    run.boot(qemu, GL_BOOT_TIMEOUT)
    arguments = run.options.glmark2_args
    scenes_asked = len(re.findall(r"(?:^|\s)-b\s", " " + arguments)) or 1
    durations = [float(value) for value in re.findall(r"duration=([\d.]+)", arguments)] or [10.0]
    timeout = GLMARK2_SCENE_SETUP_TIMEOUT * scenes_asked + sum(durations) + GL_BOOT_TIMEOUT
    started = time.monotonic()
    qemu.serial.send("glmark2 " + arguments)
    lines = []
    while True:
        match = run.wait_for_marker(qemu, r"glmark2(?:-done status=(\d+)| (.*))",
                                    max(1.0, timeout - (time.monotonic() - started)))
        if match.group(1) is not None:
            status = int(match.group(1))
            break
        lines.append(match.group(2))
    seconds = time.monotonic() - started
    renderer = next((line.split(":", 1)[1].strip() for line in lines
                     if line.strip().startswith("GL_RENDERER:")), "")
    scenes = []
    for line in lines:
        scene = GLMARK2_SCENE.search(line)
        if scene:
            scenes.append({"scene": scene.group(1), "options": scene.group(2),
                           "fps": int(scene.group(3)), "frame_time_ms": float(scene.group(4))})
    score = next((int(m.group(1)) for m in (re.search(r"glmark2 Score: (\d+)", line)
                                            for line in lines) if m), None)
    problems = [line for line in lines
                if GLMARK2_PROBLEM.search(line) and not GLMARK2_EXPECTED.search(line)]
    for scene in scenes:
        run.note(qemu, f"[{scene['scene']}] {scene['options']}: {scene['fps']} FPS")
    run.note(qemu, f"glmark2 exit status {status}, score {score}, GL_RENDERER '{renderer}', "
                   f"{len(scenes)} scenes in {seconds:.1f} s")
    if run.options.json:
        with open(run.options.json, "w") as output:
            json.dump({"device": "virtio-gpu-gl-pci (QEMU built-in)" if builtin else
                       f"vhost-user-gpu-pci: {run.options.daemon}",
                       "arguments": arguments, "renderer": renderer, "score": score,
                       "exit_status": status, "seconds": seconds, "scenes": scenes,
                       "problems": problems}, output, indent=2)
    if "virgl" not in renderer.lower():
        raise Failure(f"guest GL_RENDERER '{renderer}' does not name virgl")
    if status != 0:
        raise Failure(f"glmark2 exited with status {status}: {lines[-5:]}")
    if problems:
        raise Failure(f"glmark2 reported problems: {problems[:5]}")
    if len(scenes) < scenes_asked or score is None:
        raise Failure(f"glmark2 ran {len(scenes)} of {scenes_asked} scenes (score {score}): "
                      f"{lines[-5:]}")


CASES = {
    "demo": case_demo,
    "pci": case_pci,
    "vga": case_vga,
    "reboot": case_reboot,
    "two-heads": case_two_heads,
    "qemu-kill": case_qemu_kill,
    "qemu-kill-streaming": case_qemu_kill_streaming,
    "virgl": case_virgl,
    "glmark2": case_glmark2,
    "libvirt-2d": case_libvirt_2d,
    "libvirt-3d": case_libvirt_3d,
}
# Cases that need the GL guest (prepare-e2e-guest.sh --gl), and the one with glmark2 in it.
GL_CASES = {"virgl", "libvirt-3d"}
GLMARK2_CASES = {"glmark2"}


ARTIFACTS_STAMP = ".vgpu-e2e-artifacts"


def keep_artifacts(work_dir, destination):
    """Copies the run's logs and screendumps to `destination`, replacing an earlier run's."""
    if os.path.exists(os.path.join(destination, ARTIFACTS_STAMP)):
        shutil.rmtree(destination)  # Only ever a directory this function made.
    shutil.copytree(work_dir, destination, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.sock"))
    open(os.path.join(destination, ARTIFACTS_STAMP), "w").close()
    print(f"artifacts (serial and process logs, screendumps) in {destination}")


def terminate(signal_number, _frame):
    raise Failure(f"terminated by signal {signal_number}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--daemon", required=True,
                        help="daemon command; {socket} = socket path (else --socket-path added)")
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    parser.add_argument("--guest-dir", default=os.path.join(SOURCE_DIR, "build", "e2e-guest"),
                        help="where the guest kernel and initramfs are cached")
    parser.add_argument("--qemu", default=os.environ.get("VGPU_QEMU", "qemu-system-x86_64"))
    parser.add_argument("--demo-output", metavar="PNG", help="where the demo case saves its picture")
    parser.add_argument("--keep-artifacts", metavar="DIR",
                        help="copy logs and screendumps of the run to DIR")
    parser.add_argument("--glmark2-args", default=GLMARK2_DEFAULT_ARGS,
                        help="the glmark2 case's arguments to glmark2-es2-drm")
    parser.add_argument("--json", metavar="FILE", help="the glmark2 case's figures, as JSON")
    parser.add_argument("--installed-descriptor", action="store_true",
                        help="libvirt cases: use the installed descriptor "
                             f"({INSTALLED_DESCRIPTOR}) instead of writing one")
    options = parser.parse_args()
    if options.daemon == BUILTIN_GL and options.case not in GLMARK2_CASES:
        parser.error(f"--daemon {BUILTIN_GL} is for --case glmark2 only")

    # A timeout (CTest) or Ctrl-C must still run the cleanup below: no QEMU left behind.
    signal.signal(signal.SIGTERM, terminate)
    work_dir = tempfile.mkdtemp(prefix=f"vgpu-e2e-{options.case}-")
    started = time.monotonic()
    run = None
    status = EXIT_FAIL
    try:
        run = Run(options, work_dir)
        print(f"case {options.case}: daemon '{options.daemon}'", flush=True)
        CASES[options.case](run)
        status = EXIT_PASS
        print(f"PASS {options.case} in {time.monotonic() - started:.1f} s")
    except Skip as skip:
        status = EXIT_SKIP
        print(f"SKIP {options.case}: {skip}")
    except Failure as failure:
        print(f"FAIL {options.case}: {failure}")
    except KeyboardInterrupt:
        print(f"FAIL {options.case}: interrupted")
    finally:
        try:
            if run:
                run.stop()
            if status == EXIT_FAIL and run:
                for qemu in run.qemus:
                    print(f"--- {qemu.process.name} log:\n{qemu.process.log_tail()}")
                if run.daemon:
                    print(f"--- daemon log:\n{run.daemon.process.log_tail()}")
            if options.keep_artifacts:
                keep_artifacts(work_dir, options.keep_artifacts)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
