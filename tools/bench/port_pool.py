#!/usr/bin/env python3
"""Allocations per second of the persistent serial port pool.

A benchmark, not a test: it prints figures and asserts nothing about
speed. Persistence is on as in production: a SQLite file on local disk
(WAL, synchronous=NORMAL), one BEGIN IMMEDIATE transaction per allocation,
and the real bind test of every port handed out.

    python -m tools.bench port_pool [--allocations N] [--processes P]

(tox -e bench runs it with its defaults; its arguments go to the proxy
benchmark.)
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid

from serialproxy.compute import port_pool


def _allocate(path, port_range, count, ports_each):
    pool = port_pool.PortPool(path, port_range, '127.0.0.1')
    try:
        start = time.perf_counter()
        for _ in range(count):
            pool.allocate(str(uuid.uuid4()), ports_each)
        return time.perf_counter() - start
    finally:
        pool.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--allocations', type=int, default=5000,
                        help='instances allocated in all (default 5000)')
    parser.add_argument('--processes', type=int, default=1,
                        help='processes allocating at once (default 1)')
    parser.add_argument('--ports-each', type=int, default=1,
                        help='serial ports per instance (default 1)')
    parser.add_argument('--port-range', default='10000:30000',
                        help='pool range (default 10000:30000)')
    parser.add_argument('--dir', default=None,
                        help='directory of the pool file (default: a '
                             'temporary one under $TMPDIR; use local disk)')
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        path = os.path.join(directory, 'serial_port_pool.sqlite')
        each = args.allocations // args.processes
        context = multiprocessing.get_context('spawn')
        start = time.perf_counter()
        with context.Pool(args.processes) as workers:
            timings = workers.starmap(
                _allocate, [(path, args.port_range, each, args.ports_each)]
                * args.processes)
        elapsed = time.perf_counter() - start
        total = each * args.processes
        pool = port_pool.PortPool(path, args.port_range, '127.0.0.1')
        allocated = pool.allocations()
        domains = {}
        for a in allocated:
            domains.setdefault(a['instance_uuid'], {})[a['port']] = a['index']
        start = time.perf_counter()
        pool.reconcile(domains)
        reconcile = time.perf_counter() - start
        pool.close()

    ports = len(allocated)
    distinct = len({a['port'] for a in allocated})
    print('%d allocations (%d ports, %d distinct) by %d process(es): '
          '%.0f allocations/s while allocating (slowest process %.2f s); '
          '%.0f/s wall clock including process start'
          % (total, ports, distinct, args.processes, total / max(timings),
             max(timings), total / elapsed))
    print('reconcile of %d instances against libvirt-style input: %.3f s'
          % (len(domains), reconcile))
    return 0 if distinct == ports == total * args.ports_each else 1


if __name__ == '__main__':
    sys.exit(main())
