#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite. Exits non-zero on any failure.
#
#   ./test.sh                 unit, integration and end-to-end tests; then the unit and
#                             integration tests under ASan+UBSan and under TSan, and each fuzzer
#                             for 30 s (scripts/run-sanitizers.sh, scripts/run-fuzzers.sh)
#   ./test.sh -L unit         only tests with that CTest label (unit, integration, e2e), in every
#                             stage; any argument not listed here goes to ctest
#   ./test.sh --no-sanitizers --no-fuzz --no-package     skip those stages
#                             (the package stage: scripts/test-debian-package.sh builds the .deb,
#                             runs lintian, installs it and runs the libvirt cases against it)
#   ./test.sh --fuzz-long 3600              only the fuzzers, each for that many seconds
set -euo pipefail
cd "$(dirname "$0")"

run_sanitizers=1
run_package=1
fuzz_seconds=30
fuzz_only=0
ctest_arguments=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-sanitizers) run_sanitizers=0; shift ;;
    --no-package) run_package=0; shift ;;
    --no-fuzz) fuzz_seconds=0; shift ;;
    --fuzz-long)
      if [[ $# -lt 2 ]]; then echo "test.sh: --fuzz-long needs a number of seconds" >&2; exit 2; fi
      fuzz_seconds="$2"; fuzz_only=1; shift 2 ;;
    *) ctest_arguments+=("$1"); shift ;;
  esac
done

./scripts/install-deps.sh
if [[ $fuzz_only -eq 1 ]]; then
  exec ./scripts/run-fuzzers.sh --seconds "$fuzz_seconds"
fi
./scripts/build.sh
(cd build && ctest --output-on-failure -j2 "${ctest_arguments[@]}")
if [[ $run_package -eq 1 && ${#ctest_arguments[@]} -eq 0 ]]; then
  ./scripts/test-debian-package.sh
fi
if [[ $run_sanitizers -eq 1 ]]; then
  ./scripts/run-sanitizers.sh asan "${ctest_arguments[@]}"
  ./scripts/run-sanitizers.sh tsan "${ctest_arguments[@]}"
fi
if [[ $fuzz_seconds -gt 0 ]]; then
  ./scripts/run-fuzzers.sh --seconds "$fuzz_seconds"
fi
