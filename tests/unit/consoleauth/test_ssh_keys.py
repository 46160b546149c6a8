"""One-time SSH keys in consoleauth: one console port, once, in time."""

import asyncssh
import fixtures
import oslo_messaging as messaging
import sqlalchemy as sa

from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy.consoleauth import manager
from serialproxy.consoleauth import rpcapi
from serialproxy.db import api as db_api
from serialproxy import exception
from serialproxy.proxy import rpcapi as proxy_rpcapi
from tests.unit.consoleauth import test_instance_console as base_test
from tests.unit import base
from tests.unit import rpc_fixture

UUID = base_test.UUID
OTHER_UUID = '7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b'
PROJECT = base_test.PROJECT
HOST = base_test.HOST


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


class SSHKeyTest(base.TestCase):

    endpoint_class = manager.ConsoleAuthManager

    def setUp(self):
        super().setUp()
        self.flags(key_ttl=60, group='ssh')
        self.db = db_api.Database('sqlite:///%s/ca.sqlite' % self.state_path)
        self.db.sync()
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        self.clock = Clock()
        self.endpoint = self.endpoint_class(
            self.db, proxy_rpcapi.ProxyAPI(), clock=self.clock)
        rpc.serve(rpcapi.TOPIC, self.endpoint)
        self.compute = base_test.StandInCompute()
        rpc.serve(compute_rpcapi.TOPIC, self.compute, server=HOST)
        self.api = rpcapi.ConsoleAuthAPI()
        self.api.report_instances({}, HOST, [
            {'uuid': UUID, 'name': 'vm', 'state': 'running',
             'project_id': PROJECT, 'user_id': 'u'},
            {'uuid': OTHER_UUID, 'name': 'vm2', 'state': 'running',
             'project_id': PROJECT, 'user_id': 'u'}])
        self.compute.answers[UUID] = {'host': '192.0.2.7', 'port': 10042}
        self.compute.answers[OTHER_UUID] = {'host': '192.0.2.7',
                                            'port': 10043}
        key = asyncssh.generate_private_key('ssh-ed25519')
        self.public_key = key.export_public_key().decode().strip()
        self.fingerprint = key.get_fingerprint('sha256')

    def push(self, uuid=UUID, index=0, project_id=PROJECT, modes=None):
        return self.api.authorize_ssh_key(
            {'user_id': 'u', 'project_id': PROJECT}, uuid, self.public_key,
            index=index, project_id=project_id, modes=modes)

    def acquire(self, uuid=UUID, index=0, fingerprint=None):
        return self.api.acquire_session_by_ssh_key(
            {}, 'proxy-1', uuid, index, fingerprint or self.fingerprint,
            remote_address='198.51.100.4:50000')

    def sign_in(self, uuid=UUID, index=0):
        return self.api.sign_in_ssh_key({}, uuid, index, self.fingerprint)

    def acquire_signed_in(self, sign_in):
        return self.api.acquire_session_by_ssh_sign_in(
            {}, 'proxy-1', sign_in, remote_address='198.51.100.4:50000')

    def test_signing_in_uses_the_key_up(self):
        self.push(modes=['sysrq'])
        sign_in = self.sign_in()
        self.assertFalse(self.api.check_ssh_key({}, UUID, 0,
                                                self.fingerprint))
        self.assertRaises(exception.SSHKeyRefused, self.sign_in)
        console = self.acquire_signed_in(sign_in)
        self.assertEqual(('192.0.2.7', 10042, 'ssh', ['sysrq', 'write']), (
            console['host'], console['port'], console['transport'],
            console['modes']))
        listed, = self.api.list_sessions({}, UUID)
        self.assertEqual(('ssh', '198.51.100.4:50000'),
                         (listed['transport'], listed['remote_address']))

    def test_sign_in_opens_one_console_session(self):
        self.push()
        sign_in = self.sign_in()
        console = self.acquire_signed_in(sign_in)
        self.api.release_session({}, console['session_id'])
        self.assertRaises(exception.SSHKeyRefused, self.acquire_signed_in,
                          sign_in)

    def test_sign_in_with_a_key_of_another_console_is_refused(self):
        self.push(index=0)
        self.assertRaises(exception.SSHKeyRefused, self.sign_in, index=1)
        self.assertRaises(exception.SSHKeyRefused, self.sign_in,
                          uuid=OTHER_UUID)

    def test_sign_in_with_an_expired_key_is_refused(self):
        self.push()
        self.clock.now += 60
        self.assertRaises(exception.SSHKeyRefused, self.sign_in)

    def test_signed_in_session_on_a_held_console_is_in_use(self):
        token = self.api.authorize_instance_console({}, UUID)['token']
        self.api.acquire_session({}, token, 'proxy-1')
        self.push()
        self.assertRaises(exception.ConsoleInUse, self.acquire_signed_in,
                          self.sign_in())

    def test_made_up_claim_is_refused(self):
        self.push()
        self.assertRaises(exception.SSHKeyRefused, self.acquire_signed_in,
                          {'claim': 'made-up'})

    def test_pushed_key_names_its_console_user_and_expiry(self):
        answer = self.push(index=1)
        self.assertEqual(UUID + '.port1', answer['user'])
        self.assertEqual(self.fingerprint, answer['fingerprint'])
        self.assertEqual(self.clock.now + 60, answer['expires_at'])
        self.assertEqual([(UUID, 1)], self.compute.calls)

    def test_only_the_fingerprint_and_public_key_are_stored(self):
        self.push()
        with self.db.session() as session:
            row = session.execute(sa.text(
                'SELECT fingerprint, public_key FROM console_ssh_keys')
            ).one()
        self.assertEqual(self.fingerprint, row.fingerprint)
        self.assertEqual(self.public_key.split()[:2],
                         row.public_key.split()[:2])
        self.assertNotIn('PRIVATE', row.public_key)

    def test_key_opens_its_console_once(self):
        self.push()
        self.assertTrue(self.api.check_ssh_key({}, UUID, 0,
                                               self.fingerprint))
        console = self.acquire()
        self.assertEqual(('192.0.2.7', 10042, 'ssh'), (
            console['host'], console['port'], console['transport']))
        self.api.release_session({}, console['session_id'])
        self.assertFalse(self.api.check_ssh_key({}, UUID, 0,
                                                self.fingerprint))
        self.assertRaises(exception.SSHKeyRefused, self.acquire)

    def test_leased_session_is_listed_with_its_transport(self):
        self.push()
        console = self.acquire()
        listed, = self.api.list_sessions({}, UUID)
        self.assertEqual((console['session_id'], 'ssh'),
                         (listed['id'], listed['transport']))

    def test_key_keeps_its_modes_and_its_console_carries_them(self):
        answer = self.push(modes=['sysrq', 'nmi', 'view', 'take_over',
                                  'reboot'])
        # What a session may send, and watching (a .view user); never
        # take_over, nor anything else.
        self.assertEqual(['nmi', 'sysrq', 'view', 'write'], answer['modes'])
        with self.db.session() as session:
            self.assertEqual('nmi sysrq view write', session.execute(
                sa.text('SELECT modes FROM console_ssh_keys')).scalar())
        self.assertEqual(['nmi', 'sysrq', 'view', 'write'],
                         self.acquire()['modes'])

    def test_key_pushed_without_modes_opens_a_console_without_them(self):
        self.push()
        self.assertEqual(['write'], self.acquire()['modes'])

    def test_client_capped_at_1_7_pushes_keys_without_modes(self):
        self.useFixture(fixtures.MockPatchObject(
            rpcapi.ConsoleAuthAPI, 'VERSION_CAP', '1.7'))
        self.api = rpcapi.ConsoleAuthAPI()
        self.push(modes=['sysrq'])
        self.assertEqual(['write'], self.acquire()['modes'])

    def test_key_for_port_0_does_not_open_port_1(self):
        self.push(index=0)
        self.assertFalse(self.api.check_ssh_key({}, UUID, 1,
                                                self.fingerprint))
        self.assertRaises(exception.SSHKeyRefused, self.acquire, index=1)

    def test_key_for_another_server_is_refused(self):
        self.push(uuid=OTHER_UUID)
        self.assertRaises(exception.SSHKeyRefused, self.acquire)

    def test_expired_key_is_refused(self):
        self.push()
        self.clock.now += 60
        self.assertFalse(self.api.check_ssh_key({}, UUID, 0,
                                                self.fingerprint))
        self.assertRaises(exception.SSHKeyRefused, self.acquire)

    def test_held_console_refuses_the_key_and_keeps_it(self):
        token = self.api.authorize_instance_console({}, UUID)['token']
        self.api.acquire_session({}, token, 'proxy-1')
        self.push()
        error = self.assertRaises(exception.ConsoleInUse, self.acquire)
        self.assertIn('in use since', str(error))
        self.assertTrue(self.api.check_ssh_key({}, UUID, 0,
                                               self.fingerprint))

    def test_ssh_session_holds_the_console_against_a_token(self):
        self.push()
        self.acquire()
        token = self.api.authorize_instance_console({}, UUID)['token']
        self.assertRaises(exception.ConsoleInUse, self.api.acquire_session,
                          {}, token, 'proxy-2')

    def test_key_whose_port_went_to_another_guest_opens_nothing(self):
        self.db.update_host_instance(HOST, {
            'uuid': UUID, 'name': 'vm', 'state': 'running',
            'project_id': PROJECT, 'user_id': 'u',
            'consoles': [{'index': 0, 'port': 10042}]}, self.clock.now)
        self.push()
        # The agent's report of the new port; the revoke was lost.
        self.db.update_host_instance(HOST, {
            'uuid': UUID, 'name': 'vm', 'state': 'running',
            'project_id': PROJECT, 'user_id': 'u',
            'consoles': [{'index': 0, 'port': 10050}]}, self.clock.now)
        self.assertRaises(exception.SSHKeyRefused, self.acquire)
        self.assertEqual([], self.api.list_sessions({}))

    def test_stopping_the_instance_revokes_its_keys(self):
        self.push()
        self.api.instance_event({}, HOST, 'stopped', {
            'uuid': UUID, 'name': 'vm', 'state': 'shutoff',
            'project_id': PROJECT, 'user_id': 'u'})
        self.assertRaises(exception.SSHKeyRefused, self.acquire)

    def test_another_projects_server_is_not_found(self):
        self.assertRaises(exception.InstanceNotFound, self.push,
                          project_id='another')

    def test_unknown_key_type_is_invalid(self):
        self.public_key = 'ssh-dss AAAAB3NzaC1kc3MAAACBAP'
        error = self.assertRaises(exception.InvalidSSHKey, self.push)
        self.assertIn('ssh-dss', str(error))

    def test_not_running_instance_is_a_conflict(self):
        self.compute.answers[UUID] = exception.InstanceNotRunning(
            instance_uuid=UUID)
        self.assertRaises(exception.InstanceNotRunning, self.push)

    def test_expired_keys_are_purged(self):
        self.push()
        self.clock.now += 61
        self.endpoint.purge_expired()
        with self.db.session() as session:
            self.assertEqual(0, session.execute(sa.text(
                'SELECT count(*) FROM console_ssh_keys')).scalar())


