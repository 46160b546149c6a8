"""The sessions extension of the REST API against a real proxy and guest.

A client holds the console in a websocket; the API lists that session
with who and where; an operator's DELETE closes the websocket with the
operator's reason and the ended session's URL no longer opens (with
revoke_tokens=true no URL of the server does; with false it opens again).
"""

import json

import websocket

from tests.harness import fixtures as func_fixtures
from tests.functional import test_sessions
from tests.harness import testcase

PROJECT = '5e5510a55e5510a55e5510a55e5510a5'
USER = 'a11ce000a11ce000a11ce000a11ce000'


class ApiSessionsTest(testcase.TestCase):
    def setUp(self):
        super().setUp()
        world = self.useFixture(func_fixtures.AllInOneWithGuest(PROJECT,
                                                                USER))
        self.guest, self.deployment = world.guest, world.deployment
        self.path = ('/v2.1/servers/%s/serial-console/sessions'
                     % self.guest.uuid)

    def test_operator_lists_and_ends_a_session_over_the_api(self):
        # noauth without a token: user "admin" of project "admin".
        url = self.deployment.console_url(self.guest.uuid)
        held = websocket.create_connection(url, subprotocols=['binary'],
                                           timeout=20)
        self.addCleanup(held.close)
        self.assertIsNotNone(test_sessions.shell_answers(held, 'api'))

        status, body = self.deployment.api_request('GET', self.path)
        self.assertEqual(200, status, body)
        session, = json.loads(body)['sessions']
        self.assertEqual((self.guest.uuid, 'admin', 'admin'),
                         (session['instance_uuid'], session['user_id'],
                          session['project_id']))
        self.assertTrue(session['remote_address'].startswith('127.0.0.1:'),
                        session)

        status, body = self.deployment.api_request(
            'DELETE', self.path + '?revoke_tokens=true')
        self.assertEqual(204, status, body)
        self.assertEqual((4001, 'Disconnected by an operator'),
                         test_sessions.close_frame(held))
        self.assertEqual(401, test_sessions.refusal(url)[0])
        status, body = self.deployment.api_request('GET', self.path)
        self.assertEqual([], json.loads(body)['sessions'])

    def test_force_disconnect_revokes_the_ended_sessions_url(self):
        url = self.deployment.console_url(self.guest.uuid)
        other_url = self.deployment.console_url(self.guest.uuid)
        held = websocket.create_connection(url, subprotocols=['binary'],
                                           timeout=20)
        self.addCleanup(held.close)
        self.assertIsNotNone(test_sessions.shell_answers(held, 'once'))

        status, body = self.deployment.api_request('DELETE', self.path)
        self.assertEqual(204, status, body)
        self.assertEqual(4001, test_sessions.close_frame(held)[0])
        # One click on the page's Reconnect would use the same URL.
        self.assertEqual(401, test_sessions.refusal(url)[0])
        # Only the ended session's token: another URL still opens.
        other = websocket.create_connection(other_url,
                                            subprotocols=['binary'],
                                            timeout=20)
        self.addCleanup(other.close)
        self.assertIsNotNone(test_sessions.shell_answers(other, 'other'))

    def test_revoke_tokens_false_keeps_the_ended_sessions_url(self):
        url = self.deployment.console_url(self.guest.uuid)
        held = websocket.create_connection(url, subprotocols=['binary'],
                                           timeout=20)
        self.addCleanup(held.close)
        self.assertIsNotNone(test_sessions.shell_answers(held, 'kept'))
        status, body = self.deployment.api_request(
            'DELETE', self.path + '?revoke_tokens=false')
        self.assertEqual(204, status, body)
        self.assertEqual(4001, test_sessions.close_frame(held)[0])
        again = websocket.create_connection(url, subprotocols=['binary'],
                                            timeout=20)
        self.addCleanup(again.close)
        self.assertIsNotNone(test_sessions.shell_answers(again, 'again'))
