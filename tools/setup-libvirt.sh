#!/usr/bin/env bash
# Prepare this (Debian 12, root) machine to run serialproxy's test guests:
# install libvirt + QEMU, configure QEMU for a machine without systemd/dbus/
# udev/usable cgroups, start virtlogd + libvirtd, wait for libvirt to answer.
# Idempotent: safe to re-run; restarts the daemons only if dead or reconfigured.
#
# Environment:
#   SP_LIBVIRT_URI  libvirt URI to wait for      (default qemu:///system)
#   SP_QEMU_USER    user/group QEMU runs as      (default libvirt-qemu)
#   SP_SKIP_APT=1   never call apt-get (fail if a package is missing)
set -euo pipefail

URI=${SP_LIBVIRT_URI:-qemu:///system}
QEMU_USER=${SP_QEMU_USER:-libvirt-qemu}
QEMU_CONF=/etc/libvirt/qemu.conf
PKGS=(libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
      qemu-system-x86 qemu-utils busybox-static linux-image-amd64 cpio)

log() { echo "setup-libvirt: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

# --- packages ---------------------------------------------------------------
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_debian_packages "${PKGS[@]}" || die "cannot install the packages above"

# --- qemu user ----------------------------------------------------------------
# Debian's postinst normally creates these; it can be skipped in minimal images.
getent group kvm >/dev/null || groupadd --system kvm
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --gid kvm --groups libvirt-qemu --home-dir /var/lib/libvirt \
            --no-create-home --shell /usr/sbin/nologin libvirt-qemu
fi

# --- qemu.conf ----------------------------------------------------------------
# Why each setting (no systemd/dbus/udev here, cgroups not delegated to us):
#   namespaces = []          per-VM mount namespace + private /dev breaks in
#                            containers (mount propagation, no udev)
#   cgroup_controllers = []  per-VM cgroups need writable, delegated cgroups
#   remember_owner = 0       needs trusted.* xattrs (CAP_SYS_ADMIN, fs support)
#   security_driver = none   no AppArmor/SELinux profiles loaded here
#   dynamic_ownership = 0    guest files are world-readable; nothing to chown
#   stdio_handler = logd     QEMU stdout/stderr + <log file=> go via virtlogd
BEGIN='# BEGIN serialproxy: managed by setup-libvirt.sh, edits here are lost'
END='# END serialproxy'
getent passwd "$QEMU_USER" >/dev/null || die "SP_QEMU_USER '$QEMU_USER' does not exist"
block="$BEGIN
user = \"$QEMU_USER\"
group = \"$(id -gn "$QEMU_USER")\"
namespaces = [ ]
cgroup_controllers = [ ]
remember_owner = 0
security_driver = \"none\"
dynamic_ownership = 0
stdio_handler = \"logd\"
$END"
keys='user|group|namespaces|cgroup_controllers|remember_owner|security_driver|dynamic_ownership|stdio_handler'
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
managed_block() {  # managed_block FILE KEYS BLOCK: 0 if FILE changed
    # Drop our old block, comment out other active settings of the same
    # keys (libvirt uses the first occurrence), then append the fresh block.
    touch "$1"
    sed -E -e "/^$BEGIN\$/,/^$END\$/d" \
        -e "s/^[[:space:]]*($2)[[:space:]]*=/#&/" "$1" > "$tmp"
    printf '%s\n' "$3" >> "$tmp"
    cmp -s "$tmp" "$1" && return 1
    cat "$tmp" > "$1"   # keeps the file's owner/mode
    log "updated $1"
}
conf_changed=0
managed_block "$QEMU_CONF" "$keys" "$block" && conf_changed=1

# --- virtlogd.conf --------------------------------------------------------------
# The console history API keeps at least 4 MiB per guest: virtlogd keeps
# max_backups rotated files of up to max_size bytes (each at most 80 bytes
# short, ended at a line's end) besides the current one. These are
# virtlogd's defaults, written down so that nothing lowers them unseen.
VIRTLOGD_CONF=/etc/libvirt/virtlogd.conf
logd_changed=0
managed_block "$VIRTLOGD_CONF" 'max_size|max_backups' "$BEGIN
max_size = 2097152
max_backups = 3
$END" && logd_changed=1

# Guest images live here; qemu (as $QEMU_USER) only needs to traverse it.
install -d -m 0755 /var/lib/libvirt/images/serialproxy

# --- daemons --------------------------------------------------------------------
alive() {  # alive PID NAME: live (not zombie) process called NAME
    # Zombie check: a killed daemon stays a zombie until PID 1 reaps it,
    # which some container/VM inits do only lazily.
    [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] \
        && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}
running() {  # running NAME: /run/NAME.pid (written by NAME -d) is alive
    alive "$(cat "/run/$1.pid" 2>/dev/null)" "$1"
}
stop() {  # stop NAME: by pidfile only, never by process name
    local pid _
    pid=$(cat "/run/$1.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do alive "$pid" "$1" || return 0; sleep 0.2; done
    die "$1 (pid $pid) did not exit"
}

if [ -d /run/systemd/system ]; then
    # A real systemd host: let it manage the daemons.
    systemctl start virtlogd.socket virtlogd.service
    [ "$logd_changed" = 1 ] && systemctl reload virtlogd.service
    if [ "$conf_changed" = 1 ]; then systemctl restart libvirtd; else systemctl start libvirtd; fi
else
    # No init system: run the daemons ourselves (-d = daemonize, writes
    # /run/NAME.pid).  No journal/syslog either, so warnings go to files.
    if running virtlogd && [ "$logd_changed" = 1 ]; then
        # SIGUSR1: virtlogd re-executes itself, reading its config again
        # and keeping every guest's log open (a restart would cut them).
        log "re-executing virtlogd to apply $VIRTLOGD_CONF"
        kill -USR1 "$(cat /run/virtlogd.pid)"
    fi
    if running virtlogd; then log "virtlogd already running"; else
        log "starting virtlogd (log: /var/log/libvirt/virtlogd.log)"
        LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/virtlogd.log" virtlogd -d
    fi
    if running libvirtd && [ "$conf_changed" = 1 ]; then
        # Running QEMU guests survive this; libvirtd reconnects to them.
        log "restarting libvirtd to apply qemu.conf"; stop libvirtd
    fi
    if running libvirtd; then log "libvirtd already running"; else
        log "starting libvirtd (log: /var/log/libvirt/libvirtd.log)"
        LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log" libvirtd -d
    fi
fi

for _ in $(seq 60); do
    if virsh -c "$URI" version >/dev/null 2>&1; then
        running virtlogd || [ -d /run/systemd/system ] || die "virtlogd is not running"
        log "libvirt ready at $URI ($(virsh -c "$URI" version | grep -i 'running hypervisor' | sed 's/.*: *//'))"
        exit 0
    fi
    sleep 0.5
done
virsh -c "$URI" version || true
die "libvirt did not answer at $URI within 30s (see /var/log/libvirt/libvirtd.log)"
