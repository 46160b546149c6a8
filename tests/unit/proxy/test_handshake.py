from serialproxy.proxy.page import frame_ancestors
from serialproxy.proxy import handshake
from tests.unit import base


def request(target='/?token=t', headers=None, method='GET', lines=()):
    """headers: a dict; lines: (name, value) pairs, repeats allowed."""
    lines = ['%s %s HTTP/1.1' % (method, target),
             'Host: proxy.example:6083'] + ['%s: %s' % h for h in lines]
    lines += ['%s: %s' % h for h in (headers or {}).items()]
    raw = ('\r\n'.join(lines) + '\r\n\r\n').encode()
    parsed, consumed = handshake.parse_request(raw)
    assert consumed == len(raw)
    return parsed


class ParseRequestTest(base.TestCase):
    def test_incomplete_request_waits(self):
        self.assertIsNone(handshake.parse_request(b'GET / HTTP/1.1\r\nHo'))

    def test_headers_are_case_insensitive_and_token_parsed(self):
        req = request('/?token=abc&x=1', {'upgrade': 'WebSocket'})
        self.assertTrue(req.is_websocket)
        self.assertEqual('abc', req.token)
        self.assertEqual('/', req.path)

    def test_bytes_after_the_headers_are_left_for_the_websocket(self):
        raw = b'GET / HTTP/1.1\r\nHost: h\r\n\r\n\x82\x80'
        _, consumed = handshake.parse_request(raw)
        self.assertEqual(b'\x82\x80', raw[consumed:])

    def test_oversized_headers_are_refused(self):
        raw = b'GET / HTTP/1.1\r\nX: ' + b'a' * handshake.MAX_REQUEST_BYTES
        exc = self.assertRaises(handshake.Refusal,
                                handshake.parse_request, raw)
        self.assertEqual(431, exc.status)

    def test_garbage_is_a_bad_request(self):
        for raw in (b'HELLO\r\n\r\n', b'GET / SPDY/3\r\n\r\n',
                    b'GET / HTTP/1.1\r\nno colon here\r\n\r\n'):
            exc = self.assertRaises(handshake.Refusal,
                                    handshake.parse_request, raw)
            self.assertEqual(400, exc.status)

    def test_a_target_urlsplit_cannot_read_is_a_bad_request(self):
        # "Invalid IPv6 URL" escaped as a ValueError, a traceback.
        for target in (b'//[', b'http://[/', b'//[::1/?token=t'):
            exc = self.assertRaises(
                handshake.Refusal, handshake.parse_request,
                b'GET %s HTTP/1.1\r\nHost: h\r\n\r\n' % target)
            self.assertEqual((400, 'Malformed request target'),
                             (exc.status, exc.reason))

    def test_control_characters_inside_lines_are_refused(self):
        # RFC 9110 section 5.5: a bare CR or LF, a NUL or another CTL
        # inside a field would smuggle a line in; HTAB and bytes past
        # 0x7f (obs-text) are allowed.
        for raw in (b'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n',
                    b'GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n',
                    b'GET / HTTP/1.1\r\nX: a\x00\r\n\r\n',
                    b'GET / HTTP/1.1\r\nX\x01: a\r\n\r\n',
                    b'GET /\x00 HTTP/1.1\r\n\r\n',
                    b'GET / HTTP/1.1\r\nX\xe9: a\r\n\r\n',
                    b'GET / HTTP/1.1\r\nX : a\r\n\r\n'):
            exc = self.assertRaises(handshake.Refusal,
                                    handshake.parse_request, raw)
            self.assertEqual(400, exc.status, raw)
        request, _ = handshake.parse_request(
            b'GET / HTTP/1.1\r\nX: \tcaf\xe9\t\r\n\r\n')
        self.assertEqual('caf\xe9', request.headers['X'])

    def test_too_many_header_lines_are_refused(self):
        lines = b'X: y\r\n' * (handshake.MAX_HEADER_LINES + 1)
        exc = self.assertRaises(handshake.Refusal, handshake.parse_request,
                                b'GET / HTTP/1.1\r\n' + lines + b'\r\n')
        self.assertEqual(431, exc.status)
        self.assertIsNotNone(handshake.parse_request(
            b'GET / HTTP/1.1\r\n' + lines[4:] + b'\r\n'))

    def test_what_cannot_become_http_is_refused_before_it_ends(self):
        for raw in (b'\x00\x01\x02', b'SSH-2.0-OpenSSH_9.2p1 Debian\r\n',
                    b'ABCDEFGHIJKLMNOPQ', b' GET / HTTP/1.1', b'GE\xffT /',
                    b'\r\n', b'GET / HTTP/1.1\nHost: h\n\n',
                    b'GET /\r\n'):
            exc = self.assertRaises(handshake.Refusal,
                                    handshake.parse_request, raw)
            self.assertEqual(400, exc.status, raw)

    def test_the_start_of_a_request_waits_for_the_rest(self):
        for raw in (b'', b'G', b'GET', b'GET ', b'GET /?token=t',
                    b'GET / HTTP/1.1', b'GET / HTTP/1.1\r',
                    b'GET / HTTP/1.1\r\nHost: h\r\n',
                    bytearray(b'OPTIONS * HTTP/1.0\r\n')):
            self.assertIsNone(handshake.parse_request(raw), raw)


