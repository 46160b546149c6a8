"""consoleauth's spectators (join_session) and take-over
(take_over_session), over real in-process RPC on SQLite."""

from serialproxy import exception
from serialproxy.proxy.close_codes import CloseCode
from tests.unit.consoleauth import test_manager as tm


class ModesTest(tm.ConsoleAuthTestBase):

    def token(self, modes=('view', 'take_over')):
        self._register(tm.UUID, 10001)
        return self.manager.authorize_console(
            {}, tm.UUID, 'compute-1', '127.0.0.1', 10001, modes=modes)

    def writer(self):
        return self.manager.acquire_session(
            {}, self.token(), 'proxy-a', remote_address='192.0.2.7:1')

    def join(self, token=None, limit=10, proxy='proxy-b'):
        return self.manager.join_session(
            {}, token or self.token(), proxy, remote_address='192.0.2.8:1',
            max_spectators=limit)

    def test_spectator_and_take_over_of_a_port_that_moved_are_refused(self):
        self.writer()
        token = self.token()
        self._register(tm.UUID, 10002)
        self.assertRaises(exception.InvalidToken, self.join, token)
        self.assertRaises(exception.InvalidToken,
                          self.manager.take_over_session, {}, token,
                          'proxy-b')

    def test_token_carries_only_known_modes(self):
        token = self.token(modes=('view', 'root'))
        self.assertEqual(['view', 'write'],
                         self.manager.check_token({}, token)['modes'])

    def test_token_carries_the_pages_sysrq_and_nmi_permissions(self):
        every = ('view', 'take_over', 'sysrq', 'nmi')
        token = self.token(modes=every + ('reboot',))
        self.assertEqual(['nmi', 'sysrq', 'take_over', 'view', 'write'],
                         self.manager.check_token({}, token)['modes'])
        # The lease answer carries them to the proxy too.
        leased = self.manager.acquire_session({}, token, 'proxy-a')
        self.assertEqual(['nmi', 'sysrq', 'take_over', 'view', 'write'],
                         leased['modes'])

    def test_spectator_gets_the_writers_relay(self):
        writer = self.manager.acquire_sessions({}, 'proxy-a', [
            {'token': self.token(), 'remote_address': 'x',
             'relay_address': '10.0.0.1:4000'}])[0]['value']
        joined = self.join()
        self.assertEqual({'session_id': writer['session_id'],
                          'proxy_host': 'proxy-a',
                          'relay_address': '10.0.0.1:4000',
                          'relay_key': writer['relay_key']},
                         joined['writer'])
        self.assertNotEqual(writer['session_id'], joined['session_id'])

    def test_spectators_are_listed_with_their_mode_and_renewed(self):
        writer = self.writer()
        joined = self.join()
        modes = sorted((s['id'], s['mode']) for s in
                       self.manager.list_sessions({}, tm.UUID))
        self.assertEqual(sorted([(writer['session_id'], 'write'),
                                 (joined['session_id'], 'view')]), modes)
        self.assertEqual([], self.manager.renew_sessions(
            {}, 'proxy-b', [{'id': joined['session_id']}]))
        # Listings never show the relay key.
        for session in self.manager.list_sessions({}, tm.UUID):
            self.assertNotIn('relay_key', session)

    def test_no_writer_means_nothing_to_watch(self):
        self.assertRaises(exception.ConsoleNotInUse, self.join)

    def test_token_without_view_is_refused(self):
        self.writer()
        self.assertRaises(exception.ModeNotAllowed, self.join,
                          self.token(modes=()))

    def test_cap_refuses_the_spectator_past_it(self):
        self.writer()
        self.join(limit=2)
        self.join(limit=2)
        exc = self.assertRaises(exception.TooManySpectators, self.join,
                                limit=2)
        self.assertEqual('This console already has 2 spectators',
                         exc.message)

    def test_spectators_never_block_a_writer_after_the_writer_left(self):
        writer = self.writer()
        self.join()
        self.manager.release_session({}, writer['session_id'])
        self.writer()

    def test_force_disconnect_ends_spectators_too(self):
        writer = self.writer()
        joined = self.join()
        ids = self.manager.force_disconnect({}, tm.UUID)
        self.assertEqual(sorted([writer['session_id'],
                                 joined['session_id']]), sorted(ids))

    def test_take_over_replaces_the_writer_and_casts_4006(self):
        writer = self.writer()
        taken = self.manager.take_over_session(
            {}, self.token(), 'proxy-b', remote_address='192.0.2.9:1',
            relay_address='10.0.0.2:4000')
        self.assertEqual(writer['session_id'], taken['replaced'])
        self.assertTrue(self.proxy.received.wait(5))
        self.assertEqual([([writer['session_id']], CloseCode.TAKEN_OVER,
                           'The console was taken over by another user')],
                         self.proxy.disconnects)
        held, = [s for s in self.manager.list_sessions({}, tm.UUID)]
        self.assertEqual((taken['session_id'], 'take_over', 'proxy-b'),
                         (held['id'], held['mode'], held['proxy_host']))
        # The old writer's renewal finds its lease gone.
        self.assertEqual([writer['session_id']], self.manager.renew_sessions(
            {}, 'proxy-a', [{'id': writer['session_id']}]))
        # A plain writer is refused; a spectator sees the new relay.
        self.assertRaises(exception.ConsoleInUse, self.writer)
        self.assertEqual('10.0.0.2:4000',
                         self.join()['writer']['relay_address'])

    def test_take_over_of_a_free_console_replaces_nobody(self):
        taken = self.manager.take_over_session({}, self.token(), 'proxy-b')
        self.assertIsNone(taken['replaced'])

    def test_take_over_needs_the_mode(self):
        self.writer()
        self.assertRaises(exception.ModeNotAllowed,
                          self.manager.take_over_session, {},
                          self.token(modes=('view',)), 'proxy-b')

    def test_bad_token_is_invalid_for_both(self):
        self.assertRaises(exception.InvalidToken, self.join, 'nope')
        self.assertRaises(exception.InvalidToken,
                          self.manager.take_over_session, {}, 'nope', 'p')
