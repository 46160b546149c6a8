from serialproxy.proxy.page import frame_ancestors
from tests.unit import base


def parse(*entries):
    return frame_ancestors.FrameAncestors.parse(list(entries))


class ParseTest(base.TestCase):
    def test_default_is_self_only(self):
        self.assertEqual("frame-ancestors 'self'",
                         frame_ancestors.FrameAncestors().directive)
        self.assertEqual("frame-ancestors 'self'", parse("'self'").directive)

    def test_origins_are_normalised_into_the_directive(self):
        ancestors = parse("'SELF'", 'HTTPS://Dash.Example.com/',
                          'https://*.example.org:8443', 'http://[::1]:*',
                          'http://127.0.0.1:8080')
        self.assertEqual(
            "frame-ancestors 'self' https://dash.example.com "
            "https://*.example.org:8443 http://[::1]:* "
            "http://127.0.0.1:8080", ancestors.directive)

    def test_none_or_nothing_lets_no_page_frame_it(self):
        self.assertEqual("frame-ancestors 'none'", parse("'none'").directive)
        self.assertEqual("frame-ancestors 'none'", parse().directive)

    def test_entries_a_browser_could_not_use_are_refused(self):
        for entries in (['*'], ['https:'], ['dash.example.com'],
                        ['https://dash.example.com/console'],
                        ['ftp://dash.example.com'],
                        ['https://dash.example.com:0'],
                        ['https://dash.example.com:70000'],
                        ["https://a.example; script-src *"],
                        ["'unsafe-inline'"], ["'none'", "'self'"],
                        ['https://a.example https://b.example']):
            exc = self.assertRaises(frame_ancestors.InvalidFrameAncestor,
                                    frame_ancestors.FrameAncestors.parse,
                                    entries)
            self.assertIn('frame_ancestors', str(exc))


class AllowsOriginTest(base.TestCase):
    def test_listed_origin_matches_by_scheme_host_and_port(self):
        ancestors = parse("'self'", 'https://dash.example.com',
                          'http://127.0.0.1:8080')
        for origin in ('https://dash.example.com',
                       'https://DASH.example.com:443',
                       'http://127.0.0.1:8080'):
            self.assertTrue(ancestors.allows_origin(origin), origin)
        for origin in ('http://dash.example.com',
                       'https://dash.example.com:8443',
                       'https://evil.dash.example.com',
                       'https://dash.example.com.evil.example',
                       'http://127.0.0.1:8081', 'http://127.0.0.1',
                       'null', '', 'https://dash.example.com:bad',
                       'file:///etc/passwd'):
            self.assertFalse(ancestors.allows_origin(origin), origin)

    def test_http_source_admits_its_https_form_as_browsers_do(self):
        ancestors = parse('http://dash.example.com')
        self.assertTrue(ancestors.allows_origin('https://dash.example.com'))
        self.assertFalse(parse('https://dash.example.com').allows_origin(
            'http://dash.example.com'))

    def test_wildcards_cover_subdomains_and_ports_only(self):
        ancestors = parse('https://*.example.com', 'https://dash.example:*')
        self.assertTrue(ancestors.allows_origin('https://a.example.com'))
        self.assertTrue(ancestors.allows_origin('https://a.b.example.com'))
        self.assertFalse(ancestors.allows_origin('https://example.com'))
        self.assertFalse(ancestors.allows_origin('https://badexample.com'))
        self.assertTrue(ancestors.allows_origin('https://dash.example:9'))

    def test_self_alone_allows_no_foreign_origin(self):
        self.assertFalse(parse("'self'").allows_origin(
            'https://dash.example.com'))
