#!/usr/bin/env bash
# Prepares the real-guest rig: a Linux kernel and an initrd that boot under
# QEMU (TCG) and drive a virtio-blk disk, for the tests in __test__/guest.spec.ts
# and scripts/guest/measure.ts. Everything it makes goes under .guest/ (git-ignored,
# or $VIRTIO_QUEUE_GUEST_DIR); running it again rebuilds only what is missing
# or older than its inputs.
#
#   bash scripts/guest/prepare.sh          # as root: also installs the Debian packages
#
# What it needs (Debian bookworm packages): qemu-system-x86 (QEMU 7.2, with
# qemu-storage-daemon in qemu-system-common), busybox-static, cpio, kmod,
# e2fsprogs, util-linux, gcc and libc6-dev (for the static guest program).
# The kernel is linux-image-cloud-amd64's kernel package, downloaded with
# `apt-get download` and unpacked with `dpkg -x`, never installed.
#
# Output: .guest/vmlinuz, .guest/initrd.cpio, .guest/rig.json (what was built).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${VIRTIO_QUEUE_GUEST_DIR:-$root/.guest}
mkdir -p "$out"
log() { echo "prepare: $*"; }
die() {
  echo "prepare: error: $*" >&2
  exit 1
}

# --- 1. Debian packages ------------------------------------------------------
# command -> package that provides it on bookworm
declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86
  [qemu-storage-daemon]=qemu-system-common
  [cpio]=cpio
  [depmod]=kmod
  [modprobe]=kmod
  [mke2fs]=e2fsprogs
  [e2fsck]=e2fsprogs
  [blkdiscard]=util-linux
  [gcc]=gcc
  [dpkg-deb]=dpkg
)
missing=()
for cmd in "${!need[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The initrd's busybox must be the static one; gcc -static needs libc.a.
for pkg in busybox-static libc6-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" = 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing Debian packages: ${missing[*]}
  install them as root:  apt-get update && apt-get install -y ${missing[*]}
  then run this script again"
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

# --- 2. The kernel -----------------------------------------------------------
# linux-image-cloud-amd64 is a metapackage; the kernel is the package it depends on.
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$kpkg" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  fi
  [ -n "$kpkg" ] || die "apt-cache knows no linux-image-cloud-amd64 (run apt-get update as root first)"
fi
kdir="$out/kernel/$kpkg"
if [ ! -e "$kdir/.done" ]; then
  log "downloading $kpkg"
  rm -rf "$kdir" "$out/kernel/deb"
  mkdir -p "$kdir" "$out/kernel/deb"
  # apt-get download drops root to the _apt user when it can; a folder it may write avoids a warning.
  chmod 777 "$out/kernel/deb"
  (cd "$out/kernel/deb" && apt-get download -q "$kpkg") || die "apt-get download $kpkg failed"
  dpkg -x "$out"/kernel/deb/"$kpkg"_*.deb "$kdir"
  rm -rf "$out/kernel/deb"
  touch "$kdir/.done"
fi
vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)
kver=${vmlinuz##*/vmlinuz-}
moddir=$kdir/lib/modules/$kver
[ -d "$moddir" ] || die "no modules in $moddir"
# The package ships no modules.dep (the kernel's postinst would make it): make it here.
[ -s "$moddir/modules.dep" ] || depmod -b "$kdir" "$kver"
cp -f "$vmlinuz" "$out/vmlinuz"

# --- 3. The guest program ----------------------------------------------------
if [ ! -x "$out/vqload" ] || [ "$here/vqload.c" -nt "$out/vqload" ]; then
  log "compiling vqload (static)"
  gcc -O2 -Wall -Wextra -Werror -static -pthread -o "$out/vqload.tmp" "$here/vqload.c"
  mv "$out/vqload.tmp" "$out/vqload"
fi

# --- 4. The initrd -----------------------------------------------------------
initrd=$out/initrd.cpio
stamp_inputs=("$here/prepare.sh" "$here/init.sh" "$out/vqload" "$out/vmlinuz")
fresh=1
[ -s "$initrd" ] || fresh=0
for f in "${stamp_inputs[@]}"; do [ "$fresh" = 1 ] && [ "$f" -nt "$initrd" ] && fresh=0; done
if [ "$fresh" = 1 ]; then
  log "up to date: $out (kernel $kver)"
  exit 0
fi

log "building the initrd (kernel $kver)"
tree=$out/tree
rm -rf "$tree"
mkdir -p "$tree"/{bin,sbin,etc,proc,sys,dev,tmp,mnt,modules,lib64,lib/x86_64-linux-gnu}
cp /bin/busybox "$tree/bin/busybox"
cp "$here/init.sh" "$tree/init"
chmod 755 "$tree/init"
cp "$out/vqload" "$tree/bin/vqload"

# Modules: the virtio PCI transport and the block driver, with every dependency in
# load order as modprobe resolves it from modules.dep. Modules the kernel has built
# in resolve to nothing. Compressed modules are decompressed (busybox insmod reads
# plain ELF).
wanted=(virtio_pci virtio_blk crc32c_generic)
: >"$tree/modules/order"
for m in "${wanted[@]}"; do
  lines=$(modprobe -d "$kdir" -S "$kver" --show-depends "$m" 2>&1) || {
    case "$lines" in
    *"not found"*) continue ;; # not a module of this kernel (built in or absent)
    *) die "modprobe --show-depends $m: $lines" ;;
    esac
  }
  while read -r kind path _; do
    [ "$kind" = insmod ] || continue
    name=$(basename "$path")
    plain=${name%.xz}
    plain=${plain%.zst}
    grep -qx "$plain" "$tree/modules/order" && continue
    case "$name" in
    *.xz) xz -dc "$path" >"$tree/modules/$plain" ;;
    *.zst) zstd -qdc "$path" >"$tree/modules/$plain" ;;
    *) cp "$path" "$tree/modules/$plain" ;;
    esac
    echo "$plain" >>"$tree/modules/order"
  done <<<"$lines"
done
grep -q '^virtio_blk\.ko$' "$tree/modules/order" || die "virtio_blk.ko was not found in $moddir"

# Dynamically linked host programs, with their shared libraries at the same paths.
copy_prog() {
  local src=$1 lib
  cp -L "$src" "$tree/sbin/$(basename "$src")"
  for lib in $(ldd "$src" | grep -o '/[^ ]*'); do
    mkdir -p "$tree$(dirname "$lib")"
    cp -L "$lib" "$tree$lib"
  done
}
copy_prog "$(command -v mke2fs)"
copy_prog "$(command -v e2fsck)"
copy_prog "$(command -v blkdiscard)"
ln -s mke2fs "$tree/sbin/mkfs.ext4"
ln -s e2fsck "$tree/sbin/fsck.ext4"
[ -e /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$tree/etc/mke2fs.conf"

modules_json=$(sed 's/.*/"&"/' "$tree/modules/order" | paste -sd, -)
(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$initrd.tmp"
mv "$initrd.tmp" "$initrd"
rm -rf "$tree"

cat >"$out/rig.json" <<EOF
{
  "kernelPackage": "$kpkg",
  "kernelVersion": "$kver",
  "modules": [$modules_json],
  "qemu": "$(qemu-system-x86_64 --version | head -n 1)"
}
EOF
log "ready: $out/vmlinuz, $initrd ($(du -h "$initrd" | cut -f1))"
