"""A proxy worker killed under its sessions, the others untouched.

A real serialproxy-proxy of two worker processes and serialproxy-consoleauth
over RabbitMQ, as in test_proxy_integrity. The guests are echoing TCP ports
in the test process, not QEMU: a QEMU serial port takes one client at a
time, and finding sessions on both workers takes many consoles at once
(where connections land is the kernel's choice), each a token of its own
here. Which worker holds a session is read from the kernel: the worker
whose descriptor table has the proxy's end of the client's connection.
"""

import os
import random
import signal
import time

from testtools import content

from tests.harness import fixtures as func_fixtures
from tests.harness import proxy_world
from tests.harness import testcase

LEASE_TTL = 6
# Sessions opened at most to find two on each worker.
MAX_SESSIONS = 40
# Slack for the lease sweep and the test's own polling, beyond the TTL.
REOPEN_SLACK = 3


class Session:
    """A client with its token, checking every byte echoed is its own."""

    def __init__(self, world, token, worker=None):
        self.world = world
        self.token = token
        self.client = world.connect(token)
        self.worker = worker

    def echoes(self):
        """Send random bytes, assert exactly those come back."""
        payload = os.urandom(random.randrange(1, 65536))
        self.client.send(payload)
        echoed = self.client.receive(len(payload))
        if echoed != payload:
            raise AssertionError('%d bytes sent, other bytes echoed'
                                 % len(payload))

    def ended(self, timeout):
        """Whether the connection ends (close frame, EOF or reset)."""
        self.client.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.client.pump(lambda view: None)
            return False
        except (proxy_world.Closed, ConnectionResetError):
            return True
        except TimeoutError:
            return False


class ProxyWorkersTest(testcase.TestCase):
    def setUp(self):
        super().setUp()
        self.guest = self.useFixture(proxy_world.GuestPort(
            proxy_world.echo))
        self.world = self.useFixture(proxy_world.ProxyWorld(
            workers=2, lease_ttl=LEASE_TTL))

    def session(self, token=None):
        session = Session(self.world, token or self.world.token(
            self.guest.port))
        self.addCleanup(session.client.close)
        session.echoes()
        session.worker = proxy_world.worker_of(
            session.client, self.world.port, self.world.worker_pids())
        self.assertIsNotNone(session.worker,
                             'no worker holds the connection')
        return session

    def sessions_on_both_workers(self, workers, each=2):
        by_worker = {pid: [] for pid in workers}
        for _ in range(MAX_SESSIONS):
            session = self.session()
            by_worker[session.worker].append(session)
            if all(len(held) >= each for held in by_worker.values()):
                return by_worker
        self.fail('%d sessions, none on one of the workers: %r' % (
            MAX_SESSIONS, {pid: len(held) for pid, held in
                           by_worker.items()}))

    def reopen(self, token, deadline):
        """A session on token's console once it is free; every refusal
        before that must be 409 (console in use)."""
        refusals = 0
        while True:
            try:
                return self.session(token), refusals
            except proxy_world.Refused as exc:
                self.assertEqual(409, exc.status, exc.body)
                self.assertIn('Console in use since', exc.body)
                refusals += 1
            if time.monotonic() > deadline:
                raise AssertionError('the console was still in use')
            time.sleep(0.25)

    def test_killed_worker_is_replaced_and_its_consoles_come_free(self):
        workers = self.world.worker_pids()
        self.assertEqual(2, len(workers), workers)
        by_worker = self.sessions_on_both_workers(workers)
        victim, survivor = sorted(workers)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()

        # The dead worker's consoles stay leased to it until the leases
        # expire: at once, another connection is told they are in use.
        victims = by_worker[victim]
        try:
            self.session(victims[0].token)
        except proxy_world.Refused as exc:
            self.assertEqual(409, exc.status)
            self.assertIn('Console in use since', exc.body)
        else:
            self.fail('opened a console leased to the killed worker')
        self.assertLess(time.monotonic() - killed_at, LEASE_TTL)

        # Its clients see their connections end, not hang.
        for session in victims:
            self.assertTrue(session.ended(10), 'a session of the killed '
                            'worker still open')

        # The other worker's sessions echo every byte, before and after
        # the parent replaces the dead worker.
        def replaced():
            for session in by_worker[survivor]:
                session.echoes()
            now = self.world.worker_pids()
            return len(now) == 2 and survivor in now and victim not in now
        func_fixtures.wait_for(replaced, 30, 'a new worker')
        newcomer, = self.world.worker_pids() - {survivor}

        # The dead worker's consoles open again once their leases expire.
        deadline = killed_at + LEASE_TTL + REOPEN_SLACK
        reopened, refusals = self.reopen(victims[0].token, deadline)
        reopened_after = time.monotonic() - killed_at
        self.addDetail('timing', content.text_content(
            'reopened %.1fs after the kill, %d refusals (409) before that'
            % (reopened_after, refusals)))
        self.assertLess(reopened_after, LEASE_TTL + REOPEN_SLACK)
        for session in victims[1:]:
            self.reopen(session.token, deadline)
        reopened.echoes()
        for session in by_worker[survivor]:
            session.echoes()

        # The new worker serves too.
        for _ in range(MAX_SESSIONS):
            if self.session().worker == newcomer:
                break
        else:
            self.fail('no session on the new worker in %d' % MAX_SESSIONS)
        for session in by_worker[survivor]:
            session.echoes()
