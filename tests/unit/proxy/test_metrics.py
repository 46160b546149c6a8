import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from unittest import mock

import fixtures
from prometheus_client import parser

from serialproxy.proxy import admin
from serialproxy.proxy import metrics
from serialproxy.proxy.refusals import RefusalKind
from tests.unit import base

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


def samples(text):
    """{(sample name, sorted label items): value} of exposition text."""
    found = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = \
                sample.value
    return found


def value(name, **labels):
    return metrics.sample_value(name, labels)


def refusal_series():
    """The label sets of serialproxy_refusals_total in this process."""
    return {tuple(sorted(s.labels.items()))
            for family in metrics.registry().collect()
            for s in family.samples
            if s.name == 'serialproxy_refusals_total'}


def run_python(script, *args):
    """Run script in a fresh interpreter: its metrics state stays there."""
    env = dict(os.environ)
    env.pop(metrics.MULTIPROC_ENV, None)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    done = subprocess.run([sys.executable, '-c', script, *args], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=30)
    if done.returncode != 0:
        raise AssertionError('script failed (%d):\n%s%s' % (
            done.returncode, done.stdout, done.stderr))
    return json.loads(done.stdout.strip().splitlines()[-1])


class ProxyMetricsTest(base.TestCase):
    """One process: counts are read as deltas, as tests share a registry."""

    def test_sessions_bytes_and_setup_are_counted(self):
        names = [('serialproxy_sessions_total', {}),
                 ('serialproxy_sessions_active', {}),
                 ('serialproxy_bytes_total', {'direction': 'to_guest'}),
                 ('serialproxy_bytes_total', {'direction': 'to_client'}),
                 ('serialproxy_session_setup_seconds_count', {}),
                 ('serialproxy_session_setup_seconds_sum', {})]
        names += [('serialproxy_session_setup_seconds_bucket', {'le': le})
                  for le in ('0.01', '0.025', '2.5', '5.0', '+Inf')]
        before = [metrics.sample_value(n, labels) for n, labels in names]
        m = metrics.ProxyMetrics()
        m.bytes_to_guest(12)
        m.bytes_to_client(3400)
        m.bytes_to_client(1)
        m.session_opened(0.02)
        m.session_opened(3.0)
        m.session_opened(0.001)
        m.session_closed()
        after = [metrics.sample_value(n, labels) for n, labels in names]
        deltas = [b - a for a, b in zip(before, after)]
        self.assertEqual([3, 2, 12, 3401, 3, 3.021, 1, 2, 2, 3, 3],
                         [round(d, 6) for d in deltas])

    def test_ssh_sessions_are_counted_apart(self):
        before = metrics.sample_value('serialproxy_ssh_sessions_total')
        metrics.ProxyMetrics().ssh_session_opened()
        self.assertEqual(1, metrics.sample_value(
            'serialproxy_ssh_sessions_total') - before)

    def test_open_connections_are_counted_up_and_down(self):
        before = metrics.sample_value('serialproxy_connections_open')
        m = metrics.ProxyMetrics()
        m.connection_opened()
        m.connection_opened()
        self.assertEqual(2, metrics.sample_value(
            'serialproxy_connections_open') - before)
        m.connection_closed()
        self.assertEqual(1, metrics.sample_value(
            'serialproxy_connections_open') - before)
        m.connection_closed()

    def test_instances_share_the_metrics(self):
        before = value('serialproxy_bytes_total', direction='to_guest')
        for _ in range(3):
            metrics.ProxyMetrics().bytes_to_guest(5)
        self.assertEqual(15, value('serialproxy_bytes_total',
                                   direction='to_guest') - before)

    def test_exposition_renders_the_current_values(self):
        m = metrics.ProxyMetrics()
        m.session_opened(0.02)
        m.bytes_to_guest(7)
        m.refused(401, 'invalid_token')
        body, content_type = metrics.exposition()
        self.assertEqual('text/plain; version=0.0.4; charset=utf-8',
                         content_type)
        self.assertIsInstance(body, bytes)
        rendered = samples(body.decode())
        for name, labels in (
                ('serialproxy_sessions_active', {}),
                ('serialproxy_sessions_total', {}),
                ('serialproxy_bytes_total', {'direction': 'to_guest'}),
                ('serialproxy_bytes_total', {'direction': 'to_client'}),
                ('serialproxy_refusals_total',
                 {'status': '401', 'reason': 'invalid_token'}),
                ('serialproxy_session_setup_seconds_bucket', {'le': '0.025'}),
                ('serialproxy_session_setup_seconds_count', {})):
            key = (name, tuple(sorted(labels.items())))
            self.assertIn(key, rendered)
            self.assertEqual(metrics.sample_value(name, labels),
                             rendered[key])
            self.assertGreaterEqual(rendered[key], 0)
        self.assertEqual(1, len([k for k in rendered
                                 if k[0] == 'serialproxy_sessions_active']))
        text = body.decode()
        self.assertIn('# TYPE serialproxy_sessions_active gauge\n', text)
        self.assertIn('# TYPE serialproxy_session_setup_seconds histogram\n',
                      text)

    def test_setup_buckets_are_the_documented_ones(self):
        body, _ = metrics.exposition()
        buckets = sorted(
            float(dict(labels)['le']) for name, labels in samples(
                body.decode())
            if name == 'serialproxy_session_setup_seconds_bucket')
        self.assertEqual(list(metrics.SETUP_BUCKETS) + [float('inf')],
                         buckets)

    def test_refusals_by_status_and_class(self):
        before = value('serialproxy_refusals_total', status='401',
                       reason='invalid_token')
        m = metrics.ProxyMetrics()
        m.refused(401, 'invalid_token')
        m.refused(401, 'invalid_token')
        m.refused(403, 'origin')
        self.assertEqual(2, value('serialproxy_refusals_total', status='401',
                                  reason='invalid_token') - before)
        self.assertGreaterEqual(value('serialproxy_refusals_total',
                                      status='403', reason='origin'), 1)

    def test_a_thousand_refusals_make_one_series(self):
        m = metrics.ProxyMetrics()
        before = value('serialproxy_refusals_total', status='409',
                       reason='in_use')
        for _ in range(1000):
            m.refused(409, 'in_use')
        series = {s for s in refusal_series() if ('status', '409') in s}
        self.assertEqual({(('reason', 'in_use'), ('status', '409'))},
                         series - {(('reason', 'other'), ('status', '409'))})
        self.assertEqual(1000, value('serialproxy_refusals_total',
                                     status='409', reason='in_use') - before)

    def test_reason_text_cannot_add_series(self):
        self.useFixture(fixtures.MockPatchObject(metrics, '_warned_unknown',
                                                 False))
        m = metrics.ProxyMetrics()
        before_series = refusal_series()
        before = value('serialproxy_refusals_total', status='409',
                       reason='other')
        for second in range(1000):
            m.refused(409, 'Console in use since 2026-01-01T00:%02d:%02d'
                      % divmod(second, 60))
        added = refusal_series() - before_series
        self.assertLessEqual(len(added), 1)
        self.assertTrue(added.issubset(
            {(('reason', 'other'), ('status', '409'))}))
        self.assertEqual(1000, value('serialproxy_refusals_total',
                                     status='409', reason='other') - before)
        self.assertNotIn(b'since', metrics.exposition()[0])

    def test_unknown_class_counts_as_other_and_warns_once(self):
        self.useFixture(fixtures.MockPatchObject(metrics, '_warned_unknown',
                                                 False))
        logged = self.useFixture(fixtures.FakeLogger(
            name=metrics.__name__, level=logging.WARNING))
        before = value('serialproxy_refusals_total', status='400',
                       reason='other')
        m = metrics.ProxyMetrics()
        m.refused(400, 'no_such_class')
        m.refused(400, 'Malformed request line')
        self.assertEqual(2, value('serialproxy_refusals_total', status='400',
                                  reason='other') - before)
        self.assertEqual(0, value('serialproxy_refusals_total', status='400',
                                  reason='no_such_class'))
        self.assertEqual(1, logged.output.count('not one of the refusal '
                                                'kinds'))
        self.assertIn("'no_such_class'", logged.output)

    def test_every_refusal_kind_is_its_own_label(self):
        m = metrics.ProxyMetrics()
        for kind in RefusalKind:
            before = value('serialproxy_refusals_total', status='599',
                           reason=kind.value)
            m.refused(599, kind)
            self.assertEqual(1, value('serialproxy_refusals_total',
                                      status='599', reason=kind.value)
                             - before, kind)

    def test_a_kind_given_by_its_value_counts_as_the_kind(self):
        m = metrics.ProxyMetrics()
        before = value('serialproxy_refusals_total', status='429',
                       reason='rate_limited')
        m.refused(429, 'rate_limited')
        m.refused(429, RefusalKind.RATE_LIMITED)
        self.assertEqual(2, value('serialproxy_refusals_total',
                                  status='429', reason='rate_limited')
                         - before)

    def test_worker_exited_is_a_no_op_in_one_process(self):
        self.assertIsNone(metrics.multiprocess_directory())
        m = metrics.ProxyMetrics()
        m.session_opened(0.01)
        before = value('serialproxy_sessions_active')
        with mock.patch.object(metrics.multiprocess,
                               'mark_process_dead') as mark:
            metrics.worker_exited(os.getpid())
        mark.assert_not_called()
        self.assertEqual(before, value('serialproxy_sessions_active'))
        m.session_closed()

    def test_reload_and_many_instances_register_nothing_twice(self):
        result = run_python(RELOAD_SCRIPT)
        self.assertEqual({'bytes': 3.0, 'after_reload': 4.0,
                          'default_registry_names': []}, result)


