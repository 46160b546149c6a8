import sqlalchemy as sa

from serialproxy.consoleauth import manager
from serialproxy.consoleauth import rpcapi
from serialproxy.consoleauth import tokens
from serialproxy.db import api as db_api
from serialproxy import exception
from tests.unit import base
from tests.unit import rpc_fixture

UUID = '6b8ab4b4-2b53-4f5c-9d5d-3c1a1d5c0a01'


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class ConsoleAuthManagerTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.flags(group='consoleauth', token_ttl=600)
        self.db = db_api.Database('sqlite:///%s/ca.sqlite' % self.state_path)
        self.db.sync()
        self.clock = Clock()
        endpoint = manager.ConsoleAuthManager(self.db, clock=self.clock)
        self.purge = endpoint.purge_expired_tokens
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        rpc.serve(rpcapi.TOPIC, endpoint)
        # Through real RPC, so errors arrive as callers see them.
        self.manager = rpcapi.ConsoleAuthAPI()

    def _authorize(self, uuid=UUID, port=10001):
        return self.manager.authorize_console({}, uuid, 'compute-1',
                                              '127.0.0.1', port, index=0)

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
        self.assertEqual(1, self.purge())
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


class InstanceEventTest(base.TestCase):
    """instance_event, as a compute agent sends it on lifecycle events."""

    def setUp(self):
        super().setUp()
        self.db = db_api.Database('sqlite:///%s/ca.sqlite' % self.state_path)
        self.db.sync()
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        rpc.serve(rpcapi.TOPIC, manager.ConsoleAuthManager(self.db))
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
