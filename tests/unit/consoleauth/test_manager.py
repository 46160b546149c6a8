import threading
import time

import fixtures
import oslo_messaging as messaging
import sqlalchemy as sa

from serialproxy.consoleauth import manager
from serialproxy.consoleauth import rpcapi
from serialproxy.consoleauth import tokens
from serialproxy.db import api as db_api
from serialproxy import exception
from serialproxy import rpc
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import rpcapi as proxy_rpcapi
from tests import racing
from tests.unit import base
from tests.unit import rpc_fixture

UUID = '6b8ab4b4-2b53-4f5c-9d5d-3c1a1d5c0a01'


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class RecordingProxy:
    """A proxy endpoint that records the disconnects it is cast."""

    target = messaging.Target(version='1.0')

    def __init__(self):
        self.disconnects = []
        self.received = threading.Event()

    def disconnect_session(self, ctxt, session_ids, code, reason):
        self.disconnects.append((sorted(session_ids), code, reason))
        self.received.set()


class ConsoleAuthTestBase(base.TestCase):
    """consoleauth on SQLite behind real in-process RPC, with a clock."""

    def setUp(self):
        super().setUp()
        self.flags(group='consoleauth', token_ttl=600)
        self.db = db_api.Database('sqlite:///%s/ca.sqlite' % self.state_path)
        self.db.sync()
        self.clock = Clock()
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        endpoint = manager.ConsoleAuthManager(
            self.db, proxy_rpcapi.ProxyAPI(), clock=self.clock)
        self.purge = endpoint.purge_expired
        rpc.serve(rpcapi.TOPIC, endpoint)
        self.proxy = RecordingProxy()
        rpc.serve(proxy_rpcapi.TOPIC, self.proxy)
        # Through real RPC, so errors arrive as callers see them.
        self.manager = rpcapi.ConsoleAuthAPI()

    def _register(self, uuid, port, index=0, host='compute-1'):
        """Record a console port in the registry as its agent's report
        would (without the revocations an RPC report makes): the lease
        checks a token's port against it."""
        row = self.db.get_instance(uuid)
        ports = {}
        if row is not None and row.host == host:
            with self.db.statement() as connection:
                ports = dict(connection.execute(sa.text(
                    'SELECT serial_index, port FROM instance_consoles '
                    'WHERE instance_uuid = :uuid'), {'uuid': uuid}).all())
        ports[index] = port
        self.db.update_host_instance(host, {
            'uuid': uuid, 'name': 'vm-' + uuid, 'state': 'running',
            'consoles': [{'index': i, 'port': p} for i, p in ports.items()]},
            self.clock())

    def _authorize(self, uuid=UUID, port=10001, index=0, ctxt=None):
        self._register(uuid, port, index)
        return self.manager.authorize_console(ctxt or {}, uuid, 'compute-1',
                                              '127.0.0.1', port, index=index)