# Imports the module twice over and counts in both; a metric registered
# twice (in prometheus_client's default registry, or the module's own
# kept across a reload) would raise.
RELOAD_SCRIPT = r'''
import importlib, json
import prometheus_client
from serialproxy.proxy import metrics
for n in (1, 2):
    metrics.ProxyMetrics().bytes_to_guest(n)
bytes_ = metrics.sample_value('serialproxy_bytes_total',
                              {'direction': 'to_guest'})
importlib.reload(metrics)
for n in (1, 3):
    metrics.ProxyMetrics().bytes_to_guest(n)
after = metrics.sample_value('serialproxy_bytes_total',
                             {'direction': 'to_guest'})
names = sorted(f.name for f in prometheus_client.REGISTRY.collect()
               if f.name.startswith('serialproxy'))
print(json.dumps({'bytes': bytes_, 'after_reload': after,
                  'default_registry_names': names}))
'''


# A supervising parent and two forked workers, as the proxy runs them.
# prometheus_client is imported before enable_multiprocess on purpose: the
# mode must follow the environment at metric creation, not at import. The
# parent creates a ProxyMetrics after enabling and before forking (worker 0
# keeps using it; worker 1 makes its own), and the directory holds a stale
# file from an earlier run that enable_multiprocess must remove.
MULTIPROCESS_SCRIPT = r'''
import json, os, signal, sys, traceback
import prometheus_client
from serialproxy.proxy import metrics

directory = sys.argv[1]
os.makedirs(directory, exist_ok=True)
with open(os.path.join(directory, 'counter_1.db'), 'wb') as stale:
    stale.write(b'not an mmap dict')
with open(os.path.join(directory, 'keep.txt'), 'w') as other:
    other.write('not ours')
metrics.enable_multiprocess(directory)
inherited = metrics.ProxyMetrics()

WORK = [
    # sessions opened, closed, bytes to guest, to client
    (3, 1, 100, 1000),
    (5, 0, 20, 3),
]

workers = []


def worker(index, ready_w, go_r):
    opened, closed, to_guest, to_client = WORK[index]
    m = inherited if index == 0 else metrics.ProxyMetrics()
    for _ in range(opened):
        m.session_opened(0.02)
    for _ in range(closed):
        m.session_closed()
    m.bytes_to_guest(to_guest)
    m.bytes_to_client(to_client)
    m.refused(409, 'in_use')
    scrape = metrics.exposition()[0] if index == 1 else b''
    with open(os.path.join(directory, 'scrape-%d.txt' % index), 'wb') as out:
        out.write(scrape)
    os.write(ready_w, b'x')
    # Live until the parent says exit, or exits itself (end of file).
    os.read(go_r, 1)


try:
    for index in range(len(WORK)):
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                for fd in [ready_r, go_w] + [w for _, w in workers]:
                    os.close(fd)
                worker(index, ready_w, go_r)
            except BaseException:
                traceback.print_exc()
                status = 1
            os._exit(status)
        workers.append((pid, go_w))
        os.close(ready_w)
        os.close(go_r)
        if os.read(ready_r, 1) != b'x':
            sys.exit('worker %d failed' % index)
        os.close(ready_r)

    both = metrics.exposition()
    # Worker 0 exits and is reaped, as the supervisor would see it.
    pid0, go0 = workers[0]
    os.write(go0, b'x')
    os.waitpid(pid0, 0)
    before_mark = metrics.exposition()[0]
    metrics.worker_exited(pid0)
    after_exit = metrics.exposition()[0]
    pid1, go1 = workers[1]
    os.write(go1, b'x')
    os.waitpid(pid1, 0)
    workers = []
finally:
    for pid, _ in workers:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
with open(os.path.join(directory, 'scrape-1.txt'), 'rb') as f:
    worker_scrape = f.read()
print(json.dumps({
    'both': both[0].decode(), 'content_type': both[1],
    'worker_scrape': worker_scrape.decode(),
    'before_mark': before_mark.decode(),
    'after_exit': after_exit.decode(),
    'pids': [pid0, pid1],
    'files': sorted(os.listdir(directory)),
    'parent_env': os.environ.get('PROMETHEUS_MULTIPROC_DIR'),
}))
'''

