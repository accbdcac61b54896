#!/usr/bin/env bash
# Builds the Debian package from the working tree (tracked and untracked, not ignored files) in a
# temporary directory, checks it with lintian (no error, no warning, pedantic tags included),
# then, as root, installs it and runs the libvirt end-to-end cases against the installed daemon
# found through the installed descriptor, and removes the package again if it was not installed
# before. Exits non-zero on any failure; 77 from an e2e case (skip) is reported and not a failure.
#
#   scripts/test-debian-package.sh [--guest-dir DIR]    (default: build/e2e-guest)
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD
guest_dir=$source_dir/build/e2e-guest
if [[ ${1:-} == --guest-dir ]]; then guest_dir=$2; fi

work=$(mktemp -d /tmp/vgpu-deb-XXXXXX)
installed_here=0
cleanup() {
  if [[ $installed_here -eq 1 ]]; then dpkg -r vhost-device-gpu >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/vhost-device-gpu"
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - -cf - | tar -xf - -C "$work/vhost-device-gpu"
echo "== dpkg-buildpackage -b -us -uc"
(cd "$work/vhost-device-gpu" && dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) ||
  { tail -40 "$work/build.log"; echo "package build failed"; exit 1; }
deb=$(ls "$work"/vhost-device-gpu_*_*.deb)
echo "built $(basename "$deb")"
dpkg -c "$deb" | awk '{print "  " $6}'

echo "== lintian --pedantic"
lintian --pedantic --display-info --fail-on error,warning,info,pedantic "$work"/*.changes 2>&1 |
  grep -v "running with root privileges" || true
# --fail-on gives the status; grep above only keeps the root notice out of the log.
lintian --pedantic --fail-on error,warning,info,pedantic "$work"/*.changes >/dev/null 2>&1 ||
  { echo "lintian reported tags"; exit 1; }
echo "lintian: no tags"

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP installing the package and the libvirt cases: not root"
  exit 0
fi
if dpkg-query -W -f='${Status}' vhost-device-gpu 2>/dev/null | grep -q "install ok installed"; then
  echo "vhost-device-gpu is already installed here: not replacing it; libvirt cases skipped"
  exit 0
fi
echo "== dpkg -i"
installed_here=1  # Before: a failed install is removed too.
dpkg -i "$deb" >/dev/null
status=0
for case in libvirt-2d libvirt-3d; do
  echo "== e2e $case against the installed package"
  set +e
  python3 tests/e2e/e2e.py --daemon /usr/bin/vhost-device-gpu --case "$case" \
    --guest-dir "$guest_dir" --installed-descriptor
  rc=$?
  set -e
  if [[ $rc -ne 0 && $rc -ne 77 ]]; then status=1; fi
done
exit $status
