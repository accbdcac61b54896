#!/usr/bin/env bash
# Installs what the project needs from Debian's archive (bookworm + bookworm-backports).
# Idempotent: it does nothing when everything is present. Needs root for the install step.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev clang-format clang-tidy
  libcli11-dev libexpected-dev libgtest-dev libgmock-dev libbenchmark-dev
  libpixman-1-dev libseccomp-dev
  libvirglrenderer-dev libepoxy-dev libegl-dev libgbm-dev libdrm-dev libvulkan-dev
  libegl-mesa0 libgl1-mesa-dri mesa-vulkan-drivers virgl-server
  debhelper dpkg-dev lintian
)
# End-to-end tests: a real QEMU 10 (bookworm-backports; Debian 12's 7.2 needs KVM for vhost-user),
# a guest kernel and busybox for the initramfs the tests build.
# The 3D case's guest (prepare-e2e-guest.sh --gl) carries the host's Mesa: gl_draw is built
# against libgles-dev (and the GBM, EGL, DRM headers above) and shipped with libgbm1, libegl1,
# libgles2, Mesa's EGL (libegl-mesa0) and virgl driver (libgl1-mesa-dri) and their libraries.
# The glmark2 case (prepare-e2e-guest.sh --glmark2) puts Debian's glmark2-es2-drm into that guest;
# its run on QEMU's own virtio-gpu-gl-pci needs a GL display, QEMU's GTK one on an Xvfb server.
E2E_PACKAGES=(busybox-static cpio python3 kmod xz-utils
  libgles-dev libgles2 libegl1 libgbm1 glmark2-es2-drm xvfb)
# libvirt 11.3, for the cases where libvirt runs the daemon (it needs QEMU 10 from there too).
BACKPORTS_PACKAGES=(qemu-system-x86 qemu-system-gui qemu-utils
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients)

missing=()
for package in "${BUILD_PACKAGES[@]}" "${E2E_PACKAGES[@]}" "${BACKPORTS_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null &&
   qemu-system-x86_64 --version | grep -Eq 'version (9|[1-9][0-9])\.'; then
  qemu_ok=1
fi

if [[ ${#missing[@]} -eq 0 && $qemu_ok -eq 1 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
backports_list=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat >"$backports_list" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${BUILD_PACKAGES[@]}" "${E2E_PACKAGES[@]}" >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORTS_PACKAGES[@]}" >/dev/null
