"""Bad requests get a clear 4xx in Nova's fault shape, never a 500."""

from serialproxy.api import wsgi
from tests.unit.api import base

BODY = {'remote_console': {'protocol': 'serial', 'type': 'serial'}}


class BadInputTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.server_id = self.define()
        self.consoles = '/v2.1/servers/%s/remote-consoles' % self.server_id
        self.action = '/v2.1/servers/%s/action' % self.server_id

    def post(self, path, **kwargs):
        kwargs.setdefault('version', '2.6')
        return self.request('POST', path, **kwargs)

    def test_malformed_json_is_400(self):
        for raw in (b'{', b'{"remote_console": }', b'\xff\xfe',
                    b'[' * 60000):  # deeper than the parser recurses
            self.assertFault(self.post(self.consoles, raw=raw), 400,
                             'badRequest')

    def test_wrong_shapes_and_types_are_400_naming_the_field(self):
        cases = [
            ([], 'the body'),
            ({'remote_console': 'serial'}, 'remote_console'),
            ({'remote_console': {'protocol': 1, 'type': 'serial'}},
             'remote_console/protocol'),
            ({'remote_console': {'protocol': 'serial', 'type': None}},
             'remote_console/type'),
            ({'remote_console': {}, 'extra': True}, 'extra'),
        ]
        for body, field in cases:
            self.assertFault(self.post(self.consoles, body=body), 400,
                             'badRequest', field)

    def test_empty_body_is_400(self):
        self.assertFault(self.post(self.consoles, raw=b''), 400,
                         'badRequest')

    def test_huge_body_is_413_without_reading_it_all(self):
        raw = b'{"x": "' + b'a' * (wsgi.MAX_BODY_BYTES + 1) + b'"}'
        self.assertFault(self.post(self.consoles, raw=raw), 413,
                         'overLimit')

    def test_non_json_content_type_is_415(self):
        resp = self.post(self.consoles, raw=b'protocol=serial',
                         headers={'Content-Type':
                                  'application/x-www-form-urlencoded'})
        self.assertFault(resp, 415, 'badMediaType')

    def test_unknown_and_malformed_actions_are_400(self):
        self.assertFault(self.post(self.action, body={'reboot': {}},
                                   version='2.1'),
                         400, 'badRequest', 'no such action: reboot')
        self.assertFault(self.post(self.action, body={'a': {}, 'b': {}},
                                   version='2.1'),
                         400, 'badRequest', 'one key')
        self.assertFault(self.post(self.action, body='x', version='2.1'),
                         400, 'badRequest')

    def test_unknown_microversion_is_406_and_garbage_400(self):
        self.assertFault(self.post(self.consoles, body=BODY, version='2.99'),
                         406, 'computeFault')
        self.assertFault(self.post(self.consoles, body=BODY,
                                   version='x' * 1000),
                         400, 'badRequest')

    def test_missing_auth_is_401(self):
        resp = self.post(self.consoles, body=BODY, token=None)
        self.assertEqual(401, resp.status_int)


class UndecodableRequestTest(base.APITestCase):
    """A path or query string that is not UTF-8 once percent-decoded
    (found by the API fuzzing at 20,000 examples: webob raised reading
    it, a 500 and a traceback)."""

    def setUp(self):
        super().setUp()
        self.server = '/v2.1/servers/%s' % self.define()

    def test_a_path_that_is_not_utf8_is_400_with_a_reason(self):
        for path in ('/%80', '/v2.1/%ff', self.server + '/%80',
                     self.server + '/remote-consoles%c3'):
            for method in ('GET', 'POST', 'DELETE'):
                resp = self.request(method, path, version='2.31')
                self.assertFault(resp, 400, 'badRequest', 'UTF-8')

    def test_a_query_that_is_not_utf8_is_400_with_a_reason(self):
        for query in ('%80', 'a=%ff', 'limit=1&x=%c3%28'):
            resp = self.request(
                'GET', '%s/serial-console/sessions?%s' % (self.server, query),
                version='2.31')
            self.assertFault(resp, 400, 'badRequest', 'UTF-8')

    def test_utf8_escapes_still_reach_the_routes(self):
        # An escaped é is a path like any other: 404, not 400.
        resp = self.request('GET', self.server + '/%C3%A9', version='2.31')
        self.assertEqual(404, resp.status_int, resp.body)
        resp = self.request('GET', '/v2.1/?q=%C3%A9')
        self.assertEqual(200, resp.status_int, resp.body)
