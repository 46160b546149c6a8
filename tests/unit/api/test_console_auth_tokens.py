"""GET /os-console-auth-tokens/{token}: operators look a token up."""

import urllib.parse

import fixtures

from tests.unit.api import base

BODY = {'remote_console': {'protocol': 'serial', 'type': 'serial'}}


class ConsoleAuthTokensTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level='DEBUG'))
        self.server_id = self.define()
        resp = self.request('POST', '/v2.1/servers/%s/remote-consoles'
                            % self.server_id, body=BODY, version='2.6')
        url = resp.json['remote_console']['url']
        self.token = urllib.parse.parse_qs(
            urllib.parse.urlsplit(url).query)['token'][0]

    def show(self, token, version='2.31', who='admin'):
        return self.request('GET', '/v2.1/os-console-auth-tokens/%s' % token,
                            token=who, version=version)

    def test_admin_sees_what_a_serial_token_opens_from_2_31(self):
        resp = self.show(self.token)
        self.assertEqual(200, resp.status_int, resp.body)
        self.assertEqual({'console': {'instance_uuid': self.server_id,
                                      'host': '127.0.0.1', 'port': 10077,
                                      'internal_access_path': None}},
                         resp.json)

    def test_before_2_31_serial_tokens_are_not_described(self):
        self.assertFault(self.show(self.token, version='2.30'), 401,
                         'unauthorized', 'not accessible')

    def test_unknown_token_is_404_without_echoing_it(self):
        resp = self.show('not-a-real-token-value')
        self.assertFault(resp, 404, 'itemNotFound', 'Token not found')
        self.assertNotIn(b'not-a-real-token-value', resp.body)

    def test_members_are_forbidden(self):
        resp = self.show(self.token, who='member')
        self.assertFault(resp, 403, 'forbidden')
        self.assertNotIn(self.token.encode(), resp.body)

    def test_the_token_never_reaches_the_log(self):
        self.show(self.token)
        self.show(self.token, who='member')
        self.show(self.token + 'x')
        self.assertNotIn(self.token, self.log.output)