class TokenTest(base.TestCase):
    """?token= first, else the token cookie, as Nova's proxy reads it."""

    def test_token_cookie_on_any_path(self):
        for target in ('/websockify', '/', '/any/path?x=1'):
            req = request(target, {'Cookie': 'token=from-cookie'})
            self.assertEqual('from-cookie', req.token, target)

    def test_query_wins_over_cookie(self):
        req = request('/?token=from-query', {'Cookie': 'token=from-cookie'})
        self.assertEqual('from-query', req.token)

    def test_empty_query_token_falls_back_to_the_cookie(self):
        req = request('/?token=', {'Cookie': 'token=from-cookie'})
        self.assertEqual('from-cookie', req.token)

    def test_no_token_anywhere_is_none(self):
        for headers in ({}, {'Cookie': 'session=abc; tokens=x'},
                        {'Cookie': 'token='}, {'Cookie': 'token'},
                        {'Cookie': 'xtoken=a; token_b=c'}):
            self.assertIsNone(request('/websockify', headers).token,
                              headers)

    def test_cookie_header_forms_of_rfc_6265(self):
        cases = [
            ('a=1; token=t1; b=2', 't1'),
            ('a=1;token=t1', 't1'),
            ('  token = t1 ;a=1', 't1'),
            ('token="quoted-t1"', 'quoted-t1'),
            ('token=t1=with=equals', 't1=with=equals'),
            ('junk; token=; token=t2', 't2'),
            # Browsers list the cookie of the longest path first.
            ('token=specific; token=general', 'specific'),
        ]
        for header, expected in cases:
            self.assertEqual(expected,
                             request('/websockify',
                                     {'Cookie': header}).token, header)

    def test_several_cookie_lines_make_one_list(self):
        req = request('/websockify', lines=[('Cookie', 'a=1'),
                                            ('cookie', 'token=t3')])
        self.assertEqual('t3', req.token)


class SubprotocolTest(base.TestCase):
    def offered(self, *values):
        return handshake.offered_subprotocols(request(lines=[
            ('Sec-WebSocket-Protocol', value) for value in values]))

    def test_comma_lists_with_or_without_spaces(self):
        for value in ('binary,base64', 'binary, base64', 'binary ,\tbase64',
                      ' binary , base64 ', ',binary,,base64,'):
            self.assertEqual(['binary', 'base64'], self.offered(value),
                             value)

    def test_several_header_lines_make_one_list(self):
        self.assertEqual(['base64', 'chat', 'binary'],
                         self.offered('base64', 'chat, binary'))

    def test_no_offer_is_an_empty_list(self):
        self.assertEqual([], self.offered())
        self.assertEqual([], self.offered(''))
        self.assertEqual([], self.offered(' , '))

    def test_names_are_tokens_and_case_sensitive(self):
        self.assertEqual(['Binary'], self.offered('Binary'))
        for value in ('bin ary', '"binary"', 'binary;q=1', 'bin/ary'):
            exc = self.assertRaises(handshake.Refusal, self.offered, value)
            self.assertEqual((400, 'Malformed Sec-WebSocket-Protocol '
                                   'header'), (exc.status, exc.reason))


