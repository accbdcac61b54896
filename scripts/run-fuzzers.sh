#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang, ASan and UBSan into build-fuzz/, replays every
# seed and regression input, then fuzzes each target for a bounded time. Exits non-zero on any
# finding; the input that triggered it is saved under build-fuzz/fuzz-artifacts/<fuzzer>/.
#
#   scripts/run-fuzzers.sh                  # 30 s per fuzzer (what ./test.sh runs)
#   scripts/run-fuzzers.sh --seconds 3600   # as long as asked (./test.sh --fuzz-long 3600)
#   scripts/run-fuzzers.sh --replay-only    # seeds and regressions only, no fuzzing
#   scripts/run-fuzzers.sh --seconds 60 gpu_command_fuzzer   # only the fuzzers named
#
# New inputs that reach new code go to build-fuzz/fuzz-corpus/<fuzzer>/ (kept between runs,
# never written into the source tree). fuzz/README.md says how to turn a finding into a
# regression input.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
replay_only=0
fuzzers=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --replay-only) replay_only=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) fuzzers+=("$1"); shift ;;
  esac
done
if [[ ${#fuzzers[@]} -eq 0 ]]; then
  fuzzers=(vhost_user_message_fuzzer virtqueue_fuzzer gpu_command_fuzzer display_reply_fuzzer)
fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -lt 1 ]]; then
  echo "run-fuzzers: --seconds needs a positive whole number, not '$seconds'" >&2
  exit 2
fi

BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  # Only the libraries under test are needed: no tests, no optional 3D backends.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DBUILD_FUZZERS=ON -DBUILD_TESTING=OFF -DBACKEND_VIRGL=OFF -DBACKEND_GFXSTREAM=OFF \
    -DSANITIZE=fuzzer-no-link,address,undefined >/dev/null
fi
ninja -C "$BUILD_DIR" -j"$(nproc)" "${fuzzers[@]}"

# Leaks fail a run too (libFuzzer checks after each input that allocated more than it freed).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
summary=()
for fuzzer in "${fuzzers[@]}"; do
  binary="$BUILD_DIR/fuzz/$fuzzer"
  seeds="fuzz/corpus/$fuzzer"
  regressions="fuzz/regressions/$fuzzer"
  work="$BUILD_DIR/fuzz-corpus/$fuzzer"
  artifacts="$BUILD_DIR/fuzz-artifacts/$fuzzer/"
  log="$BUILD_DIR/fuzz-logs/$fuzzer.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  inputs=("$seeds")
  [[ -d "$regressions" ]] && inputs+=("$regressions")

  # Every seed and every past finding, once each.
  echo "== $fuzzer: replaying ${inputs[*]}"
  if ! "$binary" -runs=0 -artifact_prefix="$artifacts" "${inputs[@]}" >"$log" 2>&1; then
    echo "run-fuzzers: $fuzzer fails on a seed or regression input; log: $log" >&2
    tail -n 60 "$log" >&2
    status=1
    continue
  fi
  if [[ $replay_only -eq 1 ]]; then
    summary+=("$fuzzer: replayed")
    continue
  fi

  echo "== $fuzzer: fuzzing for ${seconds} s"
  # -timeout: one input running for 10 s is a hang. -rss_limit_mb: the daemon's own caps keep
  # it far below this; more is a finding.
  if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "${inputs[@]}" >"$log" 2>&1; then
    echo "run-fuzzers: $fuzzer found a problem; log: $log, input(s): $artifacts" >&2
    grep -E "^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*invariant violated|artifact_prefix|Test unit written)" \
      "$log" | head -n 20 >&2 || true
    tail -n 60 "$log" >&2
    status=1
    continue
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  summary+=("$fuzzer: ${runs:-?} inputs, ${speed:-?} exec/s, no finding")
done

echo "== fuzzing summary"
printf '  %s\n' "${summary[@]}"
exit $status
