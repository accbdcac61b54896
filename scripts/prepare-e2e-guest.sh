#!/usr/bin/env bash
# Prepares the guest of the end-to-end tests (tests/e2e) in OUTPUT_DIR:
#   OUTPUT_DIR/vmlinuz        Debian's guest kernel (never installed on the host)
#   OUTPUT_DIR/initramfs.img  busybox-static, tests/e2e/guest/init, the virtio-gpu modules and
#                             the static test programs (fb_draw, kms_draw)
#   OUTPUT_DIR/initramfs-gl.img  (with --gl) initramfs.img followed by an uncompressed archive
#                             with Mesa's virgl driver and the GL test program gl_draw: see
#                             build_gl_initramfs
#   OUTPUT_DIR/initramfs-glmark2.img  (with --glmark2, which implies --gl) initramfs-gl.img with
#                             Debian's glmark2-es2-drm and its data added: see
#                             build_glmark2_initramfs
#
# Usage: scripts/prepare-e2e-guest.sh OUTPUT_DIR [--gl|--glmark2]
#
# Idempotent and cached: the kernel package is downloaded and unpacked once (delete
# OUTPUT_DIR/kernel to refresh it); each initramfs is rebuilt only when an input is newer.
# Set VGPU_GUEST_KERNEL_PACKAGE (e.g. linux-image-6.1.0-56-amd64) to pin the kernel.
# Exit status: 0 ready, 77 the kernel cannot be obtained (offline and nothing cached), 1 error.
set -euo pipefail

readonly kExitUnavailable=77

