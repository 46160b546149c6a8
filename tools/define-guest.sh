#!/usr/bin/env bash
# Define and start a serialproxy test guest whose ttyS0 is a raw TCP server on
# 127.0.0.1:PORT (one client at a time, as QEMU's tcp chardev allows).
# Needs tools/setup-libvirt.sh and tools/build-guest.sh to have run.
# Idempotent: re-defining updates the config; a running guest is left running.
#
# Usage: tools/define-guest.sh NAME PORT [UUID]
# Environment:
#   SP_GUEST_DIR    where build-guest.sh put vmlinuz/initramfs.img (default <repo>/.guest)
#   SP_IMAGE_DIR    where the images are copied for QEMU to read
#                   (default /var/lib/libvirt/images/serialproxy)
#   SP_ACCEL        tcg (default) or kvm
#   SP_MEMORY_MIB   guest RAM (default 128)
#   SP_CMDLINE      kernel command line (default "console=ttyS0 quiet")
#   SP_SERIAL_LOG   if set, absolute path of a file virtlogd copies ttyS0 output to
#   SP_REPLACE=1    destroy + undefine an existing domain called NAME first
#   SP_LIBVIRT_URI  default qemu:///system
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true   # bash 5.2: '&' in ${x//a/b}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
src=${SP_GUEST_DIR:-$repo/.guest}
img=${SP_IMAGE_DIR:-/var/lib/libvirt/images/serialproxy}
accel=${SP_ACCEL:-tcg}
mem=${SP_MEMORY_MIB:-128}
cmdline=${SP_CMDLINE:-console=ttyS0 quiet}
serial_log=${SP_SERIAL_LOG:-}
virsh=(virsh -q -c "${SP_LIBVIRT_URI:-qemu:///system}")

log() { echo "define-guest: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
xml_escape() { local s=${1//&/&amp;}; s=${s//</&lt;}; s=${s//>/&gt;}; s=${s//\'/&apos;}; printf '%s' "${s//\"/&quot;}"; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: $0 NAME PORT [UUID]"
name=$1 port=$2 uuid=${3:-}
[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad NAME '$name' (letters, digits, _ . -)"
[[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "bad PORT '$port'"
[ -z "$uuid" ] || [[ $uuid =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] || die "bad UUID '$uuid'"
[[ $mem =~ ^[0-9]+$ ]] || die "bad SP_MEMORY_MIB '$mem'"
case $accel in
    tcg) domtype=qemu ;;
    kvm) domtype=kvm ;;
    *) die "SP_ACCEL must be tcg or kvm, not '$accel'" ;;
esac
[ -z "$serial_log" ] || [[ $serial_log == /* ]] || die "SP_SERIAL_LOG must be an absolute path"
for f in vmlinuz initramfs.img; do
    [ -s "$src/$f" ] || die "$src/$f missing; run tools/build-guest.sh first"
done
"${virsh[@]}" version >/dev/null 2>&1 || die "libvirt not answering; run tools/setup-libvirt.sh first"

# Copy the images where the (unprivileged) qemu user can read them: the repo
# may sit under a private home directory.  Unchanged files are left alone.
install -d -m 0755 "$img"
for f in vmlinuz initramfs.img; do
    cmp -s "$src/$f" "$img/$f" || install -m 0644 "$src/$f" "$img/$f"
done

if "${virsh[@]}" dominfo "$name" >/dev/null 2>&1 && [ "${SP_REPLACE:-0}" = 1 ]; then
    log "replacing existing domain $name"
    "${virsh[@]}" destroy "$name" >/dev/null 2>&1 || true   # fails if not running
    "${virsh[@]}" undefine "$name" >/dev/null
fi
# libvirt refuses to redefine NAME under another UUID: keep the existing one.
if old_uuid=$("${virsh[@]}" domuuid "$name" 2>/dev/null); then
    if [ -z "$uuid" ]; then
        uuid=$old_uuid
    elif [ "${uuid,,}" != "${old_uuid,,}" ]; then
        die "domain $name exists with uuid $old_uuid, not $uuid; set SP_REPLACE=1 to recreate it"
    fi
fi

xml=$(<"$here/guest/domain.xml.in")
uuid_el=; [ -z "$uuid" ] || uuid_el="<uuid>$uuid</uuid>"
log_el=; [ -z "$serial_log" ] || log_el="<log file='$(xml_escape "$serial_log")' append='on'/>"
for kv in "DOMTYPE=$domtype" "NAME=$name" "UUID_ELEMENT=$uuid_el" "MEMORY_MIB=$mem" \
          "KERNEL=$(xml_escape "$img/vmlinuz")" "INITRD=$(xml_escape "$img/initramfs.img")" \
          "CMDLINE=$(xml_escape "$cmdline")" "PORT=$port" "LOG_ELEMENT=$log_el"; do
    xml=${xml//"@${kv%%=*}@"/"${kv#*=}"}
done
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
printf '%s\n' "$xml" > "$tmp"
"${virsh[@]}" define "$tmp" >/dev/null || die "virsh define failed for $name"

state=$("${virsh[@]}" domstate "$name")
if [ "$state" = running ]; then
    log "$name already running (config changes apply after SP_REPLACE=1 or a restart)"
else
    "${virsh[@]}" start "$name" >/dev/null
    log "started $name"
fi
log "$name: serial console on tcp 127.0.0.1:$port (accel $accel, uuid $("${virsh[@]}" domuuid "$name"))"
