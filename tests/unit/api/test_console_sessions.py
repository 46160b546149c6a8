"""Console sessions: who holds a console, and an operator ending it."""

import time
import urllib.parse
import uuid

from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import exception
from serialproxy.proxy import manager as proxy_manager
from serialproxy.proxy import rpcapi as proxy_rpcapi
from tests.unit.api import base

BODY = {'remote_console': {'protocol': 'serial', 'type': 'serial'}}


class ProxyRecorder:
    """Stands in for a proxy's event loop and session table: records the
    disconnect orders that reach this proxy over the fanout topic."""

    def __init__(self):
        self.disconnected = []

    def call_soon_threadsafe(self, fn, *args):
        fn(*args)

    def disconnect(self, session_ids, code, reason):
        self.disconnected.append((list(session_ids), code, reason))


class ConsoleSessionsTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.recorder = ProxyRecorder()
        self.rpc.serve(proxy_rpcapi.TOPIC, proxy_manager.ProxyManager(
            self.recorder, self.recorder), server='proxy-1')
        self.consoleauth_api = consoleauth_rpcapi.ConsoleAuthAPI()
        self.server_id = self.define()
        self.token = self.console_token()
        self.session_id = self.consoleauth_api.acquire_session(
            {}, self.token, 'proxy-1',
            remote_address='203.0.113.7:52814')['session_id']
        self.path = '/v2.1/servers/%s/serial-console/sessions' % \
            self.server_id

    def console_token(self):
        resp = self.request('POST', '/v2.1/servers/%s/remote-consoles'
                            % self.server_id, body=BODY, version='2.6')
        url = resp.json['remote_console']['url']
        return urllib.parse.parse_qs(
            urllib.parse.urlsplit(url).query)['token'][0]

    def sessions(self, token='member'):
        resp = self.request('GET', self.path, token=token)
        self.assertEqual(200, resp.status_int, resp.body)
        return resp.json['sessions']

    def token_is_live(self):
        try:
            self.consoleauth_api.check_token({}, self.token)
            return True
        except exception.InvalidToken:
            return False

    def wait_for_disconnect_order(self):
        deadline = time.monotonic() + 5
        while not self.recorder.disconnected and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.recorder.disconnected

    def test_project_sees_who_holds_its_console(self):
        session, = self.sessions(token='reader')
        started_at = session.pop('started_at')
        self.assertRegex(started_at, r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')
        self.assertEqual({'id': self.session_id,
                          'instance_uuid': self.server_id, 'index': 0,
                          'user_id': base.USER, 'project_id': base.PROJECT,
                          'remote_address': '203.0.113.7:52814',
                          'proxy_host': None, 'bytes_to_guest': 0,
                          'bytes_to_client': 0, 'transport': 'websocket',
                          'mode': 'write'}, session)

    def watched_by_a_colleague(self):
        """A spectator session of another user of the project."""
        console = self.consoleauth_api.check_token({}, self.token)
        token = self.consoleauth_api.authorize_console(
            {'user_id': 'colleague', 'project_id': base.PROJECT},
            self.server_id, console['compute_host'], console['host'],
            console['port'], modes=['view'])
        self.consoleauth_api.join_session(
            {}, token, 'proxy-2', remote_address='198.51.100.9:40000')

    def test_members_see_no_proxy_host_nor_other_users_addresses(self):
        self.watched_by_a_colleague()
        seen = {s['user_id']: (s['remote_address'], s['proxy_host'])
                for s in self.sessions(token='member')}
        self.assertEqual({base.USER: ('203.0.113.7:52814', None),
                          'colleague': (None, None)}, seen)

    def test_admins_see_every_address_and_proxy_host(self):
        self.watched_by_a_colleague()
        seen = {s['user_id']: (s['remote_address'], s['proxy_host'])
                for s in self.sessions(token='admin')}
        self.assertEqual({base.USER: ('203.0.113.7:52814', 'proxy-1'),
                          'colleague': ('198.51.100.9:40000', 'proxy-2')},
                         seen)

    def test_other_project_cannot_see_the_sessions(self):
        self.assertFault(self.request('GET', self.path, token='other'),
                         404, 'itemNotFound')

    def test_unknown_query_parameters_are_400(self):
        self.assertFault(self.request('GET', self.path + '?all=1'), 400,
                         'badRequest', 'all')

    def test_admin_disconnects_all_and_the_proxy_is_told(self):
        resp = self.request('DELETE', self.path, token='admin')
        self.assertEqual(204, resp.status_int, resp.body)
        self.assertEqual(b'', resp.body)
        self.assertEqual([], self.sessions())
        (ids, _code, reason), = self.wait_for_disconnect_order()
        self.assertEqual([self.session_id], ids)
        self.assertIn('operator', reason)
        # The ended session's URL is revoked: no Reconnect undoes it.
        self.assertFalse(self.token_is_live())

    def test_revoke_tokens_false_keeps_the_ended_sessions_url(self):
        resp = self.request('DELETE', self.path + '?revoke_tokens=false',
                            token='admin')
        self.assertEqual(204, resp.status_int, resp.body)
        self.assertEqual([], self.sessions())
        self.assertTrue(self.token_is_live())

    def test_default_revokes_only_the_ended_sessions_token(self):
        unused = self.console_token()
        resp = self.request('DELETE', '%s/%s' % (self.path, self.session_id),
                            token='admin')
        self.assertEqual(204, resp.status_int, resp.body)
        self.assertFalse(self.token_is_live())
        self.consoleauth_api.check_token({}, unused)

    def test_disconnect_all_without_sessions_is_still_204(self):
        self.request('DELETE', self.path, token='admin')
        self.assertEqual(204, self.request('DELETE', self.path,
                                           token='admin').status_int)

    def test_revoke_tokens_makes_earlier_urls_useless(self):
        resp = self.request('DELETE', self.path + '?revoke_tokens=true',
                            token='admin')
        self.assertEqual(204, resp.status_int, resp.body)
        self.assertFalse(self.token_is_live())

    def test_disconnect_one_session(self):
        resp = self.request('DELETE', '%s/%s' % (self.path, self.session_id),
                            token='admin')
        self.assertEqual(204, resp.status_int, resp.body)
        self.assertEqual([], self.sessions())

    def test_unknown_session_is_404(self):
        resp = self.request('DELETE', '%s/%s' % (self.path, uuid.uuid4()),
                            token='admin')
        self.assertFault(resp, 404, 'itemNotFound', 'could not be found')
        self.assertEqual(1, len(self.sessions()))

    def test_members_may_not_disconnect(self):
        self.assertFault(self.request('DELETE', self.path), 403,
                         'forbidden', 'console_sessions:delete')
        self.assertEqual(1, len(self.sessions()))

    def test_bad_revoke_tokens_value_is_400(self):
        for query in ('?revoke_tokens=maybe', '?revoke=true'):
            self.assertFault(self.request('DELETE', self.path + query,
                                          token='admin'),
                             400, 'badRequest')
        self.assertEqual(1, len(self.sessions()))