if [[ $# -lt 1 || $# -gt 2 || ( $# -eq 2 && $2 != --gl && $2 != --glmark2 ) ]]; then
  echo "usage: $0 OUTPUT_DIR [--gl|--glmark2]" >&2
  exit 1
fi
with_gl=0
with_glmark2=0
[[ $# -eq 2 ]] && with_gl=1
[[ $# -eq 2 && $2 == --glmark2 ]] && with_glmark2=1
output_dir=$(mkdir -p "$1" && cd "$1" && pwd)
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
guest_source_dir="$source_dir/tests/e2e/guest"
kernel_dir="$output_dir/kernel"

log() { echo "prepare-e2e-guest: $*" >&2; }

# The versioned package that linux-image-amd64 currently depends on, e.g. linux-image-6.1.0-56-amd64.
kernel_package_name() {
  if [[ -n ${VGPU_GUEST_KERNEL_PACKAGE:-} ]]; then
    echo "$VGPU_GUEST_KERNEL_PACKAGE"
    return
  fi
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}

# Downloads the kernel package with apt (no install) and unpacks vmlinuz and the DRM/virtio module
# trees into $kernel_dir. Runs `apt-get update` once if the first download fails.
fetch_kernel() {
  local package
  package=$(kernel_package_name)
  if [[ -z $package ]]; then
    apt-get update -qq >/dev/null 2>&1 || true
    package=$(kernel_package_name)
  fi
  if [[ -z $package ]]; then
    log "cannot find a linux-image-*-amd64 package (apt-cache depends linux-image-amd64)"
    exit $kExitUnavailable
  fi
  local download_dir="$output_dir/download"
  rm -rf "$download_dir" "$kernel_dir"
  mkdir -p "$download_dir"
  log "downloading $package"
  if ! (cd "$download_dir" && apt-get download "$package" >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    if ! (cd "$download_dir" && apt-get download "$package" >/dev/null 2>&1); then
      log "apt-get download $package failed (offline?)"
      exit $kExitUnavailable
    fi
  fi
  local deb
  deb=$(echo "$download_dir"/*.deb)
  local unpack_dir="$kernel_dir.partial"
  rm -rf "$unpack_dir"
  mkdir -p "$unpack_dir"
  # Only what the guest needs: the kernel and the virtio and DRM module directories.
  dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$unpack_dir" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/virtio/*' \
      './lib/modules/*/kernel/drivers/gpu/drm/*'
  mv "$unpack_dir" "$kernel_dir"
  rm -rf "$download_dir"
}

# Prints the file of module $1 (a name as `modinfo -F depends` prints it, e.g. virtio_gpu).
module_file() {
  local name=$1 pattern
  pattern=${name//[-_]/[-_]}
  find "$kernel_dir/lib/modules" -regex ".*/${pattern}\.ko\(\.xz\|\.zst\|\.gz\)?" | head -n 1
}

# Appends module $1 and, first, its dependencies (depth first) to the array load_order.
declare -a load_order=()
add_module() {
  local name=${1//-/_} file dependency
  for loaded in "${load_order[@]}"; do
    [[ $loaded == "$name" ]] && return
  done
  file=$(module_file "$name")
  if [[ -z $file ]]; then
    log "module $name not found in $kernel_dir"
    exit 1
  fi
  for dependency in $(modinfo -F depends "$file" | tr ',' ' '); do
    add_module "$dependency"
  done
  load_order+=("$name")
}

# Copies module $1 into $2 as NAME.ko, decompressed (busybox insmod cannot read .ko.xz).
install_module() {
  local name=$1 destination=$2/$1.ko file
  file=$(module_file "$name")
  case "$file" in
    *.xz) xz -dc "$file" >"$destination" ;;
    *.zst) zstd -dcq "$file" >"$destination" ;;
    *.gz) gzip -dc "$file" >"$destination" ;;
    *) cp "$file" "$destination" ;;
  esac
}

build_initramfs() {
  local root="$output_dir/initramfs.root"
  rm -rf "$root"
  mkdir -p "$root"/{bin,dev,proc,sys,etc,lib/modules}

  cp /bin/busybox "$root/bin/busybox"
  install -m 0755 "$guest_source_dir/init" "$root/init"

  local cflags=(-static -O2 -Wall -Wextra -Werror -std=gnu11 -I/usr/include/libdrm)
  gcc "${cflags[@]}" -o "$root/bin/fb_draw" "$guest_source_dir/fb_draw.c"
  gcc "${cflags[@]}" -o "$root/bin/kms_draw" "$guest_source_dir/kms_draw.c"

  load_order=()
  add_module virtio_pci
  add_module virtio_gpu
  for name in "${load_order[@]}"; do
    install_module "$name" "$root/lib/modules"
  done
  printf '%s\n' "${load_order[@]}" >"$root/etc/vgpu-modules"

  # /dev/console comes from the kernel's built-in initramfs, so no device node is needed here.
  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | gzip -1 >"$output_dir/initramfs.img.partial"
  mv "$output_dir/initramfs.img.partial" "$output_dir/initramfs.img"
  rm -rf "$root"
  log "initramfs ready (modules: ${load_order[*]})"
}

# The GL guest: gl_draw, dynamically linked against the host's libdrm, libgbm, libEGL (glvnd) and
# libGLESv2, and what it loads at run time: glvnd's EGL vendor file and Mesa's libEGL_mesa, and
# Mesa's megadriver under its virtio-gpu name (virtio_gpu_dri.so, which links libLLVM). All of it
# with every library `ldd` names, at the host's paths, plus the dynamic loader. The guest runs
# Debian's kernel, so these bookworm libraries fit it. About 200 MB: left uncompressed, because
# the guest unpacks an uncompressed archive much faster under TCG than it could gunzip one.
readonly kMultiarch=x86_64-linux-gnu
readonly kDriDriver=/usr/lib/$kMultiarch/dri/virtio_gpu_dri.so
readonly kEglVendorFile=/usr/share/glvnd/egl_vendor.d/50_mesa.json
readonly kGlLinkedLibraries=(libdrm.so.2 libgbm.so.1 libEGL.so.1 libGLESv2.so.2)
readonly kGlLoadedLibraries=(libEGL_mesa.so.0)

# Prints every library (path) that the files $@ need, as ldd resolves them, including the loader.
library_closure() {
  ldd "$@" | sed -n 's/^.*=> \(\/[^ ]*\) (0x.*$/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*$/\1/p' |
    sort -u
}

gl_inputs() {
  local libraries=() name
  for name in "${kGlLinkedLibraries[@]}" "${kGlLoadedLibraries[@]}"; do
    libraries+=("/usr/lib/$kMultiarch/$name")
  done
  printf '%s\n' "${libraries[@]}" "$kDriDriver"
  library_closure "${libraries[@]}" "$kDriDriver"
}

check_gl_host_files() {
  local missing=() file
  for file in "$kDriDriver" "$kEglVendorFile" /usr/include/gbm.h /usr/include/EGL/egl.h \
    /usr/include/GLES2/gl2.h /usr/include/xf86drm.h /usr/lib/$kMultiarch/libEGL_mesa.so.0; do
    [[ -e $file ]] || missing+=("$file")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "the GL guest needs ${missing[*]} (scripts/install-deps.sh installs them)"
    exit 1
  fi
}

# initramfs-gl.img: the GL files as an uncompressed archive, then initramfs.img (gzip). The kernel
# unpacks concatenated archives in order; the second starts at a 512-byte boundary (cpio pads).
# Copies the libraries of library_closure FILES... under ROOT ($1), at the host's paths.
copy_library_closure() {
  local root=$1 library
  shift
  for library in $(library_closure "$@"); do
    case "$library" in
      /lib64/*) cp -L "$library" "$root/lib64/" ;;
      *) cp -L "$library" "$root/lib/$kMultiarch/" ;;
    esac
  done
}

# Packs directory $1 as a newc cpio archive in front of initramfs $2, into $3 (replaced at once),
# and removes $1. The kernel unpacks concatenated archives in order, so $1's files come on top.
pack_in_front() {
  local root=$1 base=$2 output=$3
  (cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) >"$output.partial"
  cat "$base" >>"$output.partial"
  mv "$output.partial" "$output"
  rm -rf "$root"
}

build_gl_initramfs() {
  local root="$output_dir/initramfs-gl.root"
  rm -rf "$root"
  mkdir -p "$root"/{bin,lib64,lib/$kMultiarch,usr/lib/$kMultiarch/dri} \
    "$root$(dirname "$kEglVendorFile")"
  gcc -O2 -Wall -Wextra -Werror -std=gnu11 -I/usr/include/libdrm -o "$root/bin/gl_draw" \
    "$guest_source_dir/gl_draw.c" -ldrm -lgbm -lEGL -lGLESv2
  copy_library_closure "$root" "$root/bin/gl_draw" "/usr/lib/$kMultiarch/libEGL_mesa.so.0" \
    "$kDriDriver"
  cp -L "/usr/lib/$kMultiarch/libEGL_mesa.so.0" "$root/lib/$kMultiarch/"
  cp -L "$kDriDriver" "$root$kDriDriver"
  cp -L "$kEglVendorFile" "$root$kEglVendorFile"

  pack_in_front "$root" "$output_dir/initramfs.img" "$output_dir/initramfs-gl.img"
  log "GL initramfs ready ($(du -h "$output_dir/initramfs-gl.img" | cut -f1))"
}

# The glmark2 guest: Debian's glmark2-es2-drm (GLES 2 on GBM/KMS, the benchmark scenes drawn
# full-screen and shown with page flips) with its data and the libraries it links beyond the GL
# guest's, at the host's paths, in front of initramfs-gl.img. It loads libEGL and libGLESv2 at
# run time, which the GL guest carries already.
readonly kGlmark2=/usr/bin/glmark2-es2-drm
readonly kGlmark2Data=/usr/share/glmark2

build_glmark2_initramfs() {
  local root="$output_dir/initramfs-glmark2.root"
  rm -rf "$root"
  mkdir -p "$root"/{usr/bin,lib64,lib/$kMultiarch,usr/share}
  cp -L "$kGlmark2" "$root$kGlmark2"
  cp -a "$kGlmark2Data" "$root$kGlmark2Data"
  copy_library_closure "$root" "$kGlmark2"
  pack_in_front "$root" "$output_dir/initramfs-gl.img" "$output_dir/initramfs-glmark2.img"
  log "glmark2 initramfs ready ($(du -h "$output_dir/initramfs-glmark2.img" | cut -f1))"
}

# True when $1 is missing or older than any of the following files.
is_stale() {
  local target=$1
  shift
  [[ -e $target ]] || return 0
  for input in "$@"; do
    [[ $input -nt $target ]] && return 0
  done
  return 1
}

if [[ ! -d $kernel_dir ]]; then
  fetch_kernel
fi
vmlinuz=$(echo "$kernel_dir"/boot/vmlinuz-*)
if [[ ! -f $vmlinuz ]]; then
  log "no kernel in $kernel_dir (delete it to download again)"
  exit 1
fi
ln -sfn "kernel/boot/$(basename "$vmlinuz")" "$output_dir/vmlinuz"

if is_stale "$output_dir/initramfs.img" "${BASH_SOURCE[0]}" "$guest_source_dir"/* "$vmlinuz" /bin/busybox; then
  build_initramfs
fi

if [[ $with_gl -eq 1 ]]; then
  check_gl_host_files
  mapfile -t gl_input_files < <(gl_inputs)
  if is_stale "$output_dir/initramfs-gl.img" "${BASH_SOURCE[0]}" "$output_dir/initramfs.img" \
    "$guest_source_dir/gl_draw.c" "$kEglVendorFile" "${gl_input_files[@]}"; then
    build_gl_initramfs
  fi
fi

if [[ $with_glmark2 -eq 1 ]]; then
  if [[ ! -x $kGlmark2 || ! -d $kGlmark2Data ]]; then
    log "the glmark2 guest needs $kGlmark2 and $kGlmark2Data (scripts/install-deps.sh installs" \
      "glmark2-es2-drm)"
    exit 1
  fi
  if is_stale "$output_dir/initramfs-glmark2.img" "${BASH_SOURCE[0]}" \
    "$output_dir/initramfs-gl.img" "$kGlmark2"; then
    build_glmark2_initramfs
  fi
fi
