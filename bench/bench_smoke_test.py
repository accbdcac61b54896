#!/usr/bin/env python3
"""Smoke test of vhost-gpu-bench: every workload for about a second against our daemon, then a
--compare run, then frame-1080p on two daemons at once (--instances 2), then the 3D workloads
against our daemon in virglrenderer mode (skipped, with the reason, where virglrenderer cannot
start), checking that the JSON is produced and sane. Not a timed pass/fail: speed targets live
in the benchmark, not in tests."""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

STREAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "streams", "gl_draw.virgl")

# A figure each workload must report with a positive value.
KEY_FIGURES = {
    "frame-1080p": ["frames_per_second", "frame_time_median", "memcpy_floor",
                    "backend_cpu_per_frame"],
    "frame-4k": ["frames_per_second", "frame_time_median", "memcpy_floor"],
    "damage-1080p": ["frames_per_second", "frame_time_median_vs_full_frame"],
    "cursor": ["moves_per_second", "round_trip_median"],
    "latency": ["commands_per_second", "create_2d_median", "unref_median",
                "transfer_1px_median"],
    "queue-depth": ["commands_per_second", "submit_to_used_median"],
    "idle": ["resident_memory", "threads"],
    "submit3d-fence": ["fences_per_second", "fence_latency_median", "submit_bytes"],
    "render-readback-1080p": ["frames_per_second", "frame_time_median", "read_back_throughput"],
    "render-readback-4k": ["frames_per_second", "frame_time_median", "read_back_throughput"],
}
# Need VIRTIO_GPU_F_VIRGL: skipped (not failed) on a 2D backend.
VIRGL_WORKLOADS = ["submit3d-fence", "render-readback-1080p", "render-readback-4k"]
NO_3D = "backend offers no 3D (VIRTIO_GPU_F_VIRGL)"

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def run(command, json_path):
    print("+", " ".join(command), flush=True)
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=150)
    print(completed.stdout)
    check(completed.returncode == 0, f"exit status {completed.returncode}")
    check(os.path.exists(json_path), f"{json_path} was not written")
    if not os.path.exists(json_path):
        return None
    with open(json_path) as file:
        return json.load(file)


def check_results(document, workloads, labels, expect_skipped=()):
    results = document.get("results", [])
    for workload in workloads:
        for label in labels:
            matching = [r for r in results if r["workload"] == workload and r["backend"] == label]
            check(len(matching) == 1, f"{workload} on {label}: {len(matching)} results")
            if not matching:
                continue
            result = matching[0]
            where = f"{workload} on {label}"
            check(result["ok"], f"{where} failed: {result['error']}")
            check(result["anomalies"] == [], f"{where} anomalies: {result['anomalies']}")
            if workload in expect_skipped:
                check(result.get("skipped") == NO_3D and result["figures"] == {},
                      f"{where}: expected skipped ({NO_3D}), got {result.get('skipped')}")
                continue
            check(result.get("skipped") is None, f"{where} skipped: {result.get('skipped')}")
            for name, figure in result["figures"].items():
                value = figure["value"]
                check(value is not None and math.isfinite(value) and value >= 0,
                      f"{where}: {name} = {value}")
            for name in KEY_FIGURES[workload]:
                value = result["figures"].get(name, {}).get("value")
                check(value is not None and value > 0, f"{where}: {name} missing or not > 0")


def virgl_start_failure(daemon, work_dir):
    """Why our daemon cannot start in virglrenderer mode here (its own words), or None.

    The daemon fails early, before it listens, when virglrenderer cannot start; listening is the
    sign it started."""
    with tempfile.TemporaryDirectory(dir=work_dir) as probe_dir, \
            tempfile.TemporaryFile(dir=work_dir) as output:
        socket_path = os.path.join(probe_dir, "probe.sock")
        process = subprocess.Popen([daemon, "--gpu-mode", "virglrenderer", "--socket-path",
                                    socket_path], stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(socket_path):
                if process.poll() is not None:
                    output.seek(0)
                    return output.read().decode(errors="replace").strip() or \
                        f"exit status {process.returncode}"
                if time.monotonic() > deadline:
                    return "the daemon did not listen within 20 s"
                time.sleep(0.05)
            return None
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)