class ConsoleAuthOf1_7(manager.ConsoleAuthManager):
    """consoleauth as it was before 1.8: authorize_ssh_key takes no
    modes."""

    target = messaging.Target(version='1.7')

    def authorize_ssh_key(self, ctxt, instance_uuid, public_key, index=0,
                          project_id=None):
        return super().authorize_ssh_key(
            ctxt, instance_uuid, public_key, index=index,
            project_id=project_id)


class OlderConsoleAuthTest(SSHKeyTest):
    """A 1.8 API in front of a 1.7 consoleauth (a rolling upgrade): keys
    are pushed without modes, and their sessions may not send SysRq; a
    1.10 proxy signs in by checking the key, which its lease uses up."""

    endpoint_class = ConsoleAuthOf1_7

    def test_key_keeps_its_modes_and_its_console_carries_them(self):
        # Asked at 1.8 first, it refuses (UnsupportedVersion); asked
        # again at 1.7, it takes the key.
        answer = self.push(modes=['sysrq', 'nmi'])
        self.assertEqual(self.fingerprint, answer['fingerprint'])
        console = self.acquire()
        self.assertEqual(['write'], console['modes'])

    # A claim is a 1.10 thing: a 1.10 proxy sends none to this one.
    test_made_up_claim_is_refused = None

    def test_signing_in_uses_the_key_up(self):
        # Before 1.10 a sign-in only checks the key: two connections sign
        # in with it, and the lease still uses it up, once.
        self.push()
        first, second = self.sign_in(), self.sign_in()
        self.assertEqual((None, None), (first['claim'], second['claim']))
        console = self.acquire_signed_in(first)
        self.assertEqual('ssh', console['transport'])
        self.api.release_session({}, console['session_id'])
        self.assertRaises(exception.SSHKeyRefused, self.acquire_signed_in,
                          second)