class ChecksTest(base.TestCase):
    def assertRefused(self, status, check, *args):
        exc = self.assertRaises(handshake.Refusal, check, *args)
        self.assertEqual(status, exc.status)
        return exc

    def test_double_slash_path_is_refused(self):
        self.assertRefused(400, handshake.check_path,
                           request('//evil.example/?token=t'))

    def test_other_methods_are_refused(self):
        self.assertRefused(405, handshake.check_path,
                           request(method='POST'))

    def test_missing_origin_is_a_non_browser_client(self):
        handshake.check_origin(request(), [], tls=False)

    def test_own_origin_is_allowed(self):
        handshake.check_origin(
            request(headers={'Origin': 'http://proxy.example:6083'}), [],
            tls=False)

    def test_foreign_origin_is_refused_unless_allowed(self):
        req = request(headers={'Origin': 'http://dashboard.example'})
        self.assertRefused(403, handshake.check_origin, req, [], False)
        handshake.check_origin(req, ['dashboard.example'], tls=False)

    def test_a_host_or_origin_urlsplit_cannot_read_is_refused(self):
        # Found by tox -e fuzz at 20,000 examples: Host "[" raised
        # urlsplit's ValueError out of the session.
        for host in ('[', '[::1', 'a[b'):
            req, _ = handshake.parse_request(
                ('GET /?token=t HTTP/1.1\r\nHost: %s\r\n'
                 'Origin: http://proxy.example\r\n\r\n' % host).encode())
            exc = self.assertRefused(400, handshake.check_origin, req, [],
                                     False)
            self.assertEqual('Malformed Host header', exc.reason)
        for origin in ('http://[', 'http://[::1', 'ws://[x/'):
            self.assertRefused(403, handshake.check_origin,
                               request(headers={'Origin': origin}), [],
                               False)

    def test_origin_scheme_must_match_the_connection(self):
        req = request(headers={'Origin': 'http://proxy.example:6083'})
        self.assertRefused(403, handshake.check_origin, req, [], True)
        forwarded = request(headers={'Origin': 'https://proxy.example'})
        handshake.check_origin(forwarded, [], tls=False,
                               forwarded_scheme='https')

    def test_forwarded_proto_header_alone_does_not_set_the_scheme(self):
        # Only a trusted proxy's X-Forwarded-Proto counts (forwarded.py),
        # handed over as forwarded_scheme.
        req = request(headers={'Origin': 'https://proxy.example',
                               'X-Forwarded-Proto': 'https'})
        self.assertRefused(403, handshake.check_origin, req, [], False)

    def test_websocket_version_and_key_are_required(self):
        self.assertRefused(400, handshake.check_websocket_headers,
                           request(headers={'Sec-WebSocket-Version': '13'}))
        self.assertRefused(426, handshake.check_websocket_headers,
                           request(headers={'Sec-WebSocket-Key': 'k',
                                            'Sec-WebSocket-Version': '8'}))

    def test_only_binary_subprotocol_is_served(self):
        ok = {'Sec-WebSocket-Key': 'k', 'Sec-WebSocket-Version': '13'}
        handshake.check_websocket_headers(request(headers=ok))
        handshake.check_websocket_headers(request(headers=dict(
            ok, **{'Sec-WebSocket-Protocol': 'base64, binary'})))
        handshake.check_websocket_headers(request(headers=ok, lines=[
            ('Sec-WebSocket-Protocol', 'base64'),
            ('Sec-WebSocket-Protocol', 'binary')]))
        for offer in ('base64', 'Binary', 'base64, chat'):
            exc = self.assertRefused(
                400, handshake.check_websocket_headers,
                request(headers=dict(
                    ok, **{'Sec-WebSocket-Protocol': offer})))
            self.assertEqual('Only the "binary" subprotocol is served',
                             exc.reason)

    def test_framing_dashboard_origin_is_allowed_as_listed(self):
        ancestors = frame_ancestors.FrameAncestors.parse(
            ["'self'", 'https://dashboard.example'])
        req = request(headers={'Origin': 'https://dashboard.example'})
        # Listed with its scheme: accepted on a plain connection too.
        handshake.check_origin(req, [], False, ancestors)
        self.assertRefused(403, handshake.check_origin, req, [], False)
        for origin in ('http://dashboard.example',
                       'https://dashboard.example:8443',
                       'https://evil.example'):
            self.assertRefused(403, handshake.check_origin,
                               request(headers={'Origin': origin}), [],
                               True, ancestors)


class ResponseTest(base.TestCase):
    def test_refusal_response_has_status_reason_and_closes(self):
        raw = handshake.response(409, 'Console in use since 12:00')
        head, body = raw.split(b'\r\n\r\n', 1)
        self.assertTrue(head.startswith(b'HTTP/1.1 409 Conflict\r\n'))
        self.assertIn(b'Connection: close', head)
        self.assertIn(b'Content-Length: %d' % len(body), head)
        self.assertEqual(b'Console in use since 12:00\n', body)
