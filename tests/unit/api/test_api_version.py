"""Version discovery and microversion negotiation, as Nova answers them."""

from serialproxy.api import api_version
from serialproxy import exception
from tests.unit import base as unit_base
from tests.unit.api import base


class VersionDiscoveryTest(base.APITestCase):
    def test_root_lists_v21_with_its_range_without_authentication(self):
        resp = self.request('GET', '/', token=None)
        self.assertEqual(200, resp.status_int)
        version, = resp.json['versions']
        self.assertEqual(('v2.1', 'CURRENT', '2.1', api_version.MAX_VERSION),
                         (version['id'], version['status'],
                          version['min_version'], version['version']))
        self.assertIn({'rel': 'self', 'href': 'http://localhost/v2.1/'},
                      version['links'])

    def test_v21_document_is_served_with_and_without_slash(self):
        for path in ('/v2.1', '/v2.1/'):
            resp = self.request('GET', path, token=None)
            self.assertEqual(200, resp.status_int, path)
            self.assertEqual('2.31', resp.json['version']['version'])


class NegotiationTest(base.APITestCase):
    def get(self, headers):
        return self.request('GET', '/v2.1/servers', headers=headers)

    def test_no_header_means_the_minimum(self):
        resp = self.get({})
        self.assertEqual('compute 2.1', resp.headers['OpenStack-API-Version'])
        self.assertEqual('2.1', resp.headers['X-OpenStack-Nova-API-Version'])
        self.assertIn('OpenStack-API-Version', resp.headers['Vary'])

    def test_new_header_wins_over_legacy_header(self):
        resp = self.get({'OpenStack-API-Version': 'compute 2.26',
                         'X-OpenStack-Nova-API-Version': '2.3'})
        self.assertEqual('compute 2.26',
                         resp.headers['OpenStack-API-Version'])

    def test_legacy_header_alone_is_honoured(self):
        resp = self.get({'X-OpenStack-Nova-API-Version': '2.19'})
        self.assertEqual('2.19', resp.headers['X-OpenStack-Nova-API-Version'])

    def test_other_services_versions_in_the_header_are_ignored(self):
        resp = self.get({'OpenStack-API-Version': 'volume 3.5, compute 2.9'})
        self.assertEqual('compute 2.9', resp.headers['OpenStack-API-Version'])

    def test_latest_is_the_maximum(self):
        resp = self.get({'OpenStack-API-Version': 'compute latest'})
        self.assertEqual('compute 2.31',
                         resp.headers['OpenStack-API-Version'])

    def test_versions_outside_the_range_are_406(self):
        for version in ('2.32', '3.0', '2.0', '1.1'):
            self.assertFault(self.get({'OpenStack-API-Version':
                                       'compute %s' % version}),
                             406, 'computeFault', 'maximum is 2.31')

    def test_malformed_versions_are_400(self):
        for version in ('compute 2', 'compute two.one', 'compute 2.1.1',
                        'compute', 'compute 02.1'):
            self.assertFault(self.get({'OpenStack-API-Version': version}),
                             400, 'badRequest', 'X.Y')


class APIVersionRequestTest(unit_base.TestCase):
    def test_comparison_is_numeric_not_lexical(self):
        self.assertGreater(api_version.APIVersionRequest('2.10'), '2.9')
        self.assertTrue(api_version.APIVersionRequest('2.6').matches(
            '2.6', '2.7'))
        self.assertFalse(api_version.APIVersionRequest('2.8').matches(
            '2.6', '2.7'))

    def test_long_garbage_is_not_echoed_in_full(self):
        exc = self.assertRaises(exception.InvalidAPIVersion,
                                api_version.APIVersionRequest, 'x' * 500)
        self.assertLess(len(exc.message), 120)
