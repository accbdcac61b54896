#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite. Exits non-zero on any failure.
#
#   ./test.sh                 unit, integration and end-to-end tests
#   ./test.sh -L unit         only tests with that CTest label (unit, integration, e2e)
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh
./scripts/build.sh
cd build
ctest --output-on-failure -j2 "$@"
