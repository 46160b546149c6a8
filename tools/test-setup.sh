#!/usr/bin/env bash
# Prepare a fresh Debian machine (as root) for serialproxy's tests and demo:
# Debian packages, RabbitMQ, PostgreSQL and MariaDB, libvirtd with the test
# guest, HAProxy, the console page's npm packages (node_modules, from
# package-lock.json), Chromium for the browser tests, .venv with tox
# and serialproxy installed, and Keystone in .keystone-venv.
# Idempotent: re-running only checks.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
. "$here/common.sh"

log() { echo "test-setup: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }

# Python build needs (libvirt-python compiles against libvirt-dev), git for
# pbr's version, and the broker of the multi-process tests.
ensure_debian_packages python3 python3-venv python3-dev gcc pkg-config \
    libvirt-dev git rabbitmq-server openssl
# The browser tests run Debian's Chromium (Playwright's own browser
# downloads are not used); DejaVu gives the page's monospace font.
ensure_debian_packages chromium fonts-dejavu-core
# The multi-host test puts its two proxies behind HAProxy, as
# doc/deployment.rst does, and its hosts in network namespaces
# (tests/functional/test_multi_host.py; socat relays RabbitMQ to them).
ensure_debian_packages haproxy iproute2 socat
# The SSH console tests drive Debian's OpenSSH client and ssh-keygen
# (tests/functional/test_ssh_consoles.py).
ensure_debian_packages openssh-client

# The console page's xterm.js, pinned by package-lock.json; building an
# sdist or wheel copies it from here (tools/build_page_assets.py, which
# reuses node_modules by the stamp below). Node and npm from Debian unless
# this machine already has them.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    ensure_debian_packages nodejs npm
fi
lock_sum=$(cat "$repo/package.json" "$repo/package-lock.json" | sha256sum)
stamp=$repo/node_modules/.serialproxy-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    log "installing the console page's npm packages (npm ci)"
    (cd "$repo" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$lock_sum" > "$stamp"
fi
log "npm packages of the console page installed"

# RabbitMQ: start it when nothing answers on its port.
rabbit_answers() {
    rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1
}
if ! rabbit_answers; then
    log "starting RabbitMQ"
    if [ -d /run/systemd/system ]; then
        systemctl start rabbitmq-server
    else
        rabbitmq-server -detached
    fi
    for _ in $(seq 120); do rabbit_answers && break; sleep 1; done
    rabbit_answers || { log "RabbitMQ did not come up"; exit 1; }
fi
log "RabbitMQ answers"

# The demo needs no SQL server (serialproxy-all uses SQLite): it sets
# SP_SETUP_SQL=0.
if [ "${SP_SETUP_SQL:-1}" = 1 ]; then
    bash "$here/setup-sql.sh"
fi
bash "$here/setup-libvirt.sh"
bash "$here/build-guest.sh"

# One virtualenv for tox, the demo and interactive use.
if [ ! -x "$repo/.venv/bin/python" ]; then
    python3 -m venv "$repo/.venv"
fi
"$repo/.venv/bin/pip" install -q --upgrade pip
"$repo/.venv/bin/pip" install -q tox -r "$repo/requirements.txt" \
    -r "$repo/test-requirements.txt" -e "$repo"
log "ready: .venv has tox and serialproxy"

# Keystone for the functional test that signs in against a real one
# (tests/functional/test_keystone.py): from PyPI into a virtualenv of its
# own, so that its pins never meet ours, with the uwsgi that serves it.
# The demo needs none: it sets SP_SETUP_KEYSTONE=0.
if [ "${SP_SETUP_KEYSTONE:-1}" = 1 ]; then
    keystone_reqs="keystone==30.0.0 uwsgi>=2.0.21"
    keystone_venv=$repo/.keystone-venv
    stamp=$keystone_venv/.serialproxy-installed
    if [ "$(cat "$stamp" 2>/dev/null)" != "$keystone_reqs" ]; then
        log "installing Keystone into .keystone-venv ($keystone_reqs)"
        [ -x "$keystone_venv/bin/python" ] || python3 -m venv "$keystone_venv"
        "$keystone_venv/bin/pip" install -q --upgrade pip
        # Word splitting of the list is wanted: one argument a requirement.
        # shellcheck disable=SC2086
        "$keystone_venv/bin/pip" install -q $keystone_reqs
        printf '%s\n' "$keystone_reqs" > "$stamp"
    fi
    log "ready: .keystone-venv has Keystone"
fi
