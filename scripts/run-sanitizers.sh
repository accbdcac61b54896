#!/usr/bin/env bash
# Builds the unit and integration tests and the daemon with sanitizers and runs them.
#
#   scripts/run-sanitizers.sh asan [ctest arguments]   # ASan + UBSan + LeakSanitizer, build-asan/
#   scripts/run-sanitizers.sh tsan [ctest arguments]   # ThreadSanitizer, build-tsan/
#
# Every process is instrumented, the daemons that the integration tests start included. Each
# sanitizer report, from a test binary or from a daemon, is written to a file under
# <build>/sanitizer-logs/ (a daemon's stderr goes to a temporary directory that its test deletes),
# and any such file fails the run, as does any failing test. With VGPU_DAEMON_GRACEFUL_STOP=1 the
# test support stops each daemon with SIGTERM instead of SIGKILL, so that LeakSanitizer checks it
# at exit. Suppressions live in scripts/sanitizers/, each with the reason it is there.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
shift || true
case "$mode" in
  asan)
    BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
    SANITIZE=address,undefined
    EXTRA_FLAGS=
    ;;
  tsan)
    BUILD_DIR=${TSAN_BUILD_DIR:-build-tsan}
    SANITIZE=thread
    # GCC warns that TSan does not model atomic_thread_fence. The fences (virtio/split_virtqueue.cc)
    # order accesses to ring memory shared with the guest, another process, which TSan cannot
    # see anyway; between our own threads every hand-over is a mutex (EventLoop::RunSync).
    EXTRA_FLAGS=-Wno-tsan
    ;;
  *)
    echo "usage: $0 asan|tsan [ctest arguments]" >&2
    exit 2
    ;;
esac
ctest_arguments=("$@")

if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  # -O1: fast enough for the integration tests' deadlines, keeps stacks readable. No e2e guest
  # and no virgl (it links uninstrumented GL stacks); gfxstream is in: its tests run against a
  # stand-in library built here with the same sanitizer, and TSan checks its fence hand-off.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-O1 $EXTRA_FLAGS" \
    -DSANITIZE="$SANITIZE" -DBACKEND_VIRGL=OFF -DBACKEND_GFXSTREAM=ON >/dev/null
fi
# The daemon and every test executable, nothing else (no benchmark). build.ninja first: a build
# folder from an older tree must know the test executables added since.
ninja -C "$BUILD_DIR" build.ninja >/dev/null
mapfile -t targets < <(ninja -C "$BUILD_DIR" -t targets all |
  sed -n 's/^\([^:]*\/\)\{0,1\}\([A-Za-z0-9_]*_tests\{0,1\}\): CXX_EXECUTABLE_LINKER.*/\2/p' | sort -u)
ninja -C "$BUILD_DIR" -j"$(nproc)" vhost-device-gpu "${targets[@]}"

logs="$PWD/$BUILD_DIR/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
suppressions="$PWD/scripts/sanitizers"
export VGPU_DAEMON_GRACEFUL_STOP=1
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"
if [[ "$mode" == asan ]]; then
  export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0:log_path=$logs/asan"
  export LSAN_OPTIONS="suppressions=$suppressions/lsan.supp:print_suppressions=0"
else
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$suppressions/tsan.supp:log_path=$logs/tsan"
fi

status=0
# Not here: the e2e tests (a guest running a daemon under a sanitizer would miss its deadlines)
# and the benchmark (not built). Under ASan, the test that measures the daemon's RSS over 200
# connections is left out: the allocator's quarantine keeps freed memory resident on purpose,
# so RSS grows without a leak; LeakSanitizer checks the daemon for leaks at exit instead.
excluded=()
if [[ "$mode" == asan ]]; then
  excluded=(-E 'DaemonTest\.TwoHundredConnectionCyclesLeaveFdsAndMemoryFlat')
fi
(cd "$BUILD_DIR" &&
  ctest --output-on-failure -j"$(nproc)" -LE 'e2e|bench' "${excluded[@]}" "${ctest_arguments[@]}") ||
  status=$?

shopt -s nullglob
reports=("$logs"/*)
if [[ ${#reports[@]} -gt 0 ]]; then
  echo "run-sanitizers: $mode: ${#reports[@]} sanitizer report(s):" >&2
  for report in "${reports[@]}"; do
    echo "---- $report" >&2
    head -n 80 "$report" >&2
  done
  status=1
fi
if [[ $status -eq 0 ]]; then
  echo "run-sanitizers: $mode: all tests passed, no sanitizer reports"
fi
exit $status
