import json
import os
import re

from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy.page import frame_ancestors
from serialproxy.proxy import handshake
from serialproxy.proxy.page import static_files
from serialproxy import sysrq
from tests.unit import base


def get(target, method='GET'):
    raw = ('%s %s HTTP/1.1\r\nHost: h\r\n\r\n' % (method, target)).encode()
    return handshake.parse_request(raw)[0]


class StaticFilesTest(base.TestCase):
    def setUp(self):
        super().setUp()
        root = os.path.join(self.state_path, 'static')
        os.makedirs(os.path.join(root, 'js'))
        with open(os.path.join(root, 'index.html'), 'w') as f:
            f.write('<p>page</p>')
        with open(os.path.join(root, 'js', 'app.js'), 'w') as f:
            f.write('let x = 1;')
        with open(os.path.join(self.state_path, 'secret.txt'), 'w') as f:
            f.write('secret')
        self.static = static_files.StaticFiles(root)

    def test_root_with_token_serves_the_page(self):
        raw = self.static.response(get('/?token=abc'))
        self.assertTrue(raw.startswith(b'HTTP/1.1 200 OK'))
        self.assertIn(b'Content-Type: text/html; charset=utf-8', raw)
        self.assertTrue(raw.endswith(b'<p>page</p>'))

    def test_assets_get_their_content_type(self):
        raw = self.static.response(get('/js/app.js'))
        self.assertIn(b'javascript', raw.split(b'\r\n\r\n')[0])

    def test_close_codes_script_is_rendered_from_the_close_codes(self):
        raw = self.static.response(get('/close-codes.js'))
        head, body = raw.split(b'\r\n\r\n', 1)
        self.assertIn(b'javascript', head)
        table = json.loads(body.decode().split(' = ', 1)[1].rstrip(';\n'))
        self.assertEqual(sorted(int(code) for code in CloseCode),
                         sorted(int(code) for code in table))
        self.assertEqual(['operator', 'Disconnected by an operator'],
                         table[str(int(CloseCode.OPERATOR_DISCONNECT))])

    def test_sysrq_keys_script_lists_the_kernels_keys(self):
        raw = self.static.response(get('/sysrq-keys.js'))
        head, body = raw.split(b'\r\n\r\n', 1)
        self.assertIn(b'javascript', head)
        keys = json.loads(body.decode().split(' = ', 1)[1].rstrip(';\n'))
        self.assertEqual(sorted(sysrq.KEYS), sorted(k['key'] for k in keys))
        self.assertEqual('h', keys[0]['key'])
        self.assertEqual(sorted(sysrq.DESTRUCTIVE),
                         sorted(k['key'] for k in keys if k['confirm']))

    def test_directories_are_not_listed(self):
        self.assertTrue(self.static.response(get('/js/')).startswith(
            b'HTTP/1.1 404'))

    def test_nothing_outside_the_root_is_reachable(self):
        for target in ('/../secret.txt', '/js/../../secret.txt',
                       '/%2e%2e/secret.txt', '/..%2fsecret.txt'):
            self.assertTrue(self.static.response(get(target)).startswith(
                b'HTTP/1.1 404'), target)

    def test_paths_no_file_can_have_are_404(self):
        # A NUL, invalid UTF-8, a name longer than any file system takes.
        for target in ('/%00', '/vendor/%00', '/js/%00.js',
                       '/%ff%fe', '/%ed%a0%80', '/' + 'a' * 5000,
                       '/js/' + 'a/' * 3000 + 'x', '/vendor/%ff'):
            self.assertTrue(self.static.response(get(target)).startswith(
                b'HTTP/1.1 404'), target[:40])

    def test_page_may_be_framed_by_itself_only_by_default(self):
        head = self.static.response(get('/?token=abc')).split(b'\r\n\r\n')[0]
        csp, = [line for line in head.split(b'\r\n')
                if line.startswith(b'Content-Security-Policy: ')]
        self.assertTrue(csp.endswith(b"; frame-ancestors 'self'"), csp)
        self.assertIn(b"default-src 'self'", csp)

    def test_listed_dashboards_are_the_frame_ancestors_of_every_file(self):
        ancestors = frame_ancestors.FrameAncestors.parse(
            ["'self'", 'https://horizon.example',
             'https://*.cloud.example:8443'])
        static = static_files.StaticFiles(self.static.root,
                                          frame_ancestors=ancestors)
        for target in ('/', '/js/app.js', '/close-codes.js'):
            self.assertIn(
                b"; frame-ancestors 'self' https://horizon.example "
                b"https://*.cloud.example:8443\r\n",
                static.response(get(target)), target)

    def test_head_has_no_body(self):
        raw = self.static.response(get('/', method='HEAD'))
        self.assertTrue(raw.endswith(b'\r\n\r\n'))
        self.assertIn(b'Content-Length: 11', raw)


class VendorFilesTest(base.TestCase):
    """xterm.js and its addon come from the npm packages, a listed few."""

    def setUp(self):
        super().setUp()
        self.vendor = os.path.join(self.state_path, 'node_modules')
        for name in static_files.VENDOR_FILES.values():
            path = os.path.join(self.vendor, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write('/* %s */' % name)
        with open(os.path.join(self.vendor, '@xterm', 'xterm',
                               'package.json'), 'w') as f:
            f.write('{}')
        self.static = static_files.StaticFiles(vendor_root=self.vendor)

    def test_listed_files_are_served_with_their_types(self):
        raw = self.static.response(get('/vendor/xterm.js'))
        self.assertTrue(raw.startswith(b'HTTP/1.1 200 OK'))
        self.assertTrue(raw.endswith(b'/* @xterm/xterm/lib/xterm.js */'))
        self.assertIn(b'javascript', raw.split(b'\r\n\r\n')[0])
        raw = self.static.response(get('/vendor/xterm.css'))
        self.assertIn(b'Content-Type: text/css', raw)

    def test_nothing_else_of_node_modules_is_reachable(self):
        for target in ('/vendor/', '/vendor/package.json',
                       '/vendor/@xterm/xterm/package.json',
                       '/vendor/../node_modules/@xterm/xterm/package.json',
                       '/node_modules/@xterm/xterm/lib/xterm.js',
                       '/vendor/xterm.js.map'):
            self.assertTrue(self.static.response(get(target)).startswith(
                b'HTTP/1.1 404'), target)

    def test_missing_packages_are_reported_and_answered_404(self):
        os.remove(os.path.join(self.vendor, '@xterm', 'addon-fit', 'lib',
                               'addon-fit.js'))
        self.assertEqual(
            [os.path.join(os.path.realpath(self.vendor),
                          '@xterm/addon-fit/lib/addon-fit.js')],
            self.static.missing_vendor_files())
        self.assertTrue(self.static.response(
            get('/vendor/addon-fit.js')).startswith(b'HTTP/1.1 404'))


class ConsolePageTest(base.TestCase):
    """The real page loads only what the proxy really serves."""

    def test_every_asset_of_the_page_is_served(self):
        static = static_files.StaticFiles()
        with open(os.path.join(static_files.STATIC_ROOT, 'index.html')) as f:
            page = f.read()
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        self.assertIn('vendor/xterm.js', assets)
        for asset in assets:
            if asset.startswith('data:'):
                continue
            # Relative: the page works behind a path prefix.
            self.assertFalse(asset.startswith('/') or '//' in asset, asset)
            if '/' + asset in static_files.GENERATED_SCRIPTS:
                continue
            self.assertIsNotNone(static.resolve('/' + asset),
                                 '%s is not served (npm ci not run?)' % asset)
