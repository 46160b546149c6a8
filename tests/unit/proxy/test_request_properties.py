"""The HTTP side of a connection under any input hypothesis can think of.

Any bytes, request lines, headers, query strings and cookies: the session
either waits for more (never past the request size limit), hands the
request on for authorization or the page, or refuses with a 4xx whose
body never repeats the token. No exception escapes, no 5xx.
"""

import re
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from serialproxy.proxy import handshake
from serialproxy.proxy import session as cs
from tests.unit import base
from tests.unit import hypothesis_profiles  # noqa: F401

SETTINGS = cs.Settings(allowed_origins=('dashboard.example',))
TOKEN = 'tok-5ecret-f00d'
ANSWERED = (cs.Authorize, cs.ServePage, cs.Refused)
# What the console URL's query means to the proxy (session.connect_mode,
# handshake.Request.token, seam.stream_request).
QUERY_THE_PROXY_READS = frozenset({'token', 'mode', 'resume', 'offsets'})

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff,
                                    blacklist_characters='\r\n'),
                      max_size=80)
header_names = st.sampled_from([
    'Host', 'Upgrade', 'Connection', 'Origin', 'Cookie',
    'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol',
    'X-Forwarded-Proto', 'X-Serialproxy-Check', 'Content-Length']) | \
    st.from_regex(r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}\Z")


def feed(data, pieces=1):
    session = cs.ConsoleSession(SETTINGS, clock=lambda: 0.0)
    step = max(1, len(data) // pieces)
    actions = []
    for start in range(0, len(data) or 1, step):
        actions += session.client_data(data[start:start + step])
        if any(isinstance(a, ANSWERED) for a in actions):
            break
    return session, actions


def refusals(actions):
    return [a.refusal for a in actions if isinstance(a, cs.Refused)]


def answer(actions):
    return b''.join(b''.join(a.chunks) for a in actions
                    if isinstance(a, cs.SendToClient))


class RequestPropertiesTest(base.TestCase):
    def check(self, data, pieces=1):
        session, actions = feed(data, pieces)
        for refusal in refusals(actions):
            self.assertTrue(400 <= refusal.status < 500, refusal.status)
            self.assertNotIn(TOKEN, refusal.reason)
        self.assertNotIn(TOKEN.encode(), answer(actions))
        if not any(isinstance(a, ANSWERED) for a in actions):
            # Still waiting: only a request that could yet be whole.
            self.assertLessEqual(len(data), handshake.MAX_REQUEST_BYTES + 3)
            self.assertIs(cs.State.REQUEST, session.state)
        return actions

    @given(st.binary(max_size=20000), st.integers(1, 8))
    def test_any_bytes(self, data, pieces):
        self.check(data, pieces)

    @given(st.sampled_from(['GET', 'HEAD', 'POST', 'get', 'OPTIONS']),
           st.text(max_size=200), st.lists(st.tuples(header_names,
                                                     header_text),
                                           max_size=12),
           st.integers(1, 4))
    def test_any_request_line_and_headers(self, method, target, headers,
                                          pieces):
        lines = ['%s %s HTTP/1.1' % (method, target or '/')]
        lines += ['%s: %s' % header for header in headers]
        data = ('\r\n'.join(lines) + '\r\n\r\n').encode('utf-8')
        self.check(data, pieces)

    # Query parameters other than these are the client's own business:
    # the proxy ignores them (these have tests of their own for bad
    # values: a 400 for an unknown mode is right, not a finding).
    @given(st.dictionaries(st.text(max_size=10).filter(
               lambda name: name not in QUERY_THE_PROXY_READS),
           st.text(max_size=40), max_size=5),
           st.text(max_size=120), st.booleans())
    def test_any_query_and_cookie_around_a_token(self, query, cookie,
                                                 websocket):
        query = dict(query, token=TOKEN)
        lines = ['GET /?%s HTTP/1.1' % urllib.parse.urlencode(query),
                 'Host: proxy.example',
                 # Without the control characters no header line may hold.
                 'Cookie: %s' % re.sub('[\x00-\x08\x0a-\x1f\x7f]', '',
                                       cookie)]
        if websocket:
            lines += ['Upgrade: websocket', 'Connection: Upgrade',
                      'Sec-WebSocket-Version: 13',
                      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']
        data = ('\r\n'.join(lines) + '\r\n\r\n').encode('utf-8')
        actions = self.check(data)
        authorize = [a for a in actions if isinstance(a, cs.Authorize)]
        if websocket:
            self.assertEqual(1, len(authorize), actions)
            self.assertEqual(TOKEN, authorize[0].request.token)