class ConsoleAuthManagerTest(ConsoleAuthTestBase):

    def test_token_checks_to_its_console(self):
        token = self._authorize()
        console = self.manager.check_token({}, token)
        self.assertEqual(UUID, console['instance_uuid'])
        self.assertEqual(('compute-1', '127.0.0.1', 10001, 0, 'serial'),
                         (console['compute_host'], console['host'],
                          console['port'], console['index'],
                          console['console_type']))
        self.assertEqual(1600.0, console['expires_at'])

    def test_only_the_hash_is_stored(self):
        token = self._authorize()
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.text('SELECT * FROM console_tokens'))
            dumped = repr(list(rows))
        self.assertNotIn(token, dumped)
        self.assertIn(tokens.hash_token(token), dumped)

    def test_token_is_valid_until_ttl_then_refused(self):
        token = self._authorize()
        self.clock.now += 599.9
        self.manager.check_token({}, token)
        self.clock.now += 0.1
        self.assertRaises(exception.InvalidToken,
                          self.manager.check_token, {}, token)

    def test_unknown_and_malformed_tokens_are_refused(self):
        self._authorize()
        for bad in ('nope', '', None, 42):
            self.assertRaises(exception.InvalidToken,
                              self.manager.check_token, {}, bad)

    def test_invalid_token_message_never_carries_the_token(self):
        exc = self.assertRaises(exception.InvalidToken,
                                self.manager.check_token, {}, 'secret-xyz')
        self.assertNotIn('secret-xyz', str(exc))

    def test_revoke_removes_only_that_instances_tokens(self):
        mine = self._authorize()
        other = self._authorize(uuid='other-uuid', port=10002)
        self.assertEqual(1, self.manager.revoke_tokens({}, UUID))
        self.assertRaises(exception.InvalidToken,
                          self.manager.check_token, {}, mine)
        self.manager.check_token({}, other)

    def test_purge_drops_expired_tokens_only(self):
        old = self._authorize()
        self.clock.now += 300
        young = self._authorize(port=10002)
        self.clock.now += 300
        self.assertEqual((1, 0), self.purge())
        self.assertIsNone(self.db.get_token(tokens.hash_token(old)))
        self.manager.check_token({}, young)

    def test_report_replaces_the_hosts_instances(self):
        first = [{'uuid': 'a', 'name': 'vm-a', 'state': 'running'},
                 {'uuid': 'b', 'name': 'vm-b', 'state': 'shutoff'}]
        self.manager.report_instances({}, 'compute-1', first)
        self.manager.report_instances(
            {}, 'compute-2', [{'uuid': 'c', 'name': 'vm-c',
                               'state': 'running'}])
        self.manager.report_instances(
            {}, 'compute-1', [{'uuid': 'b', 'name': 'vm-b',
                               'state': 'running', 'project_id': 'p'}])
        self.assertRaises(exception.InstanceNotFound,
                          self.manager.get_instance, {}, 'a')
        b = self.manager.get_instance({}, 'b')
        self.assertEqual(('compute-1', 'running', 'p'),
                         (b['host'], b['state'], b['project_id']))
        self.assertEqual(['vm-b'], [i['name'] for i in
                                    self.manager.list_instances(
                                        {}, host='compute-1')])
        self.assertEqual(2, len(self.manager.list_instances({})))


