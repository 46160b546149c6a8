"""Start-up warnings for settings that leave consoles exposed."""

import fixtures

from serialproxy import conf as sp_conf
from serialproxy import insecure_settings
from tests.unit import base


class InsecureSettingsTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(
            name=insecure_settings.__name__,
            format='%(levelname)s %(message)s'))
        # Safe settings; each test makes one unsafe.
        self.flags(group='api', auth_strategy='keystone', listen='127.0.0.1')
        self.flags(group='serial_console', serialproxy_host='127.0.0.1')
        self.flags(cert=None, ssl_only=False)

    def warnings(self, check, **kwargs):
        """The warnings this one check logs."""
        before = len(self.log.output)
        check(sp_conf.CONF, **kwargs)
        return [line for line in self.log.output[before:].splitlines()
                if line.startswith('WARNING ')]

    def test_safe_api_and_proxy_settings_log_no_warning(self):
        self.assertEqual([], self.warnings(insecure_settings.warn_api))
        self.assertEqual([], self.warnings(insecure_settings.warn_proxy))
        self.flags(group='api', listen='::1')
        self.flags(group='serial_console', serialproxy_host='0.0.0.0')
        self.flags(cert='/etc/serialproxy/proxy.pem', ssl_only=True)
        self.assertEqual([], self.warnings(insecure_settings.warn_api))
        self.assertEqual([], self.warnings(insecure_settings.warn_proxy))

    def test_noauth_is_a_warning(self):
        self.flags(group='api', auth_strategy='noauth')
        (warning,) = self.warnings(insecure_settings.warn_api)
        self.assertIn('auth_strategy = noauth', warning)

    def test_noauth_is_a_warning_under_uwsgi_too(self):
        self.flags(group='api', auth_strategy='noauth', listen='0.0.0.0')
        # Under uwsgi [api] listen is not where the API listens.
        (warning,) = self.warnings(insecure_settings.warn_api,
                                   listener=False)
        self.assertIn('auth_strategy = noauth', warning)

    def test_api_on_a_network_address_is_a_warning(self):
        for address in ('0.0.0.0', '::', '10.0.0.11', 'api.example.com'):
            self.flags(group='api', listen=address)
            (warning,) = self.warnings(insecure_settings.warn_api)
            self.assertIn('API listens on %s without TLS' % address,
                          warning)

    def test_proxy_on_a_network_address_without_cert_is_a_warning(self):
        self.flags(group='serial_console', serialproxy_host='0.0.0.0')
        (warning,) = self.warnings(insecure_settings.warn_proxy)
        self.assertIn('console proxy listens on 0.0.0.0 without TLS',
                      warning)

    def test_plain_websocket_beside_tls_is_a_warning(self):
        self.flags(cert='/etc/serialproxy/proxy.pem', ssl_only=False)
        (warning,) = self.warnings(insecure_settings.warn_proxy)
        self.assertIn('ssl_only', warning)
