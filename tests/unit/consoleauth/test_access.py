"""The serial console access switch: its precedence, and consoleauth
enforcing it on URLs, keys, leases and live sessions."""

import itertools

from serialproxy.consoleauth import access
from serialproxy import exception
from serialproxy.proxy.close_codes import CloseCode
from tests.unit.consoleauth import test_manager

UUID = test_manager.UUID
OTHER_UUID = '0d3c9b8a-7f6e-4d5c-8b4a-3f2e1d0c9b8a'
PROJECT = 'p-1'

ON, OFF = access.ENABLED, access.DISABLED
CLOUDS = (access.ENABLED, access.DISABLED, access.FORCED_OFF)
SWITCH = (None, ON, OFF)


class PrecedenceTest(test_manager.base.TestCase):
    """decide(cloud, project, server): the most specific level that is
    set wins; the cloud's forced_off wins over everything."""

    # (cloud, project, server) -> (enabled, decided_by), every case.
    TABLE = {
        ('enabled', None, None): (True, 'cloud'),
        ('enabled', None, ON): (True, 'server'),
        ('enabled', None, OFF): (False, 'server'),
        ('enabled', ON, None): (True, 'project'),
        ('enabled', ON, ON): (True, 'server'),
        ('enabled', ON, OFF): (False, 'server'),
        ('enabled', OFF, None): (False, 'project'),
        ('enabled', OFF, ON): (True, 'server'),
        ('enabled', OFF, OFF): (False, 'server'),
        ('disabled', None, None): (False, 'cloud'),
        ('disabled', None, ON): (True, 'server'),
        ('disabled', None, OFF): (False, 'server'),
        ('disabled', ON, None): (True, 'project'),
        ('disabled', ON, ON): (True, 'server'),
        ('disabled', ON, OFF): (False, 'server'),
        ('disabled', OFF, None): (False, 'project'),
        ('disabled', OFF, ON): (True, 'server'),
        ('disabled', OFF, OFF): (False, 'server'),
    }

    def test_table_covers_every_combination(self):
        self.assertEqual(
            set(itertools.product(CLOUDS[:2], SWITCH, SWITCH)),
            set(self.TABLE))

    def test_most_specific_level_that_is_set_decides(self):
        for (cloud, project, server), expected in self.TABLE.items():
            self.assertEqual(
                expected, tuple(access.decide(cloud, project, server)),
                (cloud, project, server))

    def test_forced_off_wins_over_every_project_and_server_switch(self):
        for project, server in itertools.product(SWITCH, SWITCH):
            self.assertEqual(
                (False, 'cloud'),
                tuple(access.decide(access.FORCED_OFF, project, server)))