ENABLE_LATE_SCRIPT = r'''
import json, sys
from serialproxy.proxy import metrics
metrics.ProxyMetrics()
try:
    metrics.enable_multiprocess(sys.argv[1])
except RuntimeError as exc:
    print(json.dumps({'raised': str(exc)}))
else:
    print(json.dumps({'raised': None}))
'''


class MultiprocessTest(base.TestCase):
    """Real worker processes, in a fresh interpreter per test."""

    def setUp(self):
        super().setUp()
        self.directory = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'metrics')
        self.result = None

    def run_workers(self):
        if self.result is None:
            self.result = run_python(MULTIPROCESS_SCRIPT, self.directory)
        return self.result

    def test_a_scrape_sums_the_workers(self):
        result = self.run_workers()
        self.assertEqual('text/plain; version=0.0.4; charset=utf-8',
                         result['content_type'])
        found = samples(result['both'])
        expected = {
            ('serialproxy_sessions_active', ()): 7,
            ('serialproxy_sessions_total', ()): 8,
            ('serialproxy_bytes_total', (('direction', 'to_guest'),)): 120,
            ('serialproxy_bytes_total', (('direction', 'to_client'),)): 1003,
            ('serialproxy_refusals_total',
             (('reason', 'in_use'), ('status', '409'))): 2,
            ('serialproxy_session_setup_seconds_count', ()): 8,
            ('serialproxy_session_setup_seconds_bucket',
             (('le', '0.025'),)): 8,
            ('serialproxy_session_setup_seconds_bucket',
             (('le', '0.01'),)): 0,
        }
        self.assertEqual(expected, {k: found.get(k) for k in expected})
        self.assertEqual(1, len([k for k in found
                                 if k[0] == 'serialproxy_sessions_active']))

    def test_any_worker_answers_for_all(self):
        result = self.run_workers()
        found = samples(result['worker_scrape'])
        self.assertEqual(
            (7, 8, 120),
            (found[('serialproxy_sessions_active', ())],
             found[('serialproxy_sessions_total', ())],
             found[('serialproxy_bytes_total',
                    (('direction', 'to_guest'),))]))

    def test_an_exited_worker_leaves_the_active_gauge(self):
        result = self.run_workers()
        # Reaped but not yet marked: livesum still counts its files.
        before = samples(result['before_mark'])
        self.assertEqual(7, before[('serialproxy_sessions_active', ())])
        after = samples(result['after_exit'])
        self.assertEqual(5, after[('serialproxy_sessions_active', ())])
        # Counters keep what the exited worker counted.
        self.assertEqual(8, after[('serialproxy_sessions_total', ())])
        self.assertEqual(120, after[('serialproxy_bytes_total',
                                     (('direction', 'to_guest'),))])
        self.assertEqual(8, after[('serialproxy_session_setup_seconds_count',
                                   ())])

    def test_files_per_worker_and_stale_files_removed(self):
        result = self.run_workers()
        pid0, pid1 = result['pids']
        files = set(result['files'])
        self.assertNotIn('counter_1.db', files)
        self.assertIn('keep.txt', files)
        self.assertIn('gauge_livesum_%d.db' % pid1, files)
        self.assertNotIn('gauge_livesum_%d.db' % pid0, files)
        self.assertIn('counter_%d.db' % pid0, files)
        self.assertIn('counter_%d.db' % pid1, files)
        self.assertEqual(self.directory, result['parent_env'])

    def test_enabling_after_metrics_exist_is_refused(self):
        result = run_python(ENABLE_LATE_SCRIPT, self.directory)
        self.assertIsNotNone(result['raised'])
        self.assertIn('after metrics were created', result['raised'])

    def test_the_test_process_stays_in_one_process_mode(self):
        self.run_workers()
        self.assertNotIn(metrics.MULTIPROC_ENV, os.environ)
        self.assertIsNone(metrics.multiprocess_directory())
        self.assertFalse(metrics._multiprocess_value())


