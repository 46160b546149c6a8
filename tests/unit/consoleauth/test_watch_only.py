"""Watch-only tokens and keys: 'write' is a mode like view and take_over,
and a token or key without it never holds the console's writer seat.
Over real in-process RPC on SQLite."""

from unittest import mock

import fixtures
import oslo_messaging as messaging
import sqlalchemy as sa

from serialproxy.consoleauth import manager
from serialproxy.consoleauth import rpcapi
from serialproxy.consoleauth import tokens
from serialproxy import exception
from tests.unit.consoleauth import test_manager as tm
from tests.unit.consoleauth import test_ssh_keys

UUID = test_ssh_keys.UUID
PROJECT = test_ssh_keys.PROJECT
EVERY_MODE = ['view', 'take_over', 'sysrq', 'nmi']


class WatchOnlyTokenTest(tm.ConsoleAuthTestBase):

    def setUp(self):
        super().setUp()
        # The lease checks the token's port against the registry.
        self._register(tm.UUID, 10001)

    def token(self, watch_only=False, modes=EVERY_MODE):
        return self.manager.authorize_console(
            {}, tm.UUID, 'compute-1', '127.0.0.1', 10001, modes=modes,
            watch_only=watch_only)

    def writer(self):
        return self.manager.acquire_session({}, self.token(), 'proxy-a')

    def legacy_token(self, column):
        """A token row as consoleauth stored it before 'write' was a
        mode (or as an older consoleauth beside this one stores it)."""
        token = tokens.new_token()
        self.db.add_token(
            token_hash=tokens.hash_token(token), instance_uuid=tm.UUID,
            console_type='serial', compute_host='compute-1',
            host='127.0.0.1', port=10001, serial_index=0,
            created_at=self.clock.now, modes=column,
            expires_at=self.clock.now + 600)
        return token

    def test_writers_token_carries_write(self):
        console = self.manager.check_token({}, self.token())
        self.assertEqual(['nmi', 'sysrq', 'take_over', 'view', 'write'],
                         console['modes'])
        self.assertFalse(console['watch_only'])

    def test_watch_only_token_carries_view_alone(self):
        console = self.manager.check_token({}, self.token(watch_only=True))
        self.assertEqual(['view'], console['modes'])
        self.assertTrue(console['watch_only'])

    def test_watch_only_token_never_leases_the_writers_seat(self):
        exc = self.assertRaises(exception.ModeNotAllowed,
                                self.manager.acquire_session, {},
                                self.token(watch_only=True), 'proxy-a')
        self.assertEqual('write', exc.kwargs['mode'])
        self.assertIn('watch-only', exc.message)
        self.assertEqual([], self.manager.list_sessions({}, tm.UUID))
        # The console is still free for a writer.
        self.writer()

    def test_watch_only_token_in_a_batch_is_refused_alone(self):
        self._register(tm.UUID, 10002, index=1)
        writer_token = self.manager.authorize_console(
            {}, tm.UUID, 'compute-1', '127.0.0.1', 10002, index=1)
        answers = self.manager.acquire_sessions({}, 'proxy-a', [
            {'token': self.token(watch_only=True)},
            {'token': writer_token}])
        self.assertEqual('ModeNotAllowed', answers[0]['error'])
        self.assertIn('value', answers[1])

    def test_watch_only_token_watches_the_writer(self):
        writer = self.writer()
        joined = self.manager.join_session(
            {}, self.token(watch_only=True), 'proxy-b')
        self.assertEqual(writer['session_id'],
                         joined['writer']['session_id'])

    def test_watch_only_token_cannot_take_over(self):
        self.writer()
        exc = self.assertRaises(
            exception.ModeNotAllowed, self.manager.take_over_session, {},
            self.token(watch_only=True), 'proxy-b')
        self.assertEqual('This console URL is watch-only: it does not '
                         'allow mode=take_over', exc.message)

    def test_token_rows_from_before_write_read_as_writers(self):
        for column in (None, 'view', 'nmi sysrq take_over view'):
            token = self.legacy_token(column)
            console = self.manager.check_token({}, token)
            self.assertIn('write', console['modes'])
            self.assertFalse(console['watch_only'])
            leased = self.manager.acquire_session({}, token, 'proxy-a')
            self.manager.release_session({}, leased['session_id'])

    def test_client_capped_before_1_9_refuses_watch_only_tokens(self):
        self.useFixture(fixtures.MockPatchObject(
            rpcapi.ConsoleAuthAPI, 'VERSION_CAP', '1.8'))
        self.manager = rpcapi.ConsoleAuthAPI()
        self.assertRaises(exception.FeatureUnavailable, self.token,
                          watch_only=True)
        # A writer's token is issued as before.
        self.writer()


