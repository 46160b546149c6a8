#!/usr/bin/env bash
# Bring serialproxy-all up with the demo guest and print its console URL:
# open it in a browser for the guest's shell. Runs on a fresh Debian
# machine as root; re-running restarts the service and prints a new URL.
#
# Environment:
#   SP_DEMO_PUBLIC_HOST  host name in the printed URL (default 127.0.0.1)
#   SP_DEMO_PROXY_PORT   console proxy port (default 6083)
#   SP_DEMO_API_PORT     REST API port, on 127.0.0.1 (default 8790)
#   SP_DEMO_GUEST        libvirt name of the demo guest (default serialproxy-demo)
#   SP_DEMO_GUEST_PORT   TCP port of its serial console (default 10000)
#   SP_DEMO_ADMIN_PORT   proxy metrics/healthcheck port, on 127.0.0.1 (default 6084)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
state=$repo/.demo
public_host=${SP_DEMO_PUBLIC_HOST:-127.0.0.1}
api_port=${SP_DEMO_API_PORT:-8790}
proxy_port=${SP_DEMO_PROXY_PORT:-6083}
guest=${SP_DEMO_GUEST:-serialproxy-demo}
guest_port=${SP_DEMO_GUEST_PORT:-10000}
admin_port=${SP_DEMO_ADMIN_PORT:-6084}

SP_SETUP_SQL=0 SP_SETUP_KEYSTONE=0 bash tools/test-setup.sh
# virtlogd keeps the guest's serial output in a console log, as Nova's
# guests have one: the recent output a new console session starts with
# comes from it.
SP_SERIAL_LOG=/var/log/libvirt/qemu/$guest-serial.log \
    bash tools/define-guest.sh "$guest" "$guest_port"
uuid=$(virsh -q -c qemu:///system domuuid "$guest")

mkdir -p "$state"
cat > "$state/serialproxy.conf" <<CONF
[DEFAULT]
state_path = $state
[api]
listen = 127.0.0.1
port = $api_port
auth_strategy = noauth
[serial_console]
serialproxy_host = 0.0.0.0
serialproxy_port = $proxy_port
base_url = ws://$public_host:$proxy_port/
[console]
admin_port = $admin_port
CONF

if [ -f "$state/serialproxy-all.pid" ]; then
    kill "$(cat "$state/serialproxy-all.pid")" 2>/dev/null || true
    sleep 1
fi
# The demo's database holds only short-lived tokens and sessions: start it
# afresh, so a schema left by an older checkout (there are no migrations
# yet) cannot break a re-run after a pull.
rm -f "$state/serialproxy.sqlite"
nohup .venv/bin/serialproxy-all --config-file "$state/serialproxy.conf" \
    > "$state/serialproxy-all.log" 2>&1 &
echo $! > "$state/serialproxy-all.pid"

url=$(.venv/bin/python - "$api_port" "$uuid" <<'PY'
import json, sys, time, urllib.error, urllib.request
port, uuid = sys.argv[1:]
req = urllib.request.Request(
    'http://127.0.0.1:%s/v2.1/servers/%s/remote-consoles' % (port, uuid),
    data=json.dumps({'remote_console': {'protocol': 'serial',
                                        'type': 'serial'}}).encode(),
    # remote-consoles exists from microversion 2.6; without the header the
    # API speaks 2.1, where the route is unknown (404).
    headers={'Content-Type': 'application/json',
             'OpenStack-API-Version': 'compute 2.6'}, method='POST')
for _ in range(120):
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(json.load(resp)['remote_console']['url'])
            sys.exit(0)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            sys.exit('API answered %s: %s' % (exc.code, exc.read().decode()))
        time.sleep(1)  # the guest is not registered yet
    except (urllib.error.URLError, ConnectionError):
        time.sleep(1)  # the API is not up yet
sys.exit('no console URL after 120s; see .demo/serialproxy-all.log')
PY
)
# The API answers with the websocket URL (ws://, as Nova does); a browser
# opens the same URL with http:// and the page derives ws:// from it.
page_url=http${url#ws}
cat <<MSG

serialproxy-all is running (log: .demo/serialproxy-all.log).
Open the demo guest's console in a browser (valid for 10 minutes):

  $page_url

In this terminal:  .venv/bin/serialproxy-console '$url'
New URL:           ./tools/demo.sh
Stop it:           kill \$(cat .demo/serialproxy-all.pid)
MSG
