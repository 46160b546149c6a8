"""Benchmark: console URLs per second, serialproxy-api's own server vs uwsgi.

The real world of the functional tests (tests/harness/fixtures.py): a
QEMU guest, serialproxy-consoleauth (tokens in PostgreSQL),
serialproxy-compute and serialproxy-proxy over RabbitMQ. In front of them,
one after the other on the same port:

    builtin   serialproxy-api (its threaded wsgiref server, one process)
    uwsgi     etc/serialproxy/serialproxy-api-uwsgi.ini as shipped, but for
              the socket and --processes

Clients POST /v2.1/servers/{id}/remote-consoles (noauth, microversion 2.6)
in --concurrency threads, a new connection per request as both servers
close them, for --seconds each, after a short warm-up. Each URL is one
RPC call from the API to consoleauth, which asks the compute agent.
Printed per server and concurrency: console URLs/s, p50 and p99 latency,
errors; --json writes the rows (see api_results.py). The built-in server
is measured again at the end: the spread of the two is the noise of the
machine.

    python -m tools.bench api_uwsgi [--seconds 10] [--concurrency 1 10]
        [--processes 2] [--json PATH]
"""

import argparse
import http.client
import json
import threading
import time

import fixtures

from tests.harness import fixtures as func_fixtures
from tests.harness import uwsgi_api
from tools.bench import api_results


class Backends(fixtures.Fixture):
    def _setUp(self):
        self.guest = self.useFixture(func_fixtures.Guest())
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, database='postgresql',
            options={'DEFAULT': {'debug': 'false'}}))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        for name in ('serialproxy-consoleauth', 'serialproxy-compute',
                     'serialproxy-proxy'):
            self.deployment.start(name)
        self.deployment.wait_ready()


def console_url(port, server):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        conn.request('POST', '/v2.1/servers/%s/remote-consoles' % server,
                     json.dumps({'remote_console': {'protocol': 'serial',
                                                    'type': 'serial'}}),
                     {'Content-Type': 'application/json',
                      'OpenStack-API-Version': 'compute 2.6'})
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    finally:
        conn.close()


def run(port, server, concurrency, seconds):
    """(latencies of the URLs answered, errors, seconds taken)."""
    latencies = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                ok = console_url(port, server)
            except OSError:
                ok = False
            elapsed = time.monotonic() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1
    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.monotonic() - started


def measure(label, backends, args, rows):
    port = backends.deployment.api_port
    server = backends.guest.uuid
    backends.deployment.console_url(server)  # registered, and warm
    run(port, server, max(args.concurrency), 2)
    for concurrency in args.concurrency:
        rows.append(api_results.row(label, concurrency,
                                    *run(port, server, concurrency,
                                         args.seconds)))
        api_results.print_row(rows[-1])


BUILTIN = 'serialproxy-api (builtin)'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=10,
                        help='length of each run (default 10)')
    parser.add_argument('--concurrency', type=int, nargs='+',
                        default=[1, 10],
                        help='client threads, one run each (default 1 10)')
    parser.add_argument('--processes', type=int, nargs='+', default=[2],
                        help='uwsgi worker processes (each run in turn)')
    api_results.add_json_argument(parser)
    args = parser.parse_args()
    rows = []
    with Backends() as backends:
        print(api_results.HEADER)
        proc = backends.deployment.start('serialproxy-api')
        backends.deployment.wait_ready()
        measure(BUILTIN, backends, args, rows)
        backends.deployment.stop(proc)
        for processes in args.processes:
            with uwsgi_api.UwsgiAPI(backends.deployment,
                                    processes=processes):
                measure('serialproxy-api (uwsgi, %d processes)'
                        % processes, backends, args, rows)
        # Again, as the machine's load may have changed meanwhile.
        proc = backends.deployment.start('serialproxy-api')
        backends.deployment.wait_ready()
        measure(BUILTIN + ' again', backends, args, rows)
    api_results.write_json(args.json, rows)


if __name__ == '__main__':
    main()
