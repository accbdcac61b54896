#!/usr/bin/env python3
"""glmark2 in a real guest, through our daemon and through QEMU's own 3D device, side by side.

Runs glmark2-es2-drm (Debian's glmark2 2023.01) in the end-to-end tests' GL guest
(tests/e2e/e2e.py --case glmark2) twice, one after the other:
  A  our daemon in virglrenderer mode behind vhost-user-gpu-pci, QEMU with -display none
     (scanouts read back and sent to QEMU as UPDATE messages);
  B  QEMU's built-in virtio-gpu-gl-pci with -display gtk,gl=on on an Xvfb server (scanouts shown
     as GL textures, never read back; QEMU's vhost-user-gpu cannot use such a display, see
     docs/PERFORMANCE.md).
Both guests run the same kernel, the same Mesa virgl driver, the same scenes at 1024x768, under
TCG on this machine, and virglrenderer renders on the host's GL (llvmpipe here) in both.

Prints per-scene FPS with A/B and the scores, and writes everything to --json. Exit status 0
when every scene ran on both (the scores may be anything), 1 otherwise.

  bench/glmark2_compare.py --daemon "build/src/daemon/vhost-device-gpu --gpu-mode virglrenderer"
  bench/glmark2_compare.py --scenes "build:use-vbo=true texture" --duration 2   # a quick one

Python 3 standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARNESS = os.path.join(SOURCE_DIR, "tests", "e2e", "e2e.py")
SCENE_FILE = os.path.join(SOURCE_DIR, "bench", "glmark2", "scenes.txt")
# XRGB8888: the only format virtio-gpu's primary plane takes (e2e.py says more).
VISUAL = "--visual-config alpha=0"


def scene_list(options):
    if options.scenes:
        return options.scenes.split()
    with open(SCENE_FILE) as scenes:
        return [line.strip() for line in scenes if line.strip() and not line.startswith("#")]


def run_side(label, daemon, arguments, options, work_dir):
    output = os.path.join(work_dir, f"{label}.json")
    command = [sys.executable, HARNESS, "--daemon", daemon, "--case", "glmark2",
               "--glmark2-args", arguments, "--json", output]
    if options.guest_dir:
        command += ["--guest-dir", options.guest_dir]
    if options.keep_artifacts:
        command += ["--keep-artifacts", os.path.join(options.keep_artifacts, label)]
    started = time.monotonic()
    print(f"== {label}: {daemon}", flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print("\n".join("   " + line for line in result.stdout.strip().splitlines()[-4:]), flush=True)
    figures = None
    if os.path.exists(output):
        with open(output) as data:
            figures = json.load(data)
    return {"daemon": daemon, "exit_status": result.returncode,
            "seconds": time.monotonic() - started, "figures": figures,
            "output_tail": result.stdout.strip().splitlines()[-20:]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--daemon", default=os.path.join(
        SOURCE_DIR, "build", "src", "daemon", "vhost-device-gpu") + " --gpu-mode virglrenderer",
                        help="our daemon's command line (A)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per scene")
    parser.add_argument("--scenes", help="space-separated glmark2 benchmarks instead of "
                                         "bench/glmark2/scenes.txt")
    parser.add_argument("--guest-dir", help="the e2e guest cache (e2e.py --guest-dir)")
    parser.add_argument("--keep-artifacts", metavar="DIR", help="logs of both runs")
    parser.add_argument("--json", metavar="FILE", help="write the figures here")
    options = parser.parse_args()

    scenes = scene_list(options)
    arguments = VISUAL + "".join(f" -b {scene}:duration={options.duration:g}" for scene in scenes)
    with tempfile.TemporaryDirectory(prefix="vgpu-glmark2-") as work_dir:
        sides = {"A": run_side("A", options.daemon, arguments, options, work_dir),
                 "B": run_side("B", "qemu-builtin-gl", arguments, options, work_dir)}

    ok = all(side["exit_status"] == 0 and side["figures"] for side in sides.values())
    rows = []
    if ok:
        a_scenes = sides["A"]["figures"]["scenes"]
        b_scenes = sides["B"]["figures"]["scenes"]
        print(f"\n{'scene':<70} {'A fps':>7} {'B fps':>7} {'A/B':>6}")
        for a, b in zip(a_scenes, b_scenes):
            ratio = a["fps"] / b["fps"] if b["fps"] else float("nan")
            name = f"[{a['scene']}] {a['options']}"
            rows.append({"scene": name, "a_fps": a["fps"], "b_fps": b["fps"], "a_over_b": ratio})
            print(f"{name[:70]:<70} {a['fps']:>7} {b['fps']:>7} {ratio:>6.2f}")
        a_score = sides["A"]["figures"]["score"]
        b_score = sides["B"]["figures"]["score"]
        print(f"{'glmark2 score':<70} {a_score:>7} {b_score:>7} {a_score / b_score:>6.2f}")
        print(f"A: {sides['A']['figures']['device']}\nB: {sides['B']['figures']['device']}")
        print(f"renderer: {sides['A']['figures']['renderer']}")
    else:
        for label, side in sides.items():
            if side["exit_status"] != 0:
                print(f"{label} failed (exit status {side['exit_status']}):")
                print("\n".join("   " + line for line in side["output_tail"]))
    if options.json:
        with open(options.json, "w") as output:
            json.dump({"arguments": arguments, "sides": sides, "comparison": rows,
                       "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                      output, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
