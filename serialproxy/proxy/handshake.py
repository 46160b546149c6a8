"""The HTTP side of a console connection, without sockets.

Parses the client's request and decides, before any 101, whether it may
open a console: every refusal is a Refusal with an HTTP status and a short
reason that never names the token.
"""

import email.message
import re
import urllib.parse

from serialproxy.proxy.refusals import Refusal

MAX_REQUEST_BYTES = 16 * 1024
# Header lines of one request: what a browser sends is a score of them.
MAX_HEADER_LINES = 100
# Longer than any method this proxy (or HTTP) knows: a longer first word
# is not a method at all.
MAX_METHOD_BYTES = 16
# RFC 9110 section 5.6.2: a method is a token of these characters.
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_METHOD = re.compile(_TOKEN)
_REQUEST_LINE = re.compile(_TOKEN + rb" \S+ HTTP/1\.[0-9]")
# RFC 9110 section 5.1: a field name is a token; section 5.5: a field
# value holds no control character but HTAB (bytes 0x80-0xff are allowed
# as obs-text).
_FIELD_NAME = re.compile(_TOKEN.decode())
_FORBIDDEN_IN_VALUE = re.compile('[\x00-\x08\x0a-\x1f\x7f]')
TOKEN_COOKIE = 'token'
# RFC 7230's token: what a subprotocol name is made of.
_HTTP_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

_REASONS = {200: 'OK', 400: 'Bad Request', 401: 'Unauthorized',
            403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
            409: 'Conflict', 426: 'Upgrade Required',
            429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
            500: 'Internal Server Error',
            501: 'Not Implemented', 503: 'Service Unavailable'}


class Request:
    def __init__(self, method, target, headers):
        self.method = method
        self.target = target
        # email.message.Message: case-insensitive get(), which is also what
        # websockify's WebSocket.accept() expects of its headers argument.
        self.headers = headers
        parts = urllib.parse.urlsplit(target)
        self.path = parts.path
        self.query = urllib.parse.parse_qs(parts.query)

    @property
    def is_websocket(self):
        return self.headers.get('Upgrade', '').lower() == 'websocket'

    @property
    def token(self):
        """The console token: ?token= first, else the token cookie.

        As Nova's proxy reads it: noVNC before 1.1, and the clients that
        copied it, send GET /websockify with a token cookie instead. An
        empty ?token= counts as none.
        """
        values = self.query.get('token')
        if values and values[0]:
            return values[0]
        return cookie_value(self.headers, TOKEN_COOKIE)


def parse_request(data):
    """(Request, bytes consumed) once complete, None before, or Refusal."""
    end = data.find(b'\r\n\r\n')
    if end < 0:
        _check_start(data)
        if len(data) > MAX_REQUEST_BYTES:
            raise Refusal(431, 'Request headers too large')
        return None
    if end > MAX_REQUEST_BYTES:
        raise Refusal(431, 'Request headers too large')
    try:
        lines = data[:end].decode('latin-1').split('\r\n')
        method, target, version = lines[0].split(' ')
    except ValueError:
        raise Refusal(400, 'Malformed request line')
    if not version.startswith('HTTP/1.'):
        raise Refusal(400, 'Unsupported HTTP version')
    if _FORBIDDEN_IN_VALUE.search(lines[0]):
        raise Refusal(400, 'Control character in the request line')
    if len(lines) - 1 > MAX_HEADER_LINES:
        raise Refusal(431, 'More than %d header lines' % MAX_HEADER_LINES)
    headers = email.message.Message()
    for line in lines[1:]:
        name, sep, value = line.partition(':')
        if not sep or not _FIELD_NAME.fullmatch(name):
            raise Refusal(400, 'Malformed header line')
        if _FORBIDDEN_IN_VALUE.search(value):
            # A CR, LF or NUL inside a line smuggles in a line of its own.
            raise Refusal(400, 'Control character in a header line')
        headers[name] = value.strip(' \t')
    try:
        request = Request(method, target, headers)
    except ValueError:
        # urlsplit: a target such as "//[" or "http://[/".
        raise Refusal(400, 'Malformed request target')
    return request, end + 4


def _check_start(data):
    """Refuse at once what cannot become an HTTP request.

    Bytes that are not HTTP (a stray client, a port scanner, a protocol
    spoken to the wrong port) would otherwise wait for the request
    timeout; their first word or first line already tells.
    """
    if b'\n\n' in data:
        raise Refusal(400, 'Header lines must end with CRLF')
    first_line_end = data.find(b'\n')
    if first_line_end >= 0:
        if not _REQUEST_LINE.fullmatch(data[:first_line_end].rstrip(b'\r')):
            raise Refusal(400, 'Malformed request line')
        return
    space = data.find(b' ')
    method = data[:space] if space >= 0 else data[:MAX_METHOD_BYTES + 1]
    if (space < 0 and len(method) > MAX_METHOD_BYTES) or \
            (method and not _METHOD.fullmatch(method)) or space == 0:
        raise Refusal(400, 'Not an HTTP request')