class SSHSpectatorsTest(SSHKeyTest):
    """An SSH writer can be watched, and an SSH user can watch (1.13)."""

    def new_key(self):
        key = asyncssh.generate_private_key('ssh-ed25519')
        self.public_key = key.export_public_key().decode().strip()
        self.fingerprint = key.get_fingerprint('sha256')

    def test_ssh_writer_names_its_relay_for_spectators(self):
        self.push(modes=['view'])
        writer = self.api.acquire_session_by_ssh_sign_in(
            {}, 'proxy-1', self.sign_in(), remote_address='198.51.100.4:1',
            relay_address='127.0.0.1:40001')
        self.assertTrue(writer['relay_key'])
        token = self.endpoint.authorize_console(
            {}, UUID, HOST, '192.0.2.7', 10042, modes=['view'])
        joined = self.api.join_session({}, token, 'proxy-2')
        self.assertEqual({'session_id': writer['session_id'],
                          'proxy_host': 'proxy-1',
                          'relay_address': '127.0.0.1:40001',
                          'relay_key': writer['relay_key']},
                         joined['writer'])

    def test_ssh_writer_of_an_older_proxy_names_no_relay(self):
        self.push()
        writer = self.acquire_signed_in(self.sign_in())
        self.assertIsNone(writer['relay_key'])

    def test_view_user_joins_with_its_sign_in_claim(self):
        self.push()
        writer = self.acquire_signed_in(self.sign_in())
        self.new_key()
        self.push(modes=['view'])
        joined = self.api.join_session({}, self.sign_in()['claim'],
                                       'proxy-2')
        self.assertEqual(writer['session_id'], joined['writer']['session_id'])
        modes = sorted(s['mode'] for s in self.api.list_sessions({}, UUID))
        self.assertEqual(['view', 'write'], modes)

    def test_watch_only_key_joins_but_never_writes(self):
        self.push()
        self.acquire_signed_in(self.sign_in())
        self.new_key()
        self.api.authorize_ssh_key(
            {'user_id': 'u', 'project_id': PROJECT}, UUID, self.public_key,
            modes=['view', 'sysrq'], watch_only=True)
        claim = self.sign_in()['claim']
        joined = self.api.join_session({}, claim, 'proxy-2')
        self.assertEqual(['view'], joined['modes'])

    def test_key_without_view_may_not_watch(self):
        self.push()
        self.acquire_signed_in(self.sign_in())
        self.new_key()
        self.push(modes=['sysrq'])
        exc = self.assertRaises(exception.ModeNotAllowed,
                                self.api.join_session, {},
                                self.sign_in()['claim'], 'proxy-2')
        self.assertEqual('view', exc.kwargs['mode'])
