"""The api-paste.ini pipelines: Keystone, noauth, request ids, health,
CORS, and unknown routes."""

import os

from serialproxy.api import pipeline
from serialproxy import exception
from tests.unit.api import base
from tests.unit import base as unit_base


class KeystonePipelineTest(base.APITestCase):
    def test_missing_token_is_401_with_where_to_authenticate(self):
        resp = self.request('GET', '/v2.1/servers', token=None)
        self.assertEqual(401, resp.status_int)
        self.assertIn('keystone.example',
                      resp.headers['WWW-Authenticate'])

    def test_invalid_token_is_401_and_not_echoed(self):
        resp = self.request('GET', '/v2.1/servers',
                            token='secret-but-wrong-token')
        self.assertEqual(401, resp.status_int)
        self.assertNotIn(b'secret-but-wrong-token', resp.body)

    def test_every_response_carries_a_request_id(self):
        for token in ('member', None):
            resp = self.request('GET', '/v2.1/servers', token=token)
            request_id = resp.headers['x-openstack-request-id']
            self.assertTrue(request_id.startswith('req-'))
            self.assertEqual(request_id,
                             resp.headers['x-compute-request-id'])

    def test_healthcheck_needs_no_token(self):
        resp = self.request('GET', '/healthcheck', token=None)
        self.assertEqual(200, resp.status_int)
        self.assertEqual(b'OK', resp.body)

    def allow_origin(self, origin):
        # CORS reads its options when the pipeline is built.
        self.flags(group='cors', allowed_origin=[origin])
        self.app = pipeline.load_app()

    def test_cors_preflight_is_answered_for_an_allowed_origin(self):
        self.allow_origin('https://dash.example')
        resp = self.request('OPTIONS', '/v2.1/servers', token=None, headers={
            'Origin': 'https://dash.example',
            'Access-Control-Request-Method': 'GET',
            'Access-Control-Request-Headers': 'OpenStack-API-Version'})
        self.assertEqual('https://dash.example',
                         resp.headers['Access-Control-Allow-Origin'])
        self.assertIn('OpenStack-API-Version',
                      resp.headers['Access-Control-Allow-Headers'])

    def test_cors_headers_are_absent_for_other_origins(self):
        self.allow_origin('https://dash.example')
        resp = self.request('GET', '/v2.1/servers', headers={
            'Origin': 'https://evil.example'})
        self.assertNotIn('Access-Control-Allow-Origin', resp.headers)

    def test_unknown_routes_are_404(self):
        for path in ('/v2.1/nothing', '/v2.1/servers/x/y/z', '/v3/servers'):
            self.assertFault(self.request('GET', path), 404, 'itemNotFound')


class NoAuthPipelineTest(base.APITestCase):
    auth_strategy = 'noauth'

    def test_no_token_is_the_admin(self):
        server_id = self.define(project=base.OTHER_PROJECT)
        resp = self.request('GET', '/v2.1/servers/%s' % server_id,
                            token=None)
        self.assertEqual(200, resp.status_int)

    def test_token_names_user_and_project_without_admin_rights(self):
        mine = self.define()
        theirs = self.define(project=base.OTHER_PROJECT)
        token = '%s:%s' % (base.USER, base.PROJECT)
        self.assertEqual(200, self.request(
            'GET', '/v2.1/servers/%s' % mine, token=token).status_int)
        self.assertFault(self.request(
            'GET', '/v2.1/servers/%s' % theirs, token=token), 404,
            'itemNotFound')
        self.assertFault(self.request(
            'GET', '/v2.1/servers?all_tenants=1', token=token), 403,
            'forbidden')


class PasteConfigPathTest(unit_base.TestCase):
    def test_configured_absolute_path_is_used(self):
        path = os.path.join(self.state_path, 'my-paste.ini')
        open(path, 'w').close()
        self.flags(group='api', api_paste_config=path)
        self.assertEqual(path, pipeline.paste_config_path())

    def test_missing_file_is_a_clear_error(self):
        self.flags(group='api', api_paste_config='/nonexistent/paste.ini')
        exc = self.assertRaises(exception.SerialProxyException,
                                pipeline.paste_config_path)
        self.assertIn('api_paste_config', str(exc))

    def test_default_finds_the_shipped_file(self):
        path = pipeline.paste_config_path()
        with open(path) as f:
            self.assertIn('[composite:serialproxy-api]', f.read())