def cookie_value(headers, name):
    """The value of the cookie called name, or None.

    A Cookie header is "name=value" pairs joined by "; " (RFC 6265
    section 4.2.1); a value may be wrapped in double quotes, which are not
    part of it. Pairs without "=" or with an empty value are skipped.
    Several Cookie lines (as HTTP/2 gateways may send) make one list. When
    the name repeats, the first wins: browsers put the cookie of the most
    specific path first.
    """
    for line in headers.get_all('Cookie') or ():
        for pair in line.split(';'):
            key, sep, value = pair.partition('=')
            if not sep or key.strip(' \t') != name:
                continue
            value = value.strip(' \t')
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if value:
                return value
    return None


def check_path(request):
    """Reject what could be taken for a URL on another host."""
    # "//evil.example/" is read by some clients as a network-path reference:
    # the open-redirect class of bug (CVE-2015-8870's kin).
    if request.target.startswith('//') or request.path.startswith('//'):
        raise Refusal(400, 'Path must not start with //')
    if request.method not in ('GET', 'HEAD'):
        raise Refusal(405, 'Only GET is served here')


def check_origin(request, allowed_origins, tls, frame_ancestors=None,
                 forwarded_scheme=None):
    """Browsers must come from our own page or an allowed origin.

    Allowed: the proxy's own host or one of allowed_origins, on the
    connection's scheme (forwarded_scheme: the browser's, as a trusted
    proxy's X-Forwarded-Proto says, see forwarded.py); or a dashboard
    origin of frame_ancestors, as listed with its scheme and port (its
    page may open the console websocket itself).
    """
    origin = request.headers.get('Origin')
    if origin is None:
        return  # not a browser: Origin is a browser's promise, not others'
    if frame_ancestors is not None and \
            frame_ancestors.allows_origin(origin):
        return
    try:
        parsed = urllib.parse.urlsplit(origin)
    except ValueError:
        raise Refusal(403, 'Origin not allowed')
    host_header = request.headers.get('Host', '')
    try:
        own_host = urllib.parse.urlsplit('//' + host_header).hostname
    except ValueError:
        # "[" or "[::1": urlsplit's "Invalid IPv6 URL".
        raise Refusal(400, 'Malformed Host header')
    if not parsed.hostname or (parsed.hostname != own_host and
                               parsed.hostname not in allowed_origins):
        raise Refusal(403, 'Origin not allowed')
    expected = forwarded_scheme or ('https' if tls else 'http')
    scheme = {'ws': 'http', 'wss': 'https'}.get(parsed.scheme, parsed.scheme)
    if scheme != expected:
        raise Refusal(403, 'Origin scheme does not match the connection')


def check_websocket_headers(request):
    if request.headers.get('Sec-WebSocket-Key') is None:
        raise Refusal(400, 'Missing Sec-WebSocket-Key header')
    if request.headers.get('Sec-WebSocket-Version') != '13':
        raise Refusal(426, 'Only websocket version 13 is supported')
    # As websockify (and so Nova's proxy) does: "binary" when offered,
    # no subprotocol for a client that offers none, and a refusal for one
    # that offers only others, such as the old text mode "base64".
    offered = offered_subprotocols(request)
    if offered and 'binary' not in offered:
        raise Refusal(400, 'Only the "binary" subprotocol is served')


def offered_subprotocols(request):
    """The subprotocols the client offers, in its order.

    Sec-WebSocket-Protocol is a comma list of tokens (RFC 6455 section
    4.1, RFC 7230 section 7): spaces or tabs around the commas, empty
    elements ignored, and several header lines make one list.
    """
    offered = []
    for line in request.headers.get_all('Sec-WebSocket-Protocol') or ():
        for name in line.split(','):
            name = name.strip(' \t')
            if not name:
                continue
            if not _HTTP_TOKEN.match(name):
                raise Refusal(400, 'Malformed Sec-WebSocket-Protocol header')
            offered.append(name)
    return offered


def response(status, reason='', headers=(), body=None):
    """Bytes of a complete HTTP/1.1 response that closes the connection."""
    if body is None:
        body = (reason + '\n').encode('utf-8') if reason else b''
        headers = list(headers) + [('Content-Type',
                                    'text/plain; charset=utf-8')]
    return response_head(status, headers, len(body)) + body


def response_head(status, headers, content_length):
    """Status line and headers of a response whose body of
    content_length bytes follows, and which closes the connection."""
    lines = ['HTTP/1.1 %d %s' % (status, _REASONS.get(status, 'Error'))]
    lines += ['%s: %s' % header for header in headers]
    lines += ['Content-Length: %d' % content_length, 'Connection: close',
              'Cache-Control: no-store', '', '']
    return '\r\n'.join(lines).encode('latin-1')