class SessionLeaseTest(ConsoleAuthTestBase):
    """One user per console, across proxies, until release or expiry."""

    def setUp(self):
        super().setUp()
        self.flags(group='consoleauth', session_lease_ttl=30)

    def acquire(self, token, proxy='proxy-a', address='192.0.2.7:5000'):
        return self.manager.acquire_session({}, token, proxy, address)

    def test_token_whose_port_went_to_another_guest_leases_nothing(self):
        # The agent's report of the new allocation arrived; the revoke
        # of the old one was lost.
        token = self._authorize(port=10001)
        self._register(UUID, 10002)
        self.assertRaises(exception.InvalidToken, self.acquire, token)
        self.assertEqual([], self.manager.list_sessions({}))

    def test_token_of_a_port_reported_for_another_guest_leases_nothing(self):
        # Only the new guest's report arrived; the old guest's event and
        # the revoke were both lost.
        token = self._authorize(port=10001)
        theirs = self._authorize(uuid='other-guest', port=10001)
        self.assertRaises(exception.InvalidToken, self.acquire, token)
        self.assertEqual('other-guest',
                         self.acquire(theirs)['instance_uuid'])

    def test_token_of_an_instance_now_on_another_host_leases_nothing(self):
        token = self._authorize(port=10001)
        self._register(UUID, 10001, host='compute-2')
        self.assertRaises(exception.InvalidToken, self.acquire, token)

    def test_second_user_is_refused_with_since_never_who(self):
        first = self._authorize(ctxt={'user_id': 'alice',
                                      'project_id': 'p'})
        second = self._authorize(ctxt={'user_id': 'bob', 'project_id': 'p'})
        self.acquire(first)
        self.clock.now += 5
        exc = self.assertRaises(exception.ConsoleInUse, self.acquire,
                                second, 'proxy-b', '198.51.100.9:6000')
        self.assertEqual(409, exc.code)
        self.assertIn('since 1970-01-01T00:16:40+00:00', str(exc))
        self.assertNotIn('alice', str(exc))
        self.assertNotIn('192.0.2.7', str(exc))

    def test_lease_carries_the_console_so_one_call_suffices(self):
        lease = self.acquire(self._authorize(port=10009))
        self.assertEqual((UUID, 'compute-1', 10009, 0, 30),
                         (lease['instance_uuid'], lease['compute_host'],
                          lease['port'], lease['index'], lease['lease_ttl']))
        self.assertTrue(lease['session_id'])

    def test_a_batch_answers_each_request_alone_and_in_order(self):
        held, free = self._authorize(index=0), self._authorize(index=1)
        self.acquire(held, 'proxy-b')
        answers = rpc.batch_results(self.manager.acquire_sessions(
            {}, 'proxy-a', [
                {'token': free, 'remote_address': '192.0.2.7:1'},
                {'token': held, 'remote_address': '192.0.2.7:2'},
                {'token': 'no-such-token'}, {'token': None}, {}]))
        self.assertEqual(1, answers[0]['index'])
        self.assertIsInstance(answers[1], exception.ConsoleInUse)
        for answer in answers[2:]:
            self.assertIsInstance(answer, exception.InvalidToken)
        self.assertEqual(
            [('proxy-b', 0), ('proxy-a', 1)],
            [(s['proxy_host'], s['index'])
             for s in self.manager.list_sessions({})])

    def test_batch_release_frees_every_console_named(self):
        tokens = [self._authorize(index=i) for i in range(3)]
        leases = [self.acquire(token) for token in tokens]
        self.manager.release_sessions(
            {}, [lease['session_id'] for lease in leases[:2]])
        self.assertEqual([leases[2]['session_id']],
                         [s['id'] for s in self.manager.list_sessions({})])

    def test_other_serial_index_of_same_instance_is_free(self):
        self.acquire(self._authorize(index=0))
        self.acquire(self._authorize(index=1))

    def test_release_frees_the_console_at_once(self):
        token = self._authorize()
        lease = self.acquire(token)
        self.manager.release_session({}, lease['session_id'])
        self.acquire(token, 'proxy-b')

    def test_lease_of_a_dead_proxy_expires_and_is_taken_over(self):
        token = self._authorize()
        self.acquire(token, 'proxy-a')
        self.clock.now += 29
        self.assertRaises(exception.ConsoleInUse, self.acquire, token,
                          'proxy-b')
        self.clock.now += 1
        self.acquire(token, 'proxy-b')

    def test_renewal_keeps_the_lease_and_records_bytes(self):
        token = self._authorize(ctxt={'user_id': 'alice',
                                      'project_id': 'p'})
        lease = self.acquire(token)
        self.clock.now += 20
        lost = self.manager.renew_sessions({}, 'proxy-a', [
            {'id': lease['session_id'], 'bytes_to_guest': 12,
             'bytes_to_client': 3400}])
        self.assertEqual([], lost)
        self.clock.now += 20
        session, = self.manager.list_sessions({}, UUID)
        self.assertEqual(
            (lease['session_id'], 0, 'alice', 'p', '192.0.2.7:5000',
             'proxy-a', 12, 3400),
            (session['id'], session['index'], session['user_id'],
             session['project_id'], session['remote_address'],
             session['proxy_host'], session['bytes_to_guest'],
             session['bytes_to_client']))

    def test_renewal_reports_sessions_the_proxy_no_longer_holds(self):
        lease = self.acquire(self._authorize())
        self.manager.force_disconnect({}, UUID)
        self.assertEqual(
            [lease['session_id'], 'never-existed'],
            self.manager.renew_sessions({}, 'proxy-a', [
                {'id': lease['session_id']}, {'id': 'never-existed'}]))

    def test_a_proxy_cannot_renew_another_proxys_lease(self):
        lease = self.acquire(self._authorize(), 'proxy-a')
        self.assertEqual([lease['session_id']], self.manager.renew_sessions(
            {}, 'proxy-b', [{'id': lease['session_id']}]))

    def test_force_disconnect_casts_to_proxies_and_frees_console(self):
        token = self._authorize()
        lease = self.acquire(token)
        ids = self.manager.force_disconnect({}, UUID,
                                            revoke_session_tokens=False)
        self.assertEqual([lease['session_id']], ids)
        self.assertTrue(self.proxy.received.wait(10))
        self.assertEqual([([lease['session_id']],
                           CloseCode.OPERATOR_DISCONNECT,
                           'Disconnected by an operator')],
                         self.proxy.disconnects)
        self.assertEqual([], self.manager.list_sessions({}, UUID))
        self.acquire(token, 'proxy-b')

    def test_force_disconnect_with_revocation_kills_the_token(self):
        token = self._authorize()
        self.acquire(token)
        self.manager.force_disconnect({}, UUID, revoke_tokens=True)
        self.assertRaises(exception.InvalidToken, self.acquire, token)

    def test_force_disconnect_revokes_the_ended_sessions_token(self):
        ended = self._authorize()
        spare = self._authorize()
        self.acquire(ended)
        self.manager.force_disconnect({}, UUID)
        self.assertRaises(exception.InvalidToken, self.acquire, ended)
        # Another URL of the server, not used by the ended session, opens.
        self.acquire(spare, 'proxy-b')

    def test_force_disconnect_of_one_session_revokes_only_its_token(self):
        first = self._authorize()
        second = self._authorize()
        lease = self.acquire(first)
        self.manager.force_disconnect({}, UUID,
                                      session_id=lease['session_id'])
        self.assertRaises(exception.InvalidToken, self.acquire, first)
        self.acquire(second)

    def test_force_disconnect_keeping_tokens_lets_the_url_open_again(self):
        token = self._authorize()
        self.acquire(token)
        self.manager.force_disconnect({}, UUID, revoke_session_tokens=False)
        self.acquire(token, 'proxy-b')

    def test_client_capped_at_1_8_revokes_all_the_instances_tokens(self):
        # A 1.8-capped client (pinned during an upgrade) cannot ask for
        # the ended session's token alone: it asks for all of them.
        self.useFixture(fixtures.MockPatchObject(
            rpcapi.ConsoleAuthAPI, 'VERSION_CAP', '1.8'))
        capped = rpcapi.ConsoleAuthAPI()
        ended = self._authorize()
        spare = self._authorize()
        self.acquire(ended)
        capped.force_disconnect({}, UUID)
        self.assertRaises(exception.InvalidToken, self.acquire, ended)
        self.assertRaises(exception.InvalidToken, self.acquire, spare)

    def test_force_disconnect_of_unknown_session_is_404(self):
        exc = self.assertRaises(exception.SessionNotFound,
                                self.manager.force_disconnect, {}, UUID,
                                session_id='nope')
        self.assertEqual(404, exc.code)

    def test_expired_token_cannot_acquire(self):
        token = self._authorize()
        self.clock.now += 601
        self.assertRaises(exception.InvalidToken, self.acquire, token)

    def test_unknown_or_malformed_token_cannot_acquire(self):
        self._authorize()
        for bad in ('nope', '', None, 42):
            self.assertRaises(exception.InvalidToken, self.acquire, bad)
        self.assertEqual([], self.manager.list_sessions({}))

    def test_concurrent_acquires_of_one_token_have_one_winner(self):
        token = self._authorize()
        contenders = 10
        outcomes = racing.all_at_once(
            contenders, lambda i: self.acquire(token, 'proxy-%d' % i))
        won = [o for o in outcomes if isinstance(o, dict)]
        refused = [o for o in outcomes
                   if isinstance(o, exception.ConsoleInUse)]
        self.assertEqual((1, contenders - 1), (len(won), len(refused)),
                         outcomes)
        [held] = self.manager.list_sessions({}, UUID)
        self.assertEqual(won[0]['session_id'], held['id'])

    def test_purge_drops_leases_expired_for_an_hour(self):
        self.acquire(self._authorize())
        self.clock.now += 31
        self.assertEqual((0, 0), self.purge())
        self.clock.now += manager.EXPIRED_LEASE_GRACE
        # The token too is long expired by then.
        self.assertEqual((1, 1), self.purge())

    def test_lease_outliving_an_outage_is_renewed_if_nobody_took_it(self):
        # The proxy could not reach consoleauth for longer than the TTL.
        held = self.acquire(self._authorize())
        self.clock.now += 90
        self.purge()
        self.assertEqual([], self.manager.renew_sessions(
            {}, 'proxy-a', [{'id': held['session_id']}]))
        [listed] = self.manager.list_sessions({}, UUID)
        self.assertEqual(held['session_id'], listed['id'])

    def test_after_a_silence_a_second_user_waits_for_the_renewal(self):
        # Nothing reached consoleauth for 40 s (the broker was down): the
        # first call after it, a second user's, must not take the console.
        held = self.acquire(self._authorize())
        self.clock.now += 40
        self.assertRaises(exception.ConsoleInUse, self.acquire,
                          self._authorize(), 'proxy-b')
        self.assertEqual([], self.manager.renew_sessions(
            {}, 'proxy-a', [{'id': held['session_id']}]))

    def test_expired_lease_taken_by_another_is_lost_to_its_proxy(self):
        held = self.acquire(self._authorize())
        token = self._authorize()
        # Others kept calling: consoleauth was reachable, proxy-a was not.
        self.clock.now += 14
        self.assertRaises(exception.ConsoleInUse, self.acquire, token,
                          'proxy-b')
        self.clock.now += 14
        self.assertRaises(exception.ConsoleInUse, self.acquire, token,
                          'proxy-b')
        self.clock.now += 3
        self.acquire(token, 'proxy-b')
        self.assertEqual([held['session_id']], self.manager.renew_sessions(
            {}, 'proxy-a', [{'id': held['session_id']}]))


