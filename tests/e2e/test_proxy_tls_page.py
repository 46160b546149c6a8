"""The console page in Chromium over the proxy's own TLS.

serialproxy-proxy of two workers serves https and wss itself, with
[DEFAULT] cert and key a throwaway CA signed and ssl_only on: no front
terminates TLS for it. Chromium is not given the CA (a browser's trust
store is not the test's to change), so its context ignores certificate
errors; tests/functional/test_proxy_tls.py checks the chain with the CA.
"""

from tests.e2e import fixtures as e2e_fixtures
from tests.e2e import test_console_page
from tests.harness import fixtures as func_fixtures


class ProxyTLSPageTest(test_console_page.ConsolePageTestCase):
    separate_services = True

    @classmethod
    def setUpClass(cls):
        cls.ca = func_fixtures.TestCA()
        cls.ca.setUp()
        cls.world_config = {
            'DEFAULT': {'cert': cls.ca.cert, 'key': cls.ca.key,
                        'ssl_only': True},
            'console': {'workers': 2},
        }
        try:
            super().setUpClass()
        except Exception:
            cls.ca.cleanUp()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.ca.cleanUp()

    def test_page_over_https_opens_and_echoes(self):
        # Over https, Chromium opens the page's websocket as wss: plain
        # ws from a secure page is mixed content, and ssl_only refuses it.
        url = self.world.console_url().replace('ws://', 'wss://', 1)
        # Connected, and the guest's shell echoes what is typed.
        console, _ = self.open_connected('proxy-tls', url=url,
                                         ignore_https_errors=True)
        self.assertTrue(console.page.url.startswith('https://127.0.0.1:'),
                        console.page.url)

    def test_plain_http_page_is_refused_with_a_reason(self):
        context = self.world.browser.new_context()
        self.addCleanup(context.close)
        page = context.new_page()
        response = page.goto(e2e_fixtures.page_url(self.world.console_url()))
        self.assertEqual(400, response.status)
        self.assertIn('only speaks TLS', page.inner_text('body'))
