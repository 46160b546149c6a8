"""Every byte through a real proxy, both ways, and memory under a flood.

A real serialproxy-proxy of two worker processes and serialproxy-consoleauth
over RabbitMQ; the test process stands in for the compute agent and the
guest's serial port (a QEMU serial port moves a few hundred KB/s, far too
slow for hundreds of MB), and is the websocket client, masking its frames
itself. See proxy_world.py.

SERIALPROXY_TEST_INTEGRITY_MB sets the bytes each way (default 256);
SERIALPROXY_TEST_SEED replays a run (its seed is a detail of every test).
"""

import hashlib
import math
import os
import random
import re
import threading
import time

import numpy
from testtools import content

from tests.harness import fixtures as func_fixtures
from tests.harness import proxy_world
from tests.harness import testcase

MiB = 1024 * 1024
SIZE = int(os.environ.get('SERIALPROXY_TEST_INTEGRITY_MB', '256')) * MiB
# [console] max_frame_bytes by default: the largest frame a client may send.
MAX_FRAME = MiB
# Frame sizes around the edges of the three header forms, and the limit.
EDGE_SIZES = [1, 125, 126, 127, 65535, 65536, 65537, MAX_FRAME,
              MAX_FRAME - 1, 2]
TRANSFER_TIMEOUT = 600
# Nothing moving either way for this long is a stall.
STALL_SECONDS = 30
FLOOD_SECONDS = 10
SLOW_READ_BYTES = 4096
SLOW_READ_EVERY = 0.05
RSS_GROWTH_LIMIT_KIB = 30 * 1024


def random_sizes(rnd, total, top=MAX_FRAME):
    """Sizes from 1 to top adding up to total: the edges first, then
    log-uniform, so small and large pieces are both common."""
    edges = iter(EDGE_SIZES)
    done = 0
    while done < total:
        size = next(edges, None) or int(math.exp(
            rnd.uniform(0, math.log(top + 1))))
        size = max(1, min(size, top, total - done))
        yield size
        done += size


class Stream:
    """One direction's bytes: a count and a SHA-256, shared by threads."""

    def __init__(self):
        self.bytes = 0
        self.sha = hashlib.sha256()
        self.done = threading.Event()

    def add(self, data):
        self.sha.update(data)
        self.bytes += len(data)


