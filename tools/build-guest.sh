#!/usr/bin/env bash
# Build the tiny serialproxy test guest from Debian packages:
#   OUTDIR/vmlinuz        the Debian kernel (linux-image-amd64), mode 0644
#   OUTDIR/initramfs.img  gzip'd cpio (newc) of busybox-static + tools/guest/init
# Boot it with "console=ttyS0"; it prints "serialproxy-guest booted" and keeps
# a root shell (a real tty, echoing) on ttyS0.  Skips work if up to date.
#
# Usage: tools/build-guest.sh [OUTDIR]       (default: <repo>/.guest)
# Environment:
#   SP_GUEST_DIR    OUTDIR when no argument is given
#   SP_KERNEL       kernel image (default: newest /boot/vmlinuz-*)
#   SP_BUSYBOX      static busybox binary (default: /bin/busybox)
#   SP_REBUILD=1    rebuild even if outputs look up to date
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=${1:-${SP_GUEST_DIR:-$repo/.guest}}
busybox=${SP_BUSYBOX:-/bin/busybox}
kernel=${SP_KERNEL:-$(ls -1v /boot/vmlinuz-* 2>/dev/null | tail -n1 || true)}

log() { echo "build-guest: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -n "$kernel" ] && [ -r "$kernel" ] \
    || die "no readable kernel (/boot/vmlinuz-*); run tools/setup-libvirt.sh (installs linux-image-amd64) or set SP_KERNEL"
[ -x "$busybox" ] || die "$busybox missing; run tools/setup-libvirt.sh (installs busybox-static)"
# A dynamic busybox would need its libc in the initramfs too.
! ldd "$busybox" >/dev/null 2>&1 || die "$busybox is dynamically linked; install busybox-static"
command -v cpio >/dev/null || die "cpio missing; run tools/setup-libvirt.sh"

inputs=("$kernel" "$busybox" "$here/guest/init" "$here/guest/profile" "$here/build-guest.sh")
# The stamp also catches a switch to another (older-dated) kernel file.
stamp=$(stat -L -c '%n %s %Y' "${inputs[@]}")
up_to_date() {
    local o i
    [ "$(cat "$out/.inputs" 2>/dev/null)" = "$stamp" ] || return 1
    for o in "$out/vmlinuz" "$out/initramfs.img"; do
        [ -s "$o" ] || return 1
        for i in "${inputs[@]}"; do [ "$o" -nt "$i" ] || return 1; done
    done
}
if [ "${SP_REBUILD:-0}" != 1 ] && up_to_date; then
    log "up to date: $out/vmlinuz, $out/initramfs.img"
    exit 0
fi

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,root}
chmod 1777 "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"             # /init's interpreter; rest via --install
install -m 0755 "$here/guest/init" "$root/init"
install -m 0644 "$here/guest/profile" "$root/etc/profile"
# The kernel's built-in initramfs already provides /dev/console, so no mknod
# (and no root) is needed here.

# Sorted, fixed-owner, fixed-mtime archive: identical inputs give identical bytes.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort \
    | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n > "$work/initramfs.img"
install -m 0644 "$work/initramfs.img" "$out/initramfs.img"
install -m 0644 "$kernel" "$out/vmlinuz"   # /boot images may be 0600
printf '%s\n' "$stamp" > "$out/.inputs"
log "built $out/vmlinuz (from $kernel) and $out/initramfs.img ($(stat -c %s "$out/initramfs.img") bytes)"
