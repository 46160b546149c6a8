"""Faults of the parts around the four services, for real: nothing lost.

One deployment of serialproxy-consoleauth, -compute, -proxy and -api over
RabbitMQ with PostgreSQL as the database, and one QEMU guest, shared by
every test (a guest boot is the costly part). Each test breaks one part
(the broker stopped for 30 s, consoleauth restarted, PostgreSQL
restarted, the compute agent killed, libvirtd restarted) while a live
session echoes through the guest's shell once a second, then checks that
the session never stalled, that its lease held, that users were refused
with 503 and a reason meanwhile, and how long the service took to
recover. The recovery
times are printed and attached to the test's details.

Each test restores what it stopped in a cleanup, also when it fails.
"""

import http.client
import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid

from oslo_config import fixture as config_fixture
from testtools import content
import websocket

from serialproxy.compute import domain_xml
from serialproxy.compute import port_pool
from serialproxy import conf as sp_conf
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import rpc
from tests.harness import fixtures as func_fixtures
from tests.functional.test_sessions import refusal

# Short enough that a 30 s broker outage outlives every lease.
LEASE_TTL = 9
BROKER_DOWNTIME = 30
# How long a refusal may take while a backend cannot be reached: the
# proxy's handshake deadline ([console] handshake_timeout, 10 s) answers
# 503 when the broker holds a call longer; usually it takes 2-3 s.
PROMPT_REFUSAL = 12
# An echo round trip slower than this counts as a stall.
ROUND_TRIP_LIMIT = 3.0
# What oslo.messaging logs, at ERROR, while the broker cannot be reached.
BROKER_UNREACHABLE = (r'oslo\.messaging\._drivers\.impl_rabbit .*('
                      r'AMQP server on .* is unreachable|Connection failed: '
                      r'|Failed to publish message|Unable to connect to '
                      r'AMQP server)')


def stop_broker():
    subprocess.run(['rabbitmqctl', '-q', 'stop_app'], check=True,
                   stdout=subprocess.DEVNULL)


def start_broker():
    subprocess.run(['rabbitmqctl', '-q', 'start_app'], check=True,
                   stdout=subprocess.DEVNULL)


def postgresql_clusters():
    """(version, name) of the local PostgreSQL clusters, as setup-sql.sh
    starts them."""
    listing = subprocess.run(['pg_lsclusters', '-h'], check=True,
                             capture_output=True, text=True).stdout
    return [tuple(line.split()[:2]) for line in listing.splitlines()]


def restart_postgresql():
    """Restart the local PostgreSQL server; returns once it answers."""
    for version, cluster in postgresql_clusters():
        subprocess.run(['pg_ctlcluster', version, cluster, 'restart'],
                       check=True)
    func_fixtures.wait_for(postgresql_answers, 60, 'PostgreSQL')


def postgresql_answers():
    return subprocess.run(['pg_isready', '-q', '-h', '127.0.0.1', '-p',
                           '5432']).returncode == 0


def start_postgresql():
    """Cleanup: the server runs again whatever the test did."""
    if not postgresql_answers():
        for version, cluster in postgresql_clusters():
            subprocess.run(['pg_ctlcluster', version, cluster, 'start'])


