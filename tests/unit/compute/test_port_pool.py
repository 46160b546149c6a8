"""The port pool on a real SQLite file, with real sockets where it binds."""

import multiprocessing
import os
import random
import socket
import sqlite3

from serialproxy.compute import port_pool
from serialproxy import exception
from tests.unit import base

UUID_A = '11111111-1111-4111-8111-111111111111'
UUID_B = '22222222-2222-4222-8222-222222222222'


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def always_free(host, port):
    return True


class ParsePortRangeTest(base.TestCase):
    def test_lo_and_hi_are_read_as_nova_reads_them(self):
        self.assertEqual((10000, 20000),
                         port_pool.parse_port_range('10000:20000'))

    def test_bad_ranges_say_what_is_wrong(self):
        for text, reason in [('10000', 'two numbers'),
                             ('a:b', 'two numbers'),
                             ('1:2:3', 'two numbers'),
                             ('-1:20', 'two numbers'),
                             ('0:100', 'within 1..65535'),
                             ('100:70000', 'within 1..65535'),
                             ('2000:2000', 'lo must be below hi'),
                             ('3000:2000', 'lo must be below hi')]:
            exc = self.assertRaises(exception.InvalidPortRange,
                                    port_pool.parse_port_range, text)
            self.assertIn(reason, str(exc))
            self.assertIn(repr(text), str(exc))
            self.assertEqual(400, exc.code)

    def test_pool_refuses_to_open_on_a_bad_range(self):
        self.assertRaises(exception.InvalidPortRange, port_pool.PortPool,
                          os.path.join(self.state_path, 'p.sqlite'),
                          '20:10', '127.0.0.1')


class PortPoolTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.path = os.path.join(self.state_path, 'pool', 'ports.sqlite')

    def pool(self, port_range='10000:10010', probe=always_free, **kwargs):
        kwargs.setdefault('reuse_delay', 60)
        kwargs.setdefault('busy_retry_interval', 600)
        kwargs.setdefault('pending_timeout', 300)
        pool = port_pool.PortPool(self.path, port_range, '127.0.0.1',
                                  host='compute-1', clock=self.clock,
                                  probe=probe, **kwargs)
        self.addCleanup(pool.close)
        return pool

    def test_allocates_distinct_ports_in_range(self):
        pool = self.pool()
        a = pool.allocate(UUID_A, 3)
        b = pool.allocate(UUID_B, 2)
        self.assertEqual(5, len(set(a + b)))
        self.assertTrue(all(10000 <= p < 10010 for p in a + b))

    def test_allocation_survives_reopening_the_pool(self):
        ports = self.pool().allocate(UUID_A, 2)
        reopened = self.pool()
        self.assertEqual(
            [{'port': ports[0], 'instance_uuid': UUID_A, 'index': 0,
              'confirmed': False},
             {'port': ports[1], 'instance_uuid': UUID_A, 'index': 1,
              'confirmed': False}],
            reopened.allocations())
        self.assertNotIn(ports[0], reopened.allocate(UUID_B, 8))

    def test_allocating_again_returns_the_same_ports(self):
        pool = self.pool()
        first = pool.allocate(UUID_A, 2)
        self.assertEqual(first, pool.allocate(UUID_A, 2))
        grown = pool.allocate(UUID_A, 3)
        self.assertEqual(first, grown[:2])
        self.assertEqual(grown, [a['port'] for a in pool.allocations()])

    def test_exhausted_range_is_a_400_naming_range_and_host(self):
        pool = self.pool('10000:10003')
        pool.allocate(UUID_A, 2)
        exc = self.assertRaises(exception.PortRangeExhausted,
                                pool.allocate, UUID_B, 2)
        self.assertEqual(400, exc.code)
        self.assertIn('10000:10003', str(exc))
        self.assertIn('compute-1', str(exc))
        # All or nothing: the one free port was not taken part way.
        self.assertEqual([], pool.allocations(UUID_B))
        self.assertEqual(1, len(pool.allocate(UUID_B, 1)))

    def test_released_port_is_not_reused_at_once(self):
        pool = self.pool('10000:10002')
        [port] = pool.allocate(UUID_A, 1)
        self.assertEqual([port], pool.release(UUID_A))
        self.assertEqual('released', pool.port_status(port))
        [other] = pool.allocate(UUID_B, 1)
        self.assertNotEqual(port, other)
        # The only free port is the released one, still cooling down.
        self.assertRaises(exception.PortRangeExhausted,
                          pool.allocate, 'c', 1)
        self.clock.now += 60
        self.assertEqual([port], pool.allocate('c', 1))

    def test_allocation_moves_round_the_range(self):
        pool = self.pool('10000:10005', reuse_delay=0)
        [first] = pool.allocate(UUID_A, 1)
        pool.release(UUID_A)
        # Free again at once (no delay), yet the cursor has moved past it.
        self.assertEqual([first + 1], pool.allocate(UUID_B, 1))

    def test_busy_port_is_skipped_and_retried_after_the_interval(self):
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(('127.0.0.1', 0))
        listener.listen()
        busy_port = listener.getsockname()[1]
        pool = self.pool('%d:%d' % (busy_port, busy_port + 1),
                         probe=port_pool.port_is_free)
        exc = self.assertRaises(exception.PortRangeExhausted,
                                pool.allocate, UUID_A, 1)
        self.assertIn('1 found in use', str(exc))
        self.assertEqual('busy', pool.port_status(busy_port))
        listener.close()
        # Remembered: not tested again before the interval is over.
        self.clock.now += 599
        self.assertRaises(exception.PortRangeExhausted,
                          pool.allocate, UUID_A, 1)
        self.clock.now += 1
        self.assertEqual([busy_port], pool.allocate(UUID_A, 1))

    def test_busy_memory_survives_reopening(self):
        probed = []

        def busy(host, port):
            probed.append(port)
            return port != 10000
        self.pool(probe=busy).allocate(UUID_A, 1)
        self.assertEqual([10000, 10001], probed)
        del probed[:]
        self.pool(probe=busy).allocate(UUID_B, 1)
        self.assertEqual([10002], probed)

    def test_sync_confirms_ports_the_domain_names(self):
        pool = self.pool()
        [port] = pool.allocate(UUID_A, 1)
        self.assertEqual([], pool.sync_instance(UUID_A, {port: 0}))
        self.assertTrue(pool.allocations(UUID_A)[0]['confirmed'])

    def test_sync_of_gone_domain_frees_confirmed_keeps_fresh_pending(self):
        pool = self.pool()
        confirmed, pending = pool.allocate(UUID_A, 2)
        pool.sync_instance(UUID_A, {confirmed: 0})
        self.clock.now += 10
        pool.allocate(UUID_A, 2)  # index 1 still pending
        self.assertEqual([confirmed], pool.sync_instance(UUID_A, None))
        self.assertEqual([pending],
                         [a['port'] for a in pool.allocations(UUID_A)])
        self.clock.now += 300
        self.assertEqual([pending], pool.sync_instance(UUID_A, None))
        self.assertEqual([], pool.allocations())

    def test_sync_takes_ports_defined_outside_the_pool(self):
        pool = self.pool('10000:10002')
        pool.sync_instance(UUID_B, {10000: 0, 10001: 1, 5900: 2})
        self.assertEqual([10000, 10001],
                         [a['port'] for a in pool.allocations(UUID_B)])
        self.assertRaises(exception.PortRangeExhausted,
                          pool.allocate, UUID_A, 1)

    def test_domain_naming_an_allocated_port_wins_it(self):
        pool = self.pool()
        [port] = pool.allocate(UUID_A, 1)
        pool.sync_instance(UUID_B, {port: 0})
        self.assertEqual(UUID_B, pool.allocations()[0]['instance_uuid'])

    def test_reconcile_frees_ports_of_unknown_instances(self):
        pool = self.pool()
        a = pool.allocate(UUID_A, 1)
        b = pool.allocate(UUID_B, 1)
        pool.reconcile({UUID_A: {a[0]: 0}, UUID_B: {b[0]: 0}})
        self.assertEqual({UUID_B: b}, pool.reconcile({UUID_A: {a[0]: 0}}))
        self.assertEqual(a, [x['port'] for x in pool.allocations()])

    def test_reconcile_keeps_fresh_pending_allocations(self):
        pool = self.pool()
        pending = pool.allocate(UUID_A, 1)
        self.assertEqual({}, pool.reconcile({}))
        self.clock.now += 299
        self.assertEqual({}, pool.reconcile({}))
        self.clock.now += 1
        self.assertEqual({UUID_A: pending}, pool.reconcile({}))

    def test_reconcile_of_a_lost_pool_rebuilds_it_from_libvirt(self):
        pool = self.pool()
        pool.reconcile({UUID_A: {10003: 0, 10004: 1}})
        self.assertEqual([10003, 10004],
                         [a['port'] for a in pool.allocations(UUID_A)])
        self.assertNotIn(10003, pool.allocate(UUID_B, 8))

    def test_reconcile_drops_expired_rows(self):
        pool = self.pool(reuse_delay=10)
        pool.allocate(UUID_A, 1)
        pool.release(UUID_A)
        self.clock.now += 10
        pool.reconcile({})
        with sqlite3.connect(self.path) as db:
            self.assertEqual(0, db.execute(
                'SELECT count(*) FROM ports').fetchone()[0])

    def test_pool_on_unwritable_path_is_a_clear_error(self):
        blocker = os.path.join(self.state_path, 'file')
        open(blocker, 'w').close()
        exc = self.assertRaises(
            exception.PortPoolUnavailable, port_pool.PortPool,
            os.path.join(blocker, 'pool.sqlite'), '10000:10010',
            '127.0.0.1')
        self.assertIn('pool.sqlite', str(exc))
        self.assertEqual(503, exc.code)


def _allocate_many(path, port_range, worker, count):
    pool = port_pool.PortPool(path, port_range, '127.0.0.1')
    try:
        return [pool.allocate('%d-%d' % (worker, i), 1)[0]
                for i in range(count)]
    finally:
        pool.close()


class ConcurrentProcessesTest(base.TestCase):
    """Several processes allocating from one pool file at once."""

    def test_no_port_is_handed_out_twice(self):
        workers, each = 4, 200
        # Below Linux's ephemeral range, so few ports are busy; the real
        # bind test skips the ones that are.
        lo = random.randrange(20000, 30000 - 1000)
        port_range = '%d:%d' % (lo, lo + 1000)
        path = os.path.join(self.state_path, 'shared.sqlite')
        context = multiprocessing.get_context('spawn')
        with context.Pool(workers) as processes:
            results = processes.starmap(
                _allocate_many,
                [(path, port_range, w, each) for w in range(workers)])
        handed_out = [port for ports in results for port in ports]
        self.assertEqual(workers * each, len(handed_out))
        self.assertEqual(len(handed_out), len(set(handed_out)))
        pool = port_pool.PortPool(path, port_range, '127.0.0.1')
        self.addCleanup(pool.close)
        recorded = {a['instance_uuid']: a['port']
                    for a in pool.allocations()}
        self.assertEqual(workers * each, len(recorded))
        for worker, ports in enumerate(results):
            for i, port in enumerate(ports):
                self.assertEqual(port, recorded['%d-%d' % (worker, i)])