class InstanceEventTest(base.TestCase):
    """instance_event, as a compute agent sends it on lifecycle events."""

    def setUp(self):
        super().setUp()
        self.db = db_api.Database('sqlite:///%s/ca.sqlite' % self.state_path)
        self.db.sync()
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        rpc.serve(rpcapi.TOPIC, manager.ConsoleAuthManager(
            self.db, proxy_rpcapi.ProxyAPI()))
        self.api = rpcapi.ConsoleAuthAPI()

    def event(self, host, event, state, **fields):
        self.api.instance_event({}, host, event, dict(
            {'uuid': UUID, 'name': 'vm', 'state': state}, **fields))

    def test_event_adds_then_updates_the_instance(self):
        self.event('compute-1', 'defined', 'shutoff', project_id='p')
        self.event('compute-1', 'started', 'running', project_id='p')
        row = self.api.get_instance({}, UUID)
        self.assertEqual(('compute-1', 'running', 'p'),
                         (row['host'], row['state'], row['project_id']))

    def test_undefined_removes_the_instance(self):
        self.event('compute-1', 'defined', 'shutoff')
        self.api.instance_event({}, 'compute-1', 'undefined', {'uuid': UUID})
        self.assertRaises(exception.InstanceNotFound,
                          self.api.get_instance, {}, UUID)

    def test_migration_source_does_not_take_the_instance_back(self):
        self.event('compute-1', 'started', 'running')
        self.event('compute-2', 'started', 'running')
        self.event('compute-1', 'stopped', 'shutoff')
        self.api.instance_event({}, 'compute-1', 'undefined', {'uuid': UUID})
        row = self.api.get_instance({}, UUID)
        self.assertEqual(('compute-2', 'running'),
                         (row['host'], row['state']))