class ConsoleAuthOf1_8(manager.ConsoleAuthManager):
    """consoleauth as it was before 1.11: no watch-only tokens or keys."""

    target = messaging.Target(version='1.8')

    def authorize_console(self, ctxt, instance_uuid, compute_host, host,
                          port, index=0, console_type='serial', modes=None):
        return super().authorize_console(
            ctxt, instance_uuid, compute_host, host, port, index=index,
            console_type=console_type, modes=modes)


class OlderConsoleAuthTest(tm.ConsoleAuthTestBase):
    """A 1.11 API in front of a 1.8 consoleauth (a rolling upgrade): a
    watch-only token is refused, never issued as a writer's."""

    def setUp(self):
        patcher = mock.patch.object(manager, 'ConsoleAuthManager',
                                    ConsoleAuthOf1_8)
        patcher.start()
        self.addCleanup(patcher.stop)
        super().setUp()

    def test_watch_only_token_is_refused_not_issued_as_a_writers(self):
        exc = self.assertRaises(
            exception.FeatureUnavailable, self.manager.authorize_console,
            {}, tm.UUID, 'compute-1', '127.0.0.1', 10001, modes=['view'],
            watch_only=True)
        self.assertIn('watch-only', exc.message)
        token = self.manager.authorize_console(
            {}, tm.UUID, 'compute-1', '127.0.0.1', 10001, modes=['view'])
        self.assertIn('write', self.manager.check_token({}, token)['modes'])


class WatchOnlySSHKeyTest(test_ssh_keys.SSHKeyTest):

    def test_key_without_write_never_signs_in_as_the_writer(self):
        answer = self.api.authorize_ssh_key(
            {'user_id': 'u', 'project_id': PROJECT}, UUID, self.public_key,
            modes=['sysrq'], watch_only=True)
        self.assertEqual([], answer['modes'])
        exc = self.assertRaises(exception.ModeNotAllowed, self.acquire)
        self.assertEqual('write', exc.kwargs['mode'])
        self.assertEqual([], self.api.list_sessions({}, UUID))

    def test_key_without_write_signed_in_never_takes_the_writers_seat(self):
        # The one-sign-in path (a claim made from the key) as well.
        self.api.authorize_ssh_key(
            {'user_id': 'u', 'project_id': PROJECT}, UUID, self.public_key,
            modes=['sysrq'], watch_only=True)
        sign_in = self.sign_in()
        exc = self.assertRaises(exception.ModeNotAllowed,
                                self.acquire_signed_in, sign_in)
        self.assertEqual('write', exc.kwargs['mode'])
        self.assertEqual([], self.api.list_sessions({}, UUID))

    def test_key_of_a_writer_carries_write(self):
        answer = self.push(modes=['sysrq'])
        self.assertEqual(['sysrq', 'write'], answer['modes'])
        self.assertEqual(['sysrq', 'write'], self.acquire()['modes'])

    def test_key_rows_from_before_write_sign_in_as_the_writer(self):
        self.push(modes=['sysrq'])
        with self.db.session() as session:
            session.execute(sa.text(
                "UPDATE console_ssh_keys SET modes = 'sysrq'"))
        self.assertEqual(['sysrq', 'write'], self.acquire()['modes'])
