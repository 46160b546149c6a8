"""Benchmark: console URLs per second from serialproxy-all's REST API.

Starts serialproxy-all (SQLite, noauth) on libvirt's test driver, loaded
from a node file that defines running domains with a TCP serial port each
(served by guest_farm.py), waits until the compute agent has reported
them, then asks
POST /v2.1/servers/{id}/remote-consoles as fast as it can from
--concurrency threads, each on a keep-alive connection of its own, for
--seconds each after a second of warm-up. Every URL is one RPC call from
the API to consoleauth (authorize_instance_console), which asks the
compute agent (a second call) and stores the token, so this measures the
in-process messaging and SQLite as much as the API. Last, it opens
--sessions new sessions one after another, each through a fresh URL, and
reports their setup (URL answered to 101).

    python -m tools.bench api_urls [--seconds 10] [--concurrency 1 10]
        [--sessions 200] [--json PATH]

Prints URLs/s and p50/p99 per concurrency (tox -e bench runs it);
--json writes the rows (see api_results.py). The client threads share
the machine with the service: on a small machine the figures are a
floor.
"""

import argparse
import asyncio
import configparser
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

from tests.harness import bench_world as world
from tests.harness.processes import free_port

from tools.bench import api_results

BIN = os.path.dirname(sys.executable)
HARNESS = os.path.dirname(os.path.abspath(world.__file__))
PROJECT = 'c0ffee00c0ffee00c0ffee00c0ffee00'
USER = 'f00df00df00df00df00df00df00df00d'
NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'

NODE = '<node>\n%s</node>\n'
DOMAIN = """<domain type='test'><name>bench-guest-%(number)d</name>
  <uuid>%(uuid)s</uuid>
  <memory>65536</memory><os><type>hvm</type></os>
  <metadata><nova:instance xmlns:nova="%(nova_ns)s">
    <nova:owner><nova:user uuid="%(user)s">u</nova:user>
    <nova:project uuid="%(project)s">p</nova:project></nova:owner>
  </nova:instance></metadata>
  <devices><serial type='tcp'>
    <source mode='bind' host='127.0.0.1' service='%(port)d'/>
    <protocol type='raw'/><target port='0'/></serial></devices>
</domain>
"""
# Servers whose consoles the sessions benchmark opens in turn: a console
# is asked for again only long after its last session released it.
SERVERS = 20


def write_config(directory, api_port, node, **defaults):
    """serialproxy.conf in directory: noauth API on api_port, libvirt's
    test driver on the node file, a proxy on a free port; defaults go
    to [DEFAULT]."""
    proxy_port = free_port()
    config = configparser.ConfigParser()
    config['DEFAULT'] = {'host': 'bench-compute', 'state_path': directory,
                         'instance_report_interval': '1', **defaults}
    config['api'] = {'listen': '127.0.0.1', 'port': str(api_port),
                     'auth_strategy': 'noauth'}
    config['serial_console'] = {
        'serialproxy_host': '127.0.0.1',
        'serialproxy_port': str(proxy_port),
        'base_url': 'ws://127.0.0.1:%d/' % proxy_port}
    config['console'] = {'admin_port': str(free_port())}
    config['libvirt'] = {'connection_uri': 'test://' + node}
    path = os.path.join(directory, 'serialproxy.conf')
    with open(path, 'w') as f:
        config.write(f)
    return path