class TokenRevocationTest(ConsoleAuthTestBase):
    """Tokens die with the console they name: events and host reports."""

    def live(self, token):
        try:
            self.manager.check_token({}, token)
            return True
        except exception.InvalidToken:
            return False

    def instance(self, uuid=UUID, state='running', consoles=None):
        values = {'uuid': uuid, 'name': 'vm', 'state': state}
        if consoles is not None:
            values['consoles'] = [{'index': i, 'port': p}
                                  for i, p in consoles]
        return values

    def test_stopping_events_revoke_this_hosts_tokens_only(self):
        for event in ('stopped', 'crashed', 'undefined'):
            mine = self._authorize()
            migrated = self.manager.authorize_console(
                {}, UUID, 'compute-2', '127.0.0.1', 10001)
            self.manager.instance_event({}, 'compute-1', event,
                                        self.instance(state='shutoff'))
            self.assertEqual((False, True),
                             (self.live(mine), self.live(migrated)), event)
            self.manager.revoke_tokens({}, UUID)

    def test_event_revokes_tokens_of_ports_the_instance_lost(self):
        kept = self._authorize(port=10001, index=0)
        lost = self._authorize(port=10002, index=1)
        renumbered = self._authorize(port=10003, index=2)
        self.manager.instance_event({}, 'compute-1', 'defined', self.instance(
            consoles=[(0, 10001), (2, 10004)]))
        self.assertEqual((True, False, False),
                         (self.live(kept), self.live(lost),
                          self.live(renumbered)))

    def test_started_event_of_an_older_agent_keeps_tokens(self):
        token = self._authorize()
        self.manager.instance_event({}, 'compute-1', 'started',
                                    self.instance())
        self.assertTrue(self.live(token))

    def test_report_revokes_what_it_contradicts(self):
        gone = self._authorize(uuid='gone', port=10001)
        moved = self._authorize(uuid='moved', port=10002)
        kept = self._authorize(uuid='kept', port=10003)
        old_agent = self._authorize(uuid='old-agent', port=10004)
        other_host = self.manager.authorize_console(
            {}, 'elsewhere', 'compute-2', '127.0.0.1', 10001)
        self.manager.report_instances({}, 'compute-1', [
            self.instance('moved', consoles=[(0, 10009)]),
            self.instance('kept', consoles=[(0, 10003)]),
            self.instance('old-agent'),
            self.instance('successor', consoles=[(0, 10001)])])
        self.assertEqual(
            (False, False, True, True, True),
            (self.live(gone), self.live(moved), self.live(kept),
             self.live(old_agent), self.live(other_host)))

    def test_revocation_for_one_host_spares_the_others(self):
        mine = self._authorize()
        theirs = self.manager.authorize_console(
            {}, UUID, 'compute-2', '127.0.0.1', 10001)
        self.assertEqual(1, self.manager.revoke_tokens(
            {}, UUID, compute_host='compute-1'))
        self.assertEqual((False, True), (self.live(mine), self.live(theirs)))