def run_virgl(arguments):
    """The 3D workloads for about a second each, on our daemon in virglrenderer mode."""
    failure = virgl_start_failure(arguments.daemon, arguments.work_dir)
    if failure is not None:
        print(f"SKIP 3D workloads: virglrenderer cannot start here: {failure}")
        return
    path = os.path.join(arguments.work_dir, "virgl.json")
    if os.path.exists(path):
        os.remove(path)
    command = [arguments.bench, "--duration", "1", "--warmup", "0.1", "--stream", STREAM,
               "--json", path]
    for workload in VIRGL_WORKLOADS:
        command += ["--workload", workload]
    document = run(command + [f"{arguments.daemon} --gpu-mode virglrenderer"], path)
    if document is not None:
        check(document["options"]["stream"] == STREAM, "--stream recorded")
        check_results(document, VIRGL_WORKLOADS, ["A"])


def run_instances(arguments, backend):
    """--instances 2: frame-1080p on two daemons at once, combined, each instance kept."""
    path = os.path.join(arguments.work_dir, "instances.json")
    if os.path.exists(path):
        os.remove(path)
    document = run([arguments.bench, "--instances", "2", "--workload", "frame-1080p",
                    "--duration", "1", "--warmup", "0.1", "--json", path, backend], path)
    if document is None:
        return
    check(document["options"]["instances"] == 2, "--instances recorded")
    check_results(document, ["frame-1080p"], ["A"])
    total = [r for r in document["results"] if r["workload"] == "frame-1080p"]
    each = document.get("instance_results", [])
    check(sorted(r["backend"] for r in each) == ["A.1", "A.2"], "one result per instance")
    check(all(r["ok"] for r in each), "every instance ok")
    if len(total) != 1 or len(each) != 2 or not all(r["ok"] for r in each + total):
        return
    figures = total[0]["figures"]
    check(figures.get("instances", {}).get("value") == 2, "instances figure")
    rates = [r["figures"]["frames_per_second"]["value"] for r in each]
    # The JSON holds 6 significant digits of each.
    check(math.isclose(figures["frames_per_second"]["value"], sum(rates), rel_tol=1e-4),
          "frames_per_second is the instances' sum")
    for result in each:
        memory = result["figures"].get("backend_resident_memory", {}).get("value")
        check(memory is not None and memory > 0, f"{result['backend']}: backend RSS")
    check(figures.get("backend_resident_memory_max", {}).get("value", 0) > 0, "RSS maximum")
    check(not any(name.startswith("tool_cpu_") for name in figures), "no tool CPU when combined")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", required=True)
    parser.add_argument("--daemon", required=True)
    parser.add_argument("--work-dir", required=True)
    arguments = parser.parse_args()
    os.makedirs(arguments.work_dir, exist_ok=True)
    backend = f"{arguments.daemon} --gpu-mode null"

    single = os.path.join(arguments.work_dir, "single.json")
    if os.path.exists(single):
        os.remove(single)
    document = run([arguments.bench, "--duration", "1", "--warmup", "0.1", "--json", single,
                    backend], single)
    if document is not None:
        check(document["tool"] == "vhost-gpu-bench", "tool name")
        check(document["options"]["backing"] == "pages", "default backing is pages")
        check(document["comparison"] == [], "no comparison without --compare")
        check_results(document, list(KEY_FIGURES), ["A"], expect_skipped=VIRGL_WORKLOADS)

    compare = os.path.join(arguments.work_dir, "compare.json")
    if os.path.exists(compare):
        os.remove(compare)
    workloads = ["frame-1080p", "latency"]
    command = [arguments.bench, "--compare", backend, backend, "--duration", "0.5",
               "--warmup", "0.1", "--backing", "contiguous", "--fence", "--json", compare]
    for workload in workloads:
        command += ["--workload", workload]
    document = run(command, compare)
    if document is not None:
        check(document["options"]["backing"] == "contiguous", "--backing contiguous recorded")
        check(document["options"]["fence_frames"] is True, "--fence recorded")
        check_results(document, workloads, ["A", "B"])
        ratios = document["comparison"]
        check({r["workload"] for r in ratios} == set(workloads), "a ratio for each workload")
        for ratio in ratios:
            check(ratio["a_over_b"] is None or ratio["a_over_b"] >= 0,
                  f"ratio {ratio['workload']}/{ratio['figure']}: {ratio['a_over_b']}")
        fps = [r for r in ratios if r["figure"] == "frames_per_second"]
        check(len(fps) == 1 and fps[0]["a_over_b"] > 0, "frames_per_second ratio")

    run_instances(arguments, backend)
    run_virgl(arguments)

    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
