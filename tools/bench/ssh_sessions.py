"""SSH console sessions beside websocket ones, in the same world.

Holds --sessions consoles open over the proxy's SSH server (asyncssh's
client, one-time keys pushed through consoleauth as the API does) and as
many over the websocket path, against the same proxy and echoing guests,
then times --rounds echo round trips on each session: p50 and p99 per
transport, and the set-up time per session (key push or token, to the
first byte of the console).

    python -m tools.bench ssh_sessions --sessions 50 --rounds 20
"""

import argparse
import asyncio
import json
import os
import time
import uuid

import asyncssh

from tests.harness import bench_world as world
from tests.harness.measures import percentile


def percentiles(samples):
    return {'p50_ms': round(percentile(samples, .5) * 1000.0, 3),
            'p99_ms': round(percentile(samples, .99) * 1000.0, 3),
            'count': len(samples)}


class SSHConsole:
    """One console over SSH: stdout is where the guest's bytes arrive."""

    def __init__(self, port, instance_uuid, consoleauth):
        self.port = port
        self.instance_uuid = instance_uuid
        self.consoleauth = consoleauth
        self.conn = self.process = None

    async def open(self):
        key = asyncssh.generate_private_key('ssh-ed25519')
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            None, self.consoleauth.authorize_ssh_key, {},
            self.instance_uuid, key.export_public_key().decode())
        self.conn = await asyncssh.connect(
            '127.0.0.1', self.port, username=answer['user'],
            client_keys=[key], known_hosts=None, agent_path=None,
            config=[])
        self.process = await self.conn.create_process(
            term_type='xterm', encoding=None)
        # The proxy says on stderr when the console is open.
        await self.process.stderr.readuntil(b'\r\n')

    async def echo(self, payload):
        self.process.stdin.write(payload)
        received = b''
        while not received.endswith(payload):
            received += await self.process.stdout.read(65536)
        return received

    def close(self):
        if self.conn is not None:
            self.conn.close()


async def hold_and_time(make, count, rounds):
    consoles, setups = [], []
    for i in range(count):
        console = make(i)
        started = time.monotonic()
        await console.open()
        setups.append(time.monotonic() - started)
        consoles.append(console)
    trips = []
    for r in range(rounds):
        for number, console in enumerate(consoles):
            payload = b'echo-%d-%d\n' % (r, number)
            started = time.monotonic()
            await console.echo(payload)
            trips.append(time.monotonic() - started)
    for console in consoles:
        console.close()
    return setups, trips


def register_instances(bench_world, count):
    uuids = [str(uuid.uuid4()) for _ in range(count)]
    bench_world.consoleauth.report_instances({}, world.COMPUTE_HOST, [
        {'uuid': u, 'name': 'bench-%d' % i, 'state': 'running',
         'project_id': None, 'user_id': None}
        for i, u in enumerate(uuids)])
    return uuids


async def run(bench_world, sessions, rounds):
    uuids = register_instances(bench_world, sessions)
    ssh_setups, ssh_trips = await hold_and_time(
        lambda i: SSHConsole(bench_world.ssh_port, uuids[i],
                             bench_world.consoleauth), sessions, rounds)
    tokens = bench_world.issue_tokens(sessions)
    ws_setups, ws_trips = await hold_and_time(
        lambda i: world.Session(bench_world.proxy_port,
                                '/?token=%s' % tokens[i]), sessions, rounds)
    return [
        dict(transport='ssh', sessions=sessions,
             setup=percentiles(ssh_setups),
             round_trip=percentiles(ssh_trips)),
        dict(transport='websocket', sessions=sessions,
             setup=percentiles(ws_setups),
             round_trip=percentiles(ws_trips)),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sessions', type=int, default=50)
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--json', help='write the rows here too')
    world.add_world_arguments(parser, 'proxy workers (default 1)')
    args = parser.parse_args()
    args.ssh = True
    args.workers = args.workers or 1
    bench_world = world.World(args)
    try:
        bench_world.setup()
        rows = asyncio.run(run(bench_world, args.sessions, args.rounds))
    finally:
        bench_world.teardown()
    print('%-10s %8s %12s %12s %12s %12s' % (
        'transport', 'sessions', 'setup p50', 'setup p99', 'echo p50',
        'echo p99'))
    for row in rows:
        print('%-10s %8d %10.2fms %10.2fms %10.3fms %10.3fms' % (
            row['transport'], row['sessions'], row['setup']['p50_ms'],
            row['setup']['p99_ms'], row['round_trip']['p50_ms'],
            row['round_trip']['p99_ms']))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)),
                    exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