class ProxyIntegrityTest(testcase.TestCase):
    def setUp(self):
        super().setUp()
        seed = int(os.environ.get('SERIALPROXY_TEST_SEED') or
                   random.randrange(1 << 32))
        self.addDetail('seed', content.text_content(str(seed)))
        self.rnd = random.Random(seed)
        self.seed = seed
        self.errors = []
        self.guest_handler = None
        self.guest = self.useFixture(proxy_world.GuestPort(
            lambda sock: self.guest_handler(sock)))
        self.world = self.useFixture(proxy_world.ProxyWorld(workers=2))

    def thread(self, target, *args):
        """A daemon thread whose exception fails the test."""
        def run():
            try:
                target(*args)
            except BaseException as exc:
                self.errors.append('%s: %r' % (target.__name__, exc))
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def check_errors(self):
        if self.errors:
            raise AssertionError('; '.join(self.errors))

    def connect(self):
        # Longer than STALL_SECONDS: a stall is reported with its figures.
        client = self.world.connect(self.world.token(self.guest.port),
                                    timeout=STALL_SECONDS * 2)
        self.addCleanup(client.close)
        return client

    def test_every_byte_both_ways_with_random_frame_and_write_sizes(self):
        to_guest_sent, to_guest_got = Stream(), Stream()
        to_client_sent, to_client_got = Stream(), Stream()
        opened, finished = threading.Event(), threading.Event()
        self.addCleanup(finished.set)
        self.addCleanup(opened.set)
        client_rng = numpy.random.default_rng([self.seed, 1])
        guest_rng = numpy.random.default_rng([self.seed, 2])
        client_sizes = random_sizes(random.Random(self.rnd.random()), SIZE)
        guest_sizes = random_sizes(random.Random(self.rnd.random()), SIZE)
        frames = {'count': 0}

        def client_sends(client):
            for size in client_sizes:
                payload = client_rng.bytes(size)
                to_guest_sent.add(payload)
                client.send(payload)
                frames['count'] += 1
            to_guest_sent.done.set()

        def client_receives(client):
            while to_client_got.bytes < SIZE:
                client.pump(to_client_got.add)
            to_client_got.done.set()

        def guest_writes(sock):
            for size in guest_sizes:
                data = guest_rng.bytes(size)
                to_client_sent.add(data)
                sock.sendall(data)
            to_client_sent.done.set()

        def guest_reads(sock):
            buf = bytearray(MiB)
            view = memoryview(buf)
            while to_guest_got.bytes < SIZE:
                count = sock.recv_into(buf)
                if not count:
                    raise AssertionError('the proxy closed the guest '
                                         'connection')
                to_guest_got.add(view[:count])
            to_guest_got.done.set()

        def guest(sock):
            # Output from before the session is open is another test's.
            opened.wait(60)
            writer = self.thread(guest_writes, sock)
            guest_reads(sock)
            writer.join()
            # Closing now would end the session: hold it until the end.
            finished.wait(TRANSFER_TIMEOUT)

        self.guest_handler = guest
        client = self.connect()
        opened.set()
        started = time.monotonic()
        threads = [self.thread(client_sends, client),
                   self.thread(client_receives, client)]
        streams = (to_guest_sent, to_guest_got, to_client_sent,
                   to_client_got)
        last_progress, last_counts = started, None
        while not all(s.done.is_set() for s in streams):
            now = time.monotonic()
            counts = [s.bytes for s in streams]
            if counts != last_counts:
                last_progress, last_counts = now, counts
            progress = ('%d/%d bytes sent/received to the guest, %d/%d to '
                        'the client of %d each way after %.0fs'
                        % (*counts, SIZE, now - started))
            if self.errors:
                self.errors.append(progress)
                self.check_errors()
            if now - last_progress > STALL_SECONDS:
                raise AssertionError('stalled for %ds: %s'
                                     % (STALL_SECONDS, progress))
            if now - started > TRANSFER_TIMEOUT:
                raise AssertionError('too slow: ' + progress)
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        for thread in threads:
            thread.join(10)
        self.check_errors()
        self.addDetail('transfer', content.text_content(
            '%d MiB each way at once in %.1fs (%.1f MiB/s each way); %d '
            'client frames' % (SIZE // MiB, elapsed, SIZE / MiB / elapsed,
                               frames['count'])))
        self.assertEqual((SIZE, SIZE), (to_guest_got.bytes,
                                        to_client_got.bytes))
        self.assertEqual(to_guest_sent.sha.hexdigest(),
                         to_guest_got.sha.hexdigest(),
                         'the guest got other bytes than the client sent')
        self.assertEqual(to_client_sent.sha.hexdigest(),
                         to_client_got.sha.hexdigest(),
                         'the client got other bytes than the guest wrote')

        # The proxy counted the same bytes.
        client.close()
        func_fixtures.wait_for(
            lambda: re.search(
                r'Console session \S+ ended: .* bytes_to_guest %d '
                r'bytes_to_client %d ' % (SIZE, SIZE),
                self.world.deployment.logs()),
            30, 'the session end with its byte counts in the proxy log')

    def test_flooding_guest_and_slow_client_keep_proxy_memory_bounded(self):
        sent, got = Stream(), Stream()
        go, stop, finished = (threading.Event(), threading.Event(),
                              threading.Event())
        self.addCleanup(finished.set)
        self.addCleanup(stop.set)
        rng = numpy.random.default_rng([self.seed, 3])
        sizes = random_sizes(random.Random(self.rnd.random()), 1 << 62)

        def flood(sock):
            go.wait(60)
            for size in sizes:
                if stop.is_set():
                    break
                data = rng.bytes(size)
                sent.add(data)
                sock.sendall(data)
            sent.done.set()
            finished.wait(120)

        self.guest_handler = flood
        client = self.connect()
        proxy_pid = self.world.proxy.pid
        before = proxy_world.tree_rss_kib(proxy_pid)
        go.set()

        # Slow: a few KB every 50 ms while the guest writes all it can.
        peak = before
        samples = []
        started = time.monotonic()
        while time.monotonic() - started < FLOOD_SECONDS:
            self.check_errors()
            client.pump(got.add, SLOW_READ_BYTES)
            rss = proxy_world.tree_rss_kib(proxy_pid)
            peak = max(peak, rss)
            samples.append(rss)
            time.sleep(SLOW_READ_EVERY)
        slow_read, flooded = got.bytes, sent.bytes
        stop.set()
        self.addDetail('memory', content.text_content(
            'proxy tree RSS %d KiB before, peak %d KiB, last %d KiB over '
            '%d samples; the guest wrote %d bytes while the client read %d'
            % (before, peak, samples[-1], len(samples), flooded,
               slow_read)))
        # The test did what it says: a slow reader, a guest held back by
        # the proxy rather than buffered in it.
        self.assertLess(slow_read, 4 * MiB)
        self.assertGreater(flooded, slow_read)
        # Between them only socket buffers: two sockets' receive and two
        # sockets' send buffers, at most 32 MiB and 4 MiB each with this
        # machine's tcp_rmem and tcp_wmem. Unheld, the guest would write
        # gigabytes in FLOOD_SECONDS.
        self.assertLess(flooded - slow_read, 128 * MiB,
                        'the guest was not held back')
        self.assertLess(peak - before, RSS_GROWTH_LIMIT_KIB)

        # Fast: everything the guest wrote arrives, in order.
        deadline = time.monotonic() + 120
        while not (sent.done.is_set() and got.bytes >= sent.bytes):
            self.check_errors()
            if time.monotonic() > deadline:
                raise AssertionError(
                    'draining: %d of %d bytes after 120s'
                    % (got.bytes, sent.bytes))
            if got.bytes >= sent.bytes:
                # All written arrived; the guest is about to say it is done.
                sent.done.wait(0.1)
                continue
            client.pump(got.add)
        self.assertEqual(sent.bytes, got.bytes)
        self.assertEqual(sent.sha.hexdigest(), got.sha.hexdigest())

    def test_guest_output_from_its_first_byte_reaches_the_client(self):
        # A guest may print the moment the proxy reaches its serial port,
        # before the client's websocket is open (the proxy still fetches
        # the recent output then): those bytes are the console's too.
        early = b'printed as the proxy connected\r\n'
        late = b'printed a second later\r\n'

        def guest(sock):
            sock.sendall(early)
            time.sleep(1)
            sock.sendall(late)
            sock.recv(1)  # until the session ends

        self.guest_handler = guest
        client = self.connect()
        client.sock.settimeout(5)
        received = bytearray()
        try:
            while len(received) < len(early + late):
                client.pump(received.extend)
        except TimeoutError:
            pass  # what arrived is compared below
        self.assertEqual(early + late, bytes(received))