class ConsoleAuthOf1_8(manager.ConsoleAuthManager):
    """consoleauth as it was before 1.9: force_disconnect cannot revoke
    the ended sessions' tokens alone."""

    target = messaging.Target(version='1.8')

    def force_disconnect(self, ctxt, instance_uuid, session_id=None,
                         revoke_tokens=False):
        return super().force_disconnect(ctxt, instance_uuid,
                                        session_id=session_id,
                                        revoke_tokens=revoke_tokens)


class OlderConsoleAuthForceDisconnectTest(base.TestCase):
    """A 1.9 API or serialproxy-manage in front of a 1.8 consoleauth (a
    rolling upgrade): the ended session's URL must not open again, so
    the old consoleauth is asked to revoke all of the server's tokens."""

    def setUp(self):
        super().setUp()
        self.flags(group='consoleauth', token_ttl=600)
        db = db_api.Database('sqlite:///%s/ca.sqlite' % self.state_path)
        db.sync()
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        rpc.serve(rpcapi.TOPIC, ConsoleAuthOf1_8(db, proxy_rpcapi.ProxyAPI()))
        rpc.serve(proxy_rpcapi.TOPIC, RecordingProxy())
        self.api = rpcapi.ConsoleAuthAPI()
        # The lease checks the token's port against the registry.
        db.update_host_instance('compute-1', {
            'uuid': UUID, 'name': 'vm', 'state': 'running',
            'consoles': [{'index': 0, 'port': 10000}]}, time.time())

    def authorize(self):
        return self.api.authorize_console({}, UUID, 'compute-1',
                                          '127.0.0.1', 10000)

    def test_ended_sessions_url_does_not_open_again(self):
        token = self.authorize()
        self.api.acquire_session({}, token, 'proxy-a')
        self.api.force_disconnect({}, UUID)
        self.assertRaises(exception.InvalidToken, self.api.acquire_session,
                          {}, token, 'proxy-a')

    def test_keeping_tokens_is_still_possible(self):
        token = self.authorize()
        self.api.acquire_session({}, token, 'proxy-a')
        self.api.force_disconnect({}, UUID, revoke_session_tokens=False)
        self.api.acquire_session({}, token, 'proxy-a')
