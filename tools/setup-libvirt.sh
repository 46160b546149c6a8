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
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' \
        || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "${SP_SKIP_APT:-0}" = 1 ] && die "missing packages: ${missing[*]}"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Lock timeout: another apt run (e.g. a provisioning step) may still hold it.
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
else
    log "packages already installed"
fi

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
#   namespaces = []          private /dev per VM needs udev-populated /dev
#   cgroup_controllers = []  libvirt would try to create per-VM cgroups
#   remember_owner = 0       needs trusted.* xattrs; not worth relying on
#   security_driver = none   no AppArmor/SELinux profiles loaded here
#   dynamic_ownership = 0    guest files are world-readable; nothing to chown
#   stdio_handler = logd     QEMU stdout/stderr + <log file=> go via virtlogd
BEGIN='# BEGIN serialproxy: managed by setup-libvirt.sh, edits here are lost'
END='# END serialproxy'
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
before=$(sha256sum "$QEMU_CONF" | cut -d' ' -f1)
tmp=$(mktemp)
# Drop our old block, comment out other active settings of the same keys
# (libvirt uses the first occurrence), then append the fresh block.
sed -e "/^$BEGIN\$/,/^$END\$/d" \
    -E -e "s/^[[:space:]]*($keys)[[:space:]]*=/#&/" "$QEMU_CONF" > "$tmp"
printf '%s\n' "$block" >> "$tmp"
cat "$tmp" > "$QEMU_CONF"; rm -f "$tmp"
after=$(sha256sum "$QEMU_CONF" | cut -d' ' -f1)
conf_changed=0
[ "$before" = "$after" ] || { conf_changed=1; log "updated $QEMU_CONF"; }

# Guest images live here; qemu (as $QEMU_USER) only needs to traverse it.
install -d -m 0755 /var/lib/libvirt/images/serialproxy

# --- daemons --------------------------------------------------------------------
running() {  # running NAME: the daemon's pidfile points at a live process
    local pid
    pid=$(cat "/run/$1.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}
stop() {  # stop NAME: by pidfile only, never by process name
    local pid i
    pid=$(cat "/run/$1.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    die "$1 (pid $pid) did not exit"
}

if [ -d /run/systemd/system ]; then
    # A real systemd host: let it manage the daemons.
    systemctl start virtlogd.socket virtlogd.service
    if [ "$conf_changed" = 1 ]; then systemctl restart libvirtd; else systemctl start libvirtd; fi
else
    # No init system: run the daemons ourselves (-d = daemonize, writes /run/NAME.pid).
    if running virtlogd; then log "virtlogd already running"; else
        log "starting virtlogd"; virtlogd -d
    fi
    if running libvirtd && [ "$conf_changed" = 1 ]; then
        # Running QEMU guests survive this; libvirtd reconnects to them.
        log "restarting libvirtd to apply qemu.conf"; stop libvirtd
    fi
    if running libvirtd; then log "libvirtd already running"; else
        log "starting libvirtd"; libvirtd -d
    fi
fi

for i in $(seq 60); do
    if virsh -c "$URI" version >/dev/null 2>&1; then
        running virtlogd || [ -d /run/systemd/system ] || die "virtlogd is not running"
        log "libvirt ready at $URI ($(virsh -c "$URI" version | grep -i 'running hypervisor' | sed 's/.*: *//'))"
        exit 0
    fi
    sleep 0.5
done
virsh -c "$URI" version || true
die "libvirt did not answer at $URI within 30s"