class EnforcementTest(test_manager.ConsoleAuthTestBase):
    """Through real RPC, as the API and the proxies call."""

    def setUp(self):
        super().setUp()
        self.project_ctxt = {'user_id': 'admin-1', 'project_id': 'admin-p'}

    def _register(self, uuid, port, index=0, host='compute-1'):
        super()._register(uuid, port, index, host)
        self.db.update_host_instance(host, {
            'uuid': uuid, 'name': 'vm-' + uuid, 'state': 'running',
            'project_id': PROJECT,
            'consoles': [{'index': index, 'port': port}]}, self.clock())

    def _lease(self, token):
        return self.manager.acquire_session({}, token, 'proxy-1')

    def test_project_off_refuses_new_tokens_naming_the_project(self):
        self._register(UUID, 10001)
        self.manager.set_console_access(self.project_ctxt,
                                        project_id=PROJECT, enabled=False)
        exc = self.assertRaises(exception.ConsoleAccessDisabled,
                                self._authorize)
        self.assertEqual(403, exc.code)
        self.assertEqual(
            'Serial console access is turned off for this project',
            exc.message)

    def test_project_off_ends_its_sessions_with_4009_and_refuses_leases(
            self):
        token = self._authorize()
        other = self._authorize(uuid=OTHER_UUID, port=10002)
        ours = self._lease(token)['session_id']
        theirs = self._lease(other)['session_id']
        answer = self.manager.set_console_access(
            self.project_ctxt, project_id=PROJECT, enabled=False)
        self.assertEqual((False, 'project'),
                         (answer['enabled'], answer['decided_by']))
        self.assertTrue(self.proxy.received.wait(5))
        self.assertEqual(
            [(sorted([ours, theirs]), int(CloseCode.ACCESS_DISABLED),
              'Serial console access is turned off for this project')],
            self.proxy.disconnects)
        self.assertEqual([], self.manager.list_sessions({}))
        # The token is kept, but opens nothing while access is off.
        self.assertRaises(exception.ConsoleAccessDisabled, self._lease,
                          token)
        self.assertEqual([], self.manager.list_sessions({}))
        self.manager.set_console_access(self.project_ctxt,
                                        project_id=PROJECT, enabled=None)
        self._lease(token)

    def test_server_on_wins_over_its_project_off(self):
        token = self._authorize()
        other = self._authorize(uuid=OTHER_UUID, port=10002)
        self.manager.set_console_access(self.project_ctxt,
                                        instance_uuid=UUID, enabled=True)
        self.manager.set_console_access(self.project_ctxt,
                                        project_id=PROJECT, enabled=False)
        self._lease(token)
        exc = self.assertRaises(exception.ConsoleAccessDisabled,
                                self._lease, other)
        self.assertEqual('project', exc.kwargs['level'])
        answer = self.manager.get_console_access({}, instance_uuid=UUID)
        self.assertEqual(
            {'project_id': PROJECT, 'server_id': UUID, 'enabled': True,
             'decided_by': 'server',
             'levels': {'cloud': 'enabled', 'project': 'disabled',
                        'server': 'enabled'}}, answer)

    def test_forced_off_refuses_even_a_server_switched_on(self):
        token = self._authorize()
        self.manager.set_console_access(self.project_ctxt,
                                        instance_uuid=UUID, enabled=True)
        self.flags(group='console', access_default='forced_off')
        exc = self.assertRaises(exception.ConsoleAccessDisabled,
                                self._lease, token)
        self.assertEqual('cloud', exc.kwargs['level'])
        self.assertRaises(exception.ConsoleAccessDisabled, self._authorize)

    def test_server_off_refuses_spectators_and_take_over(self):
        self._register(UUID, 10001)
        token = self.manager.authorize_console(
            {}, UUID, 'compute-1', '127.0.0.1', 10001,
            modes=['view', 'take_over'])
        self._lease(token)
        self.manager.set_console_access(self.project_ctxt,
                                        instance_uuid=UUID, enabled=False)
        for call in (self.manager.join_session,
                     self.manager.take_over_session):
            exc = self.assertRaises(exception.ConsoleAccessDisabled, call,
                                    {}, token, 'proxy-1')
            self.assertEqual('server', exc.kwargs['level'])

    def test_lease_taken_as_access_goes_off_is_given_back(self):
        # The switch is written after the lease's own check would have
        # passed: the check after the lease sees it and gives it back.
        token = self._authorize()
        self.db.set_access('server', UUID, 'disabled', self.clock())
        self.assertRaises(exception.ConsoleAccessDisabled, self._lease,
                          token)
        self.assertEqual([], self.manager.list_sessions({}))

    def test_unknown_server_is_not_found_and_project_taken_as_given(self):
        self.assertRaises(exception.InstanceNotFound,
                          self.manager.set_console_access, {},
                          instance_uuid='nope', enabled=False)
        answer = self.manager.set_console_access(
            {}, project_id='no-servers-yet', enabled=False)
        self.assertEqual(
            [answer], self.manager.list_console_access({}))

    def test_changed_access_default_ends_what_it_turns_off_at_start(self):
        endpoint = access.AccessEndpoints()
        endpoint.db, endpoint.clock = self.db, self.clock
        endpoint.proxy_api = test_manager.proxy_rpcapi.ProxyAPI()
        self.assertEqual(0, endpoint.apply_cloud_access())
        token = self._authorize()
        session = self._lease(token)['session_id']
        self.flags(group='console', access_default='disabled')
        self.assertEqual(1, endpoint.apply_cloud_access())
        self.assertTrue(self.proxy.received.wait(5))
        self.assertEqual(
            [([session], int(CloseCode.ACCESS_DISABLED),
              'Serial console access is turned off for this cloud')],
            self.proxy.disconnects)
        self.assertEqual(0, endpoint.apply_cloud_access())
