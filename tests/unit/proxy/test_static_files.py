import os

from serialproxy.proxy import handshake
from serialproxy.proxy import static_files
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

    def test_directories_are_not_listed(self):
        self.assertTrue(self.static.response(get('/js/')).startswith(
            b'HTTP/1.1 404'))

    def test_nothing_outside_the_root_is_reachable(self):
        for target in ('/../secret.txt', '/js/../../secret.txt',
                       '/%2e%2e/secret.txt', '/..%2fsecret.txt'):
            self.assertTrue(self.static.response(get(target)).startswith(
                b'HTTP/1.1 404'), target)

    def test_head_has_no_body(self):
        raw = self.static.response(get('/', method='HEAD'))
        self.assertTrue(raw.endswith(b'\r\n\r\n'))
        self.assertIn(b'Content-Length: 11', raw)