class AllInOne:
    """serialproxy-all in a temporary directory, on a test:// node."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='api-urls-')
        self.server_ids = [str(uuid.uuid4()) for _ in range(SERVERS)]
        self.server_id = self.server_ids[0]
        self.guest_ports = [free_port() for _ in range(SERVERS)]
        self.api_port = free_port()
        node = os.path.join(self.dir, 'node.xml')
        with open(node, 'w') as f:
            f.write(NODE % ''.join(
                DOMAIN % {'number': number, 'uuid': server_id,
                          'nova_ns': NOVA_NS, 'user': USER,
                          'project': PROJECT, 'port': port}
                for number, (server_id, port) in enumerate(
                    zip(self.server_ids, self.guest_ports))))
        # The domains' serial ports, echoing as a shell would.
        self.guests = subprocess.Popen(
            [sys.executable, os.path.join(HARNESS, 'guest_farm.py'),
             '127.0.0.1', *map(str, self.guest_ports)],
            stdout=subprocess.PIPE)
        self.guests.stdout.readline()
        self.config_file = write_config(self.dir, self.api_port, node)
        self.log = open(os.path.join(self.dir, 'serialproxy-all.log'), 'wb')
        self.proc = subprocess.Popen(
            [os.path.join(BIN, 'serialproxy-all'),
             '--config-file', self.config_file],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                status, _ = request(self.connect(), self.server_id)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        with open(self.log.name) as f:
            sys.exit('serialproxy-all did not hand out a URL:\n' + f.read())

    def connect(self):
        return http.client.HTTPConnection('127.0.0.1', self.api_port,
                                          timeout=60)

    def stop(self):
        self.guests.kill()
        self.guests.wait()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


BODY = json.dumps({'remote_console': {'protocol': 'serial',
                                      'type': 'serial'}})
HEADERS = {'Content-Type': 'application/json',
           'X-Auth-Token': '%s:%s' % (USER, PROJECT),
           'OpenStack-API-Version': 'compute 2.6'}


def request(conn, server_id):
    conn.request('POST', '/v2.1/servers/%s/remote-consoles' % server_id,
                 body=BODY, headers=HEADERS)
    response = conn.getresponse()
    return response.status, response.read()


def run(service, concurrency, seconds):
    """Ask for URLs from concurrency threads for seconds; latencies (s)."""
    latencies, errors = [], []
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    stop_at = []

    def client():
        conn = service.connect()
        mine, failed = [], 0
        start.wait()
        while time.monotonic() < stop_at[0]:
            began = time.perf_counter()
            status, _ = request(conn, service.server_id)
            mine.append(time.perf_counter() - began)
            if status != 200:
                failed += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors.append(failed)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    began = time.monotonic()
    stop_at.append(began + seconds)
    start.wait()
    for t in threads:
        t.join()
    return latencies, sum(errors), time.monotonic() - began


DEPLOYMENT = 'serialproxy-all (SQLite)'
SESSIONS = 'serialproxy-all (SQLite), new session'


async def open_sessions(service, count):
    """serialproxy-all's new sessions, one after another: each asks the
    API for a URL, then opens it. Returns the times from URL to 101 and
    the time of the whole."""
    setups = []
    conn = service.connect()
    began = time.monotonic()
    for number in range(count):
        status, body = request(
            conn, service.server_ids[number % len(service.server_ids)])
        if status != 200:
            raise RuntimeError('console URL: %d %s' % (status, body))
        url = urllib.parse.urlsplit(
            json.loads(body)['remote_console']['url'])
        session = world.Session(url.port, '/?' + url.query)
        url_done = time.perf_counter()
        await session.open()
        setups.append(time.perf_counter() - url_done)
        session.close()
    conn.close()
    return setups, time.monotonic() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--concurrency', type=int, nargs='+',
                        default=[1, 10],
                        help='client threads, one run each (default 1 10)')
    parser.add_argument('--seconds', type=float, default=10,
                        help='length of each run (default 10)')
    parser.add_argument('--sessions', type=int, default=200,
                        help='new sessions opened one after another, each '
                             'through a fresh URL: their setup (URL '
                             'answered to 101) p50/p99 is the last row')
    api_results.add_json_argument(parser)
    args = parser.parse_args()
    service = AllInOne()
    rows = []
    try:
        service.wait_ready()
        print(api_results.HEADER)
        for concurrency in args.concurrency:
            run(service, concurrency, 1)  # warm up
            latencies, errors, elapsed = run(service, concurrency,
                                             args.seconds)
            rows.append(api_results.row(DEPLOYMENT, concurrency, latencies,
                                        errors, elapsed))
            api_results.print_row(rows[-1])
        setups, elapsed = asyncio.run(open_sessions(service, args.sessions))
        rows.append(api_results.row(SESSIONS, 1, setups, 0, elapsed))
        api_results.print_row(rows[-1])
    finally:
        service.stop()
    api_results.write_json(args.json, rows)


if __name__ == '__main__':
    main()
