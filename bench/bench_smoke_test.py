#!/usr/bin/env python3
"""Smoke test of vhost-gpu-bench: every workload for about a second against our daemon, then a
--compare run, checking that the JSON is produced and sane. Not a timed pass/fail: speed targets
live in the benchmark, not in tests."""
import argparse
import json
import math
import os
import subprocess
import sys

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
}

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


def check_results(document, workloads, labels):
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
            for name, figure in result["figures"].items():
                value = figure["value"]
                check(value is not None and math.isfinite(value) and value >= 0,
                      f"{where}: {name} = {value}")
            for name in KEY_FIGURES[workload]:
                value = result["figures"].get(name, {}).get("value")
                check(value is not None and value > 0, f"{where}: {name} missing or not > 0")


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
        check_results(document, list(KEY_FIGURES), ["A"])

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

    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
