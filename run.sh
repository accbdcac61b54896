#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job.
#
#   ./run.sh                          the demo (see README)
#   ./run.sh --socket-path S ...      the daemon with these options
set -euo pipefail
cd "$(dirname "$0")"
./scripts/install-deps.sh
./scripts/build.sh >/dev/null
DAEMON=build/src/daemon/vhost-device-gpu
if [[ $# -gt 0 ]]; then
  exec "$DAEMON" "$@"
fi
SOCKET=${SOCKET:-/tmp/vhost-device-gpu.sock}
echo "Starting vhost-device-gpu in null mode on $SOCKET. Attach QEMU 10 with:"
echo "  qemu-system-x86_64 -machine q35,memory-backend=mem0 -m 512M \\"
echo "    -object memory-backend-memfd,id=mem0,size=512M,share=on \\"
echo "    -chardev socket,id=vgpu,path=$SOCKET -device vhost-user-gpu-pci,chardev=vgpu -vga none ..."
exec "$DAEMON" --socket-path "$SOCKET" --gpu-mode null