def mariadb_answers():
    return subprocess.run(['mysqladmin', '-uroot', '--silent', 'ping'],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def _mariadb_service(action):
    if under_systemd():
        subprocess.run(['systemctl', action, 'mariadb'], check=True)
    else:
        # Debian's init script may say it failed to start a server that
        # then answers (its own check signs in as another account): the
        # callers wait until the server answers instead.
        subprocess.run(['service', 'mariadb', action],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def restart_mariadb():
    """Restart the local MariaDB server; returns once it answers.

    Without systemd the server is stopped by mysqladmin: the init
    script's own restart trusts a pid file that may not be there.
    """
    if under_systemd():
        _mariadb_service('restart')
    else:
        subprocess.run(['mysqladmin', '-uroot', 'shutdown'], check=True)
        func_fixtures.wait_for(lambda: not mariadb_answers(), 60,
                               'MariaDB to stop')
        _mariadb_service('start')
    func_fixtures.wait_for(mariadb_answers, 60, 'MariaDB')


def start_mariadb():
    """Cleanup: the server runs again whatever the test did."""
    if not mariadb_answers():
        _mariadb_service('start')


# libvirtd as tools/setup-libvirt.sh runs it where there is no systemd:
# daemonized, its pid in this file, its log where that script sends it.
LIBVIRTD_PIDFILE = '/run/libvirtd.pid'
LIBVIRTD_LOG = '3:file:/var/log/libvirt/libvirtd.log'
SYSTEMD_LIBVIRTD = ['libvirtd.socket', 'libvirtd-ro.socket',
                    'libvirtd-admin.socket', 'libvirtd.service']


def under_systemd():
    return os.path.isdir('/run/systemd/system')


def libvirtd_pid():
    """The pid of the running libvirtd, or None (a zombie is not one)."""
    try:
        with open(LIBVIRTD_PIDFILE) as f:
            pid = int(f.read().strip())
        with open('/proc/%d/status' % pid) as f:
            status = f.read()
    except (OSError, ValueError):
        return None
    if '\nState:\tZ' in status or not status.startswith('Name:\tlibvirtd'):
        return None
    return pid


def libvirtd_answers():
    return subprocess.run(
        ['virsh', '-q', '-c', func_fixtures.LIBVIRT_URI, 'version'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def stop_libvirtd():
    """Stop libvirtd; running QEMU guests stay up (it reconnects to them)."""
    if under_systemd():
        subprocess.run(['systemctl', 'stop', *SYSTEMD_LIBVIRTD])
        return
    pid = libvirtd_pid()
    if pid is None:
        raise AssertionError('libvirtd is not running (%s)'
                             % LIBVIRTD_PIDFILE)
    os.kill(pid, signal.SIGTERM)
    func_fixtures.wait_for(lambda: libvirtd_pid() is None, 30,
                           'libvirtd to exit')


def start_libvirtd():
    """Start libvirtd unless it runs; returns once it answers. Also the
    cleanup of a test that stopped it."""
    if under_systemd():
        subprocess.run(['systemctl', 'start', *SYSTEMD_LIBVIRTD])
    elif libvirtd_pid() is None:
        subprocess.run(['libvirtd', '-d'], check=True, env=dict(
            os.environ, LIBVIRT_LOG_OUTPUTS=LIBVIRTD_LOG))
    func_fixtures.wait_for(libvirtd_answers, 60, 'libvirtd to answer')


class Heartbeat:
    """Echo round trips through a live session, once a second, on a thread.

    Records each round trip's time and every one that failed or stalled.
    """

    def __init__(self, ws):
        self.ws = ws
        self.round_trips = []
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._count = 0

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(30)

    def _run(self):
        buffered = b''
        self.ws.settimeout(0.5)
        while not self._stop.is_set():
            self._count += 1
            n = self._count
            expected = b'hb%d-%d' % (n, n + 1)
            started = time.monotonic()
            try:
                self.ws.send_binary(b'echo hb%d-$((%d+1))\n' % (n, n))
            except Exception as exc:
                self.failures.append('send %d: %r' % (n, exc))
                return
            while expected not in buffered:
                if time.monotonic() - started > 30:
                    self.failures.append('no echo %d in 30 s' % n)
                    return
                try:
                    opcode, data = self.ws.recv_data()
                except websocket.WebSocketTimeoutException:
                    continue
                except Exception as exc:
                    self.failures.append('recv %d: %r' % (n, exc))
                    return
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.failures.append('closed at %d: %r' % (n, data))
                    return
                buffered += data
            buffered = buffered.split(expected, 1)[1]
            elapsed = time.monotonic() - started
            self.round_trips.append(elapsed)
            if elapsed > ROUND_TRIP_LIMIT:
                self.failures.append('echo %d took %.1f s' % (n, elapsed))
            self._stop.wait(max(0, 1 - elapsed))

    def summary(self):
        if not self.round_trips:
            return 'no round trips'
        return '%d round trips, slowest %.2f s' % (
            len(self.round_trips), max(self.round_trips))


class FaultsTestCase(func_fixtures.SharedWorldTestCase):
    """A world with a live session's helpers; its tests break one part."""

    database = 'postgresql'

    @classmethod
    def make_world(cls):
        return World(cls.database)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deployment = cls.world.deployment
        cls.guest = cls.world.guest

    def setUp(self):
        super().setUp()
        self.deployment.check_alive()
        self.recovery = {}
        self.echoes = None
        self.addCleanup(self._report_recovery)

    def _report_recovery(self):
        if self.recovery:
            text = '\n'.join('%s: %.1f s' % item
                             for item in sorted(self.recovery.items()))
            if self.echoes:
                text += '\nlive session: ' + self.echoes
            print('\n%s recovery times:\n%s' % (self.id(), text))
            self.addDetail('recovery-times', content.text_content(text))

    # Helpers -------------------------------------------------------------

    def url(self):
        return self.deployment.console_url(self.guest.uuid)

    def live_session(self):
        """A session on the guest, echoing once a second meanwhile."""
        ws = self.connect(self.url())
        heartbeat = Heartbeat(ws).start()
        self.addCleanup(heartbeat.stop)
        func_fixtures.wait_for(lambda: heartbeat.round_trips, 30,
                               'a first echo')
        return ws, heartbeat

    def connect(self, url):
        ws = websocket.create_connection(url, subprotocols=['binary'],
                                         timeout=20)
        self.addCleanup(ws.close)
        return ws

    def end(self, ws, heartbeat):
        heartbeat.stop()
        self.echoes = heartbeat.summary()
        self.assertEqual([], heartbeat.failures, heartbeat.summary())
        ws.close()
        # The proxy releases the lease once it has seen the close, after
        # ws.close() returns: until then a new session would get 409.
        func_fixtures.wait_for(lambda: self.listed_sessions() == [], 15,
                               'the live session\'s lease to be released')

    def timed_refusal(self, url):
        started = time.monotonic()
        status, body = refusal(url)
        return status, body, time.monotonic() - started

    def timed_api(self, method, path, body=None, version=None):
        started = time.monotonic()
        status, reply = self.deployment.api_request(method, path, body,
                                                    version)
        return status, reply, time.monotonic() - started

    def ask_console_url(self):
        return self.timed_api(
            'POST', '/v2.1/servers/%s/remote-consoles' % self.guest.uuid,
            {'remote_console': {'protocol': 'serial', 'type': 'serial'}},
            version='2.6')

    def listed_sessions(self):
        status, body = self.deployment.api_request(
            'GET', '/v2.1/servers/%s/serial-console/sessions'
            % self.guest.uuid)
        if status != 200:
            return None
        return json.loads(body)['sessions']

    def time_until_url_issued(self, timeout=60):
        """Seconds until the API issues a console URL again; every
        answer on the way goes into the details."""
        started = time.monotonic()
        answers = []

        def issued():
            status, reply, took = self.ask_console_url()
            answers.append('%.1f s: %s in %.1f s %s' % (
                time.monotonic() - started, status, took, reply[:120]))
            return status == 200
        try:
            func_fixtures.wait_for(issued, timeout, 'a console URL')
        finally:
            self.addDetail('answers-while-recovering',
                           content.text_content('\n'.join(answers)))
        return time.monotonic() - started

    def time_until(self, predicate, timeout, what):
        started = time.monotonic()
        func_fixtures.wait_for(predicate, timeout, what)
        return time.monotonic() - started

    def assertOpens(self, url):
        # A marker of its own: an earlier test's, replayed as recent
        # output, would end the session before the guest read the whole
        # line, and the half-typed "$((" would leave the shared shell
        # waiting for the rest, swallowing every later test's commands.
        self.assertIsNotNone(func_fixtures.shell_answers(url, 'opened'))

    def assertDatabaseRestartSurvived(self, restart, start, name):
        """A session lives through restart() of the database server; the
        API and the proxy answer 200, 409 or 503 meanwhile, never 500."""
        ws, heartbeat = self.live_session()
        held_url = self.url()
        statuses = []
        errors = []
        stop = threading.Event()

        def ask_meanwhile():
            try:
                while not stop.is_set():
                    statuses.append(self.ask_console_url()[0])
                    # The console is held: 409 when consoleauth can tell.
                    statuses.append(refusal(held_url)[0])
                    time.sleep(0.2)
            except Exception as exc:
                errors.append(repr(exc))  # failed below, not lost
        reason = 'the test restarts the database server'
        # Named, it crosses RPC to the caller (a 503); oslo.messaging
        # logs its traceback on consoleauth's side all the same.
        self.deployment.expect_log_error(
            r'Exception during message handling: serialproxy\.exception\.'
            'DatabaseUnavailable', reason, label='serialproxy-consoleauth')
        self.deployment.expect_log_error(
            r'sqlalchemy\.pool\..* Exception during reset or similar: .*'
            r'Lost connection', reason, label='serialproxy-consoleauth')
        asker = threading.Thread(target=ask_meanwhile, daemon=True)
        asker.start()
        self.addCleanup(start)
        restarted_at = time.monotonic()
        restart()
        self.recovery['%s restart' % name] = time.monotonic() - restarted_at
        self.recovery['api issues console URLs'] = self.time_until_url_issued()
        stop.set()
        asker.join(60)
        self.assertFalse(asker.is_alive(), 'the asker is stuck')
        self.addDetail('statuses', content.text_content(repr(statuses)))
        self.assertEqual([], errors)
        self.assertNotIn(500, statuses)
        self.assertTrue(set(statuses) <= {200, 409, 503}, statuses)
        second_url = self.url()
        self.assertEqual(409, refusal(second_url)[0])
        self.end(ws, heartbeat)
        self.assertOpens(second_url)


class FaultsTest(FaultsTestCase):

    def test_postgresql_restarted_no_500(self):
        self.assertDatabaseRestartSurvived(restart_postgresql,
                                           start_postgresql, 'postgresql')

    def test_broker_stopped_30s_sessions_live_leases_held(self):
        ws, heartbeat = self.live_session()
        second_url = self.url()
        self.assertEqual(409, refusal(second_url)[0])

        self.deployment.expect_log_error(
            BROKER_UNREACHABLE, 'the test stops RabbitMQ for 30 s')
        stop_broker()
        self.addCleanup(start_broker)
        down_at = time.monotonic()
        # While it is down: refused at once with 503 and a reason.
        status, body, took = self.timed_refusal(second_url)
        self.recovery['(down) proxy refused a session in'] = took
        self.assertEqual((503, 'Console service unavailable'),
                         (status, body.strip()))
        self.assertLess(took, PROMPT_REFUSAL)
        status, reply, took = self.ask_console_url()
        self.recovery['(down) api refused a console URL in'] = took
        self.assertEqual(503, status, reply)
        self.assertIn(b'serviceUnavailable', reply)
        self.assertLess(took, PROMPT_REFUSAL)
        time.sleep(max(0, BROKER_DOWNTIME - (time.monotonic() - down_at)))

        start_broker()
        up_at = time.monotonic()
        self.recovery['proxy leases again (second client 409)'] = \
            self.time_until(lambda: refusal(second_url)[0] == 409, 60,
                            'the proxy to reach consoleauth')
        self.time_until_url_issued()
        self.recovery['api issues console URLs'] = time.monotonic() - up_at
        # The lease held: still listed, and nobody else gets the console.
        sessions = self.listed_sessions()
        self.assertEqual(1, len(sessions or ()), sessions)
        self.assertEqual(409, refusal(second_url)[0])
        self.end(ws, heartbeat)
        # The console is free once the live session ends.
        started = time.monotonic()
        self.assertOpens(second_url)
        self.recovery['new session opens'] = time.monotonic() - started

    def test_consoleauth_restarted_tokens_and_leases_survive(self):
        ws, heartbeat = self.live_session()
        second_url = self.url()
        consoleauth = self.deployment.consoleauth
        self.deployment.stop(consoleauth)
        stopped_at = time.monotonic()
        self.deployment.consoleauth = self.deployment.start(
            'serialproxy-consoleauth')
        self.deployment.wait_ready()
        self.recovery['consoleauth ready'] = time.monotonic() - stopped_at
        self.recovery['proxy answers (409)'] = self.time_until(
            lambda: refusal(second_url)[0] == 409, 60,
            'the second client to be told 409')
        self.assertEqual(1, len(self.listed_sessions()))
        self.end(ws, heartbeat)
        self.assertOpens(second_url)

    def test_compute_agent_killed_sessions_live_events_work(self):
        ws, heartbeat = self.live_session()
        func_fixtures.crash(self.deployment.compute)
        killed_at = time.monotonic()
        time.sleep(3)
        self.deployment.compute = self.deployment.start(
            'serialproxy-compute')
        self.deployment.wait_ready()
        self.time_until_url_issued()
        self.recovery['api issues console URLs (from the kill)'] = (
            time.monotonic() - killed_at)
        # The session never noticed; then (a paused guest would stall it)
        # lifecycle events reach the registry: suspend and resume.
        self.end(ws, heartbeat)
        self.assertLifecycleEventsHeard()
        self.assertOpens(self.url())

    def test_libvirtd_restarted_agent_killed_503_then_all_right(self):
        ws, heartbeat = self.live_session()
        # Marks the guest: a URL issued after the fault must open it.
        number = random.randrange(10 ** 6)
        mark = 'sp-mark-%d' % number
        ws.send_binary(b'echo %s > /tmp/sp-mark\n' % mark.encode())
        self.assertEqual(self.guest.ports, self.pool_ports())
        # The live session holds console 0, and the page's check answers
        # 409 for a held console before it asks the agent: check console 1.
        check_token = self.token(index=1)
        self.assertEqual(200, self.check(check_token)[0])

        reason = 'the test stops libvirtd and restarts the agent meanwhile'
        for pattern in ('Cannot connect to libvirt at ',
                        'Cannot listen to libvirt events at ',
                        'First reconciliation with libvirt failed: .*'
                        'HypervisorUnavailable'):
            self.deployment.expect_log_error(pattern, reason,
                                             label='serialproxy-compute')
        self.addCleanup(start_libvirtd)
        stop_libvirtd()
        self.assertDown('(libvirtd down)', check_token)
        # The agent dies and comes back while libvirtd is still down.
        func_fixtures.crash(self.deployment.compute)
        killed_at = time.monotonic()
        self.deployment.compute = self.deployment.start(
            'serialproxy-compute')
        self.deployment.wait_ready()
        self.recovery['(libvirtd down) agent killed, ready again'] = (
            time.monotonic() - killed_at)
        self.assertDown('(libvirtd down, new agent)', check_token)

        start_libvirtd_at = time.monotonic()
        start_libvirtd()
        self.recovery['libvirtd answers'] = (time.monotonic() -
                                             start_libvirtd_at)
        self.time_until_url_issued()
        self.recovery['api issues console URLs'] = (time.monotonic() -
                                                    start_libvirtd_at)
        self.recovery['proxy check answers 200'] = self.time_until(
            lambda: self.check(check_token)[0] == 200, 30,
            'the check to pass') + self.recovery['api issues console URLs']
        self.time_until(self.agent_listens_to_events, 30,
                        'the agent to listen to lifecycle events')
        self.recovery['agent listens to lifecycle events'] = (
            time.monotonic() - start_libvirtd_at)
        # Through all of it the live session never stalled.
        self.end(ws, heartbeat)

        # The pool: the guest keeps its ports, nobody else gets them.
        self.assertEqual(self.guest.ports, self.pool_ports())
        pool = self.pool()
        filler = 'filler-' + uuid.uuid4().hex
        self.addCleanup(pool.release, filler)
        handed_out = pool.allocate(filler, 3)
        self.assertEqual(3, len(set(handed_out)))
        self.assertEqual(set(), set(handed_out) & set(self.guest.ports))
        pool.release(filler)
        # Lifecycle events are heard again: suspend and resume.
        self.assertLifecycleEventsHeard()
        # A new URL opens the same console.
        started = time.monotonic()
        new = self.connect(self.url())
        new.send_binary(b'cat /tmp/sp-mark; echo read-$((1+%d))\n'
                        % number)
        output = func_fixtures.read_until(
            lambda _: new.recv_data()[1], rb'\nread-%d\r?\n' % (number + 1),
            30)
        self.assertIn(('\n%s' % mark).encode(), output or b'')
        new.close()
        self.recovery['new URL opens the same console'] = (time.monotonic() -
                                                           started)

    def assertLifecycleEventsHeard(self):
        """Suspend and resume the guest: the registry follows."""
        self.guest.virsh('suspend', self.guest.name)
        self.addCleanup(self.guest.virsh, 'resume', self.guest.name,
                        check=False)
        self.recovery['suspended event registered'] = self.time_until(
            lambda: self.server_status() == 'PAUSED', 30, 'PAUSED')
        self.guest.virsh('resume', self.guest.name)
        func_fixtures.wait_for(lambda: self.server_status() == 'ACTIVE', 30,
                               'ACTIVE')

    def assertDown(self, when, check_token):
        """The check and the API say 503, promptly, not 401 or 404."""
        started = time.monotonic()
        status, body = self.check(check_token)
        self.recovery[when + ' proxy check refused in'] = (time.monotonic()
                                                           - started)
        self.assertEqual((503, 'Console service unavailable'),
                         (status, body.strip()))
        status, reply, took = self.ask_console_url()
        self.recovery[when + ' api refused a console URL in'] = took
        self.assertEqual(503, status, reply)
        self.assertIn(b'serviceUnavailable', reply)
        self.assertLess(took, PROMPT_REFUSAL)

    def token(self, index):
        """A token of one of the guest's consoles, from consoleauth."""
        conf = self.useFixture(config_fixture.Config(sp_conf.CONF))
        conf.config(rpc_call_timeout=20)
        rpc.init(sp_conf.CONF, transport_url=self.world.vhost.url)
        self.addCleanup(rpc.cleanup)
        # As the services declare the exchange (read at the first call).
        conf.config(amqp_durable_queues=True, group='oslo_messaging_rabbit')
        port = [p for p, i in self.guest.ports.items() if i == index][0]
        return consoleauth_rpcapi.ConsoleAuthAPI().authorize_console(
            {}, self.guest.uuid, self.deployment.host, '127.0.0.1', port,
            index=index)

    def check(self, token):
        """(status, body) of the console page's check of a token."""
        conn = http.client.HTTPConnection('127.0.0.1',
                                          self.deployment.proxy_port,
                                          timeout=30)
        try:
            conn.request('GET', '/?' + urllib.parse.urlencode(
                {'token': token}), headers={'X-Serialproxy-Check': '1'})
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def agent_listens_to_events(self):
        log_path, = [path for _, proc, path in self.deployment.processes
                     if proc is self.deployment.compute]
        with open(log_path, errors='replace') as f:
            return 'Listening to libvirt lifecycle events' in f.read()

    def pool(self):
        pool = port_pool.PortPool(self.world.pool_path,
                                  self.world.port_range, '127.0.0.1')
        self.addCleanup(pool.close)
        return pool

    def pool_ports(self):
        return {a['port']: a['index']
                for a in self.pool().allocations(self.guest.uuid)}

    def server_status(self):
        status, body = self.deployment.api_request(
            'GET', '/v2.1/servers/%s' % self.guest.uuid)
        return json.loads(body)['server']['status'] if status == 200 \
            else None


class MariaDBFaultsTest(FaultsTestCase):
    """The database restart of FaultsTest, with MariaDB as the database."""

    database = 'mysql'

    def test_mariadb_restarted_no_500(self):
        self.assertDatabaseRestartSurvived(restart_mariadb, start_mariadb,
                                           'mariadb')


class World(func_fixtures.AllInOneWithGuest):
    """The four services as separate processes over RabbitMQ, PostgreSQL
    (or database: 'mysql', MariaDB) as their database, and a guest in
    their registry."""

    def __init__(self, database='postgresql'):
        super().__init__(None, None)
        self.database = database

    def _setUp(self):
        self.vhost = self.useFixture(func_fixtures.RabbitVhost())
        # Below Linux's ephemeral ports, where other tests' guests listen.
        lo = random.randrange(22000, 32000 - 40)
        self.port_range = '%d:%d' % (lo, lo + 40)
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=self.vhost.url, database=self.database,
            options={'consoleauth': {'session_lease_ttl': LEASE_TTL},
                     'serial_console': {'port_range': self.port_range},
                     'oslo_messaging_rabbit': {
                         'amqp_durable_queues': 'true'}}))
        self.pool_path = os.path.join(self.deployment.dir,
                                      'serial_port_pool.sqlite')
        # Two consoles from the agent's pool, as serialproxy-manage gives
        # them: the pool is checked after faults, console 1 is free for
        # the page's check while a session holds console 0.
        self.guest = self.useFixture(func_fixtures.Guest(
            before_start=self._pool_consoles))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        deployment = self.deployment
        deployment.consoleauth = deployment.start('serialproxy-consoleauth')
        # Its queue exists before the agent's first report is sent: on a
        # loaded machine that report could otherwise be dropped and wait
        # for rpc_call_timeout before the agent says it is ready.
        deployment.wait_ready()
        deployment.compute = deployment.start('serialproxy-compute')
        deployment.start('serialproxy-api')
        deployment.start('serialproxy-proxy')
        deployment.wait_ready()
        func_fixtures.wait_for(self._guest_registered, 60,
                               'the guest in the instance registry')

    def _pool_consoles(self, guest):
        self.deployment.run('serialproxy-manage', 'serial-console', 'add',
                            guest.name, '--replace', '--count', '2')
        xml = guest.virsh('dumpxml', '--inactive', guest.name)
        guest.ports = {p['port']: p['index'] for p in
                       domain_xml.tcp_serial_ports(xml, '127.0.0.1')}
        guest.port = min(guest.ports, key=guest.ports.get)
