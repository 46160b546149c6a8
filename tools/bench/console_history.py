"""Benchmark: reading 4 MiB of console history through the REST API.

Starts serialproxy-all (SQLite, noauth, in-process messaging) or, with
--transport-url, serialproxy-api, -consoleauth and -compute as their own
processes over that broker, on libvirt's test driver with one running
domain whose serial port 0 logs to a file. The log is laid out as
virtlogd leaves it after rotations (console.log.2, .1, .0, console.log;
2 MiB each but the last), holding lines "N\\r\\n". Then it reads the last
--mib MiB of history with GET /v2.1/servers/{id}/serial-console/output,
page after page with start = next (max_bytes = the API's cap, 1 MiB by
default), --runs times on one keep-alive connection, checks every byte,
and prints the time of a whole read (p50, max). The goal: under 1 s.

    python tools/bench/console_history.py [--runs 20] [--mib 4]
        [--transport-url rabbit://...]
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from tools.bench import api_urls

BIN = os.path.dirname(sys.executable)
PROJECT = api_urls.PROJECT
USER = api_urls.USER
# virtlogd's default max_size and max_backups.
MAX_SIZE = 2 * 1024 * 1024
BACKUPS = 3
# api_urls' test:// domain, its serial port 0 logging to a file.
NODE = api_urls.NODE % api_urls.DOMAIN.replace(
    "<protocol type='raw'/>",
    "<log file='%(log)s' append='off'/><protocol type='raw'/>")
free_port = api_urls.free_port


def write_rotated_log(path):
    """A log as virtlogd leaves it: BACKUPS full files and a current one.
    Returns the whole stream."""
    stream = bytearray()
    number = 0
    while len(stream) < (BACKUPS + 0.5) * MAX_SIZE:
        number += 1
        stream += b'%d\r\n' % number
    stream = bytes(stream)
    names = ['%s.%d' % (path, i) for i in range(BACKUPS - 1, -1, -1)]
    for i, name in enumerate(names + [path]):
        with open(name, 'wb') as f:
            f.write(stream[i * MAX_SIZE:(i + 1) * MAX_SIZE])
    return stream


class Services:
    def __init__(self, transport_url=None):
        self.dir = tempfile.mkdtemp(prefix='console-history-')
        self.server_id = str(uuid.uuid4())
        self.api_port = free_port()
        log = os.path.join(self.dir, 'console.log')
        self.stream = write_rotated_log(log)
        node = os.path.join(self.dir, 'node.xml')
        with open(node, 'w') as f:
            f.write(NODE % {'number': 0, 'uuid': self.server_id,
                            'nova_ns': api_urls.NOVA_NS, 'user': USER,
                            'project': PROJECT, 'port': free_port(),
                            'log': log})
        config_file = api_urls.write_config(
            self.dir, self.api_port, node,
            **({'transport_url': transport_url} if transport_url else {}))
        names = (['serialproxy-consoleauth', 'serialproxy-compute',
                  'serialproxy-api'] if transport_url
                 else ['serialproxy-all'])
        if transport_url:
            subprocess.run([os.path.join(BIN, 'serialproxy-manage'),
                            '--config-file', config_file, 'db', 'sync'],
                           check=True, capture_output=True)
        self.procs = []
        for name in names:
            log_file = open(os.path.join(self.dir, name + '.log'), 'wb')
            self.procs.append((subprocess.Popen(
                [os.path.join(BIN, name), '--config-file', config_file],
                stdout=log_file, stderr=subprocess.STDOUT), log_file))

    def connect(self):
        return http.client.HTTPConnection('127.0.0.1', self.api_port,
                                          timeout=60)

    def page(self, conn, start):
        conn.request('GET', '/v2.1/servers/%s/serial-console/output?start=%d'
                     % (self.server_id, start),
                     headers={'X-Auth-Token': '%s:%s' % (USER, PROJECT)})
        response = conn.getresponse()
        body = response.read()
        return response.status, body

    def wait_ready(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc, _ in self.procs):
                break
            try:
                if self.page(self.connect(), 0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        logs = ''
        for _, log_file in self.procs:
            with open(log_file.name, errors='replace') as f:
                logs += f.read()
        self.stop()
        sys.exit('the API never answered the history:\n' + logs[-5000:])

    def stop(self):
        for proc, log_file in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, log_file in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def read_history(services, conn, start):
    """Every byte from start to the end; (data, requests)."""
    data, requests = [], 0
    while True:
        status, body = services.page(conn, start)
        requests += 1
        if status != 200:
            raise SystemExit('API answered %d: %s' % (status, body[:300]))
        page = json.loads(body)['serial_console_output']
        chunk = base64.b64decode(page['data'])
        if not chunk:
            return b''.join(data), requests
        data.append(chunk)
        start = page['next']


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--mib', type=float, default=4)
    parser.add_argument('--transport-url',
                        help='run the services apart, over this broker')
    args = parser.parse_args()
    services = Services(args.transport_url)
    try:
        services.wait_ready()
        conn = services.connect()
        size = int(args.mib * 1024 * 1024)
        start = len(services.stream) - size
        times = []
        for _ in range(args.runs):
            began = time.perf_counter()
            data, requests = read_history(services, conn, start)
            times.append(time.perf_counter() - began)
            if data != services.stream[start:]:
                raise SystemExit('the history read differs from the log')
        conn.close()
    finally:
        services.stop()
    print('console history: %.1f MiB in %d requests across %d rotated '
          'files, %s: p50 %.3f s, max %.3f s over %d runs'
          % (size / 1048576, requests, BACKUPS + 1,
             'over the broker' if args.transport_url else 'serialproxy-all',
             statistics.median(times), max(times), args.runs))
    return 0 if statistics.median(times) < 1 else 1


if __name__ == '__main__':
    sys.exit(main())
