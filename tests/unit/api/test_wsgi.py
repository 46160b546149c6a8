from serialproxy.api import wsgi
from tests.unit import base


class RedactPathTest(base.TestCase):
    def test_console_token_is_removed_from_paths_and_request_lines(self):
        self.assertEqual(
            '"GET /v2.1/os-console-auth-tokens/*** HTTP/1.1" 404 -',
            wsgi.redact_path('"GET /v2.1/os-console-auth-tokens/s3cr3t-Tok_'
                             'en HTTP/1.1" 404 -'))
        self.assertEqual('/v2.1/os-console-auth-tokens/***?x=1',
                         wsgi.redact_path(
                             '/v2.1/os-console-auth-tokens/abc?x=1'))

    def test_other_paths_are_unchanged(self):
        self.assertEqual('/v2.1/servers/abc/remote-consoles',
                         wsgi.redact_path('/v2.1/servers/abc/remote-consoles'))