class FakeProxy:
    def __init__(self):
        self.serving = True
        self.flushed = 0

    def flush_metrics(self):
        self.flushed += 1


class AdminListenerTest(base.TestCase):
    def request(self, port, target, method):
        async def ask():
            reader, writer = await asyncio.open_connection('127.0.0.1', port)
            writer.write(('%s %s HTTP/1.1\r\nHost: x\r\n\r\n'
                          % (method, target)).encode())
            reply = await reader.read()
            writer.close()
            return reply.decode()
        return ask()

    def get(self, proxy, target, method='GET'):
        async def scenario():
            server = await admin.start(proxy, '127.0.0.1', 0)
            port = server.sockets[0].getsockname()[1]
            try:
                return await self.request(port, target, method)
            finally:
                server.close()
        return asyncio.run(scenario())

    def test_metrics_and_healthcheck(self):
        proxy = FakeProxy()
        m = metrics.ProxyMetrics()
        m.session_opened(0.01)
        try:
            reply = self.get(proxy, '/metrics')
            active = value('serialproxy_sessions_active')
        finally:
            m.session_closed()
        self.assertTrue(reply.startswith('HTTP/1.1 200 OK'))
        # The answering process counts its latest bytes in first.
        self.assertEqual(1, proxy.flushed)
        self.assertIn('Content-Type: text/plain; version=0.0.4', reply)
        head, body = reply.split('\r\n\r\n', 1)
        self.assertIn('Content-Length: %d' % len(body.encode()), head)
        self.assertGreaterEqual(active, 1)
        self.assertEqual(active, samples(body)[
            ('serialproxy_sessions_active', ())])
        self.assertTrue(self.get(proxy, '/healthcheck').startswith(
            'HTTP/1.1 200 OK'))
        proxy.serving = False
        self.assertTrue(self.get(proxy, '/healthcheck').startswith(
            'HTTP/1.1 503'))

    def test_unknown_paths_and_methods_are_refused(self):
        proxy = FakeProxy()
        self.assertTrue(self.get(proxy, '/').startswith('HTTP/1.1 404'))
        self.assertTrue(self.get(proxy, '/metrics', 'POST').startswith(
            'HTTP/1.1 405'))

    def test_a_failing_scrape_answers_500(self):
        self.useFixture(fixtures.FakeLogger(name=admin.__name__))
        with mock.patch.object(metrics, 'exposition',
                               side_effect=ValueError('bad file')):
            reply = self.get(FakeProxy(), '/metrics')
        self.assertTrue(reply.startswith('HTTP/1.1 500'))

    def test_serves_an_inherited_listening_socket(self):
        listening = socket.socket()
        self.addCleanup(listening.close)
        listening.bind(('127.0.0.1', 0))
        listening.listen()
        port = listening.getsockname()[1]

        async def scenario():
            server = await admin.start_on_socket(FakeProxy(), listening)
            try:
                return (await self.request(port, '/healthcheck', 'GET'),
                        await self.request(port, '/metrics', 'GET'))
            finally:
                server.close()
        health, scrape = asyncio.run(scenario())
        self.assertTrue(health.startswith('HTTP/1.1 200 OK'))
        self.assertTrue(scrape.startswith('HTTP/1.1 200 OK'))
        self.assertIn('serialproxy_sessions_total', scrape)

    def test_silent_client_is_answered_408_and_dropped(self):
        async def scenario():
            server = await admin.start(FakeProxy(), '127.0.0.1', 0,
                                       read_timeout=0.3)
            port = server.sockets[0].getsockname()[1]
            try:
                reader, writer = await asyncio.open_connection('127.0.0.1',
                                                               port)
                writer.write(b'GET /metrics HTTP/1.1\r\n')
                # Never finishes its request: the listener must not wait
                # for it forever.
                reply = await asyncio.wait_for(reader.read(), 5)
                writer.close()
                return reply.decode()
            finally:
                server.close()
        self.assertTrue(asyncio.run(scenario()).startswith('HTTP/1.1 408'))
