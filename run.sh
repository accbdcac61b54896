#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job.
#
#   ./run.sh                          the demo (see README): writes demo.png
#   ./run.sh --socket-path S ...      the daemon with these options
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh
./scripts/build.sh >/dev/null
DAEMON=build/src/daemon/vhost-device-gpu
if [[ $# -gt 0 ]]; then
  exec "$DAEMON" "$@"
fi
# The demo: our daemon in null mode, QEMU 10 booting the test guest through vhost-user-vga, the
# guest drawing colour bars; the screendump goes to demo.png.
exec python3 tests/e2e/e2e.py --case demo --daemon "$DAEMON --gpu-mode null" \
  --guest-dir build/e2e-guest --demo-output demo.png
