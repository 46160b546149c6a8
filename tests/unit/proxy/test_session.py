"""The console session driven with bytes and events only: no sockets, no
sleeps. Time is a clock the test moves."""

import base64
import os
import struct
import time

import oslo_messaging as messaging

from serialproxy import exception
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy.console import Console
from serialproxy.proxy import forwarded
from serialproxy.proxy.page import frame_ancestors
from serialproxy.proxy import refusals
from serialproxy.proxy import session as cs
from serialproxy.proxy.session import Side
from tests.unit import base
from tests.unit.proxy.fakes import client_frame
from tests.unit.proxy.fakes import server_frames

LIMIT = 64 * 1024
TOKEN = 'secret-token-value'
CONSOLE = {'instance_uuid': 'i-1', 'console_type': 'serial',
           'compute_host': 'c-1', 'host': '127.0.0.1', 'port': 10000,
           'index': 0, 'expires_at': 2e9, 'session_id': 'session-1'}


def request(*extra, method='GET', target='/?token=' + TOKEN,
            upgrade=True):
    lines = ['%s %s HTTP/1.1' % (method, target), 'Host: proxy.example']
    if upgrade:
        lines += ['Upgrade: websocket', 'Connection: Upgrade',
                  'Sec-WebSocket-Version: 13',
                  'Sec-WebSocket-Key: ' +
                  base64.b64encode(os.urandom(16)).decode()]
    lines += list(extra)
    return ('\r\n'.join(lines) + '\r\n\r\n').encode()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def of_type(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def to_client(actions):
    return b''.join(b''.join(a.chunks) for a in
                    of_type(actions, cs.SendToClient))


def to_guest(actions):
    return [chunk for a in of_type(actions, cs.SendToGuest)
            for chunk in a.chunks]


def close_frame(actions):
    """(code, reason) of the close frame among what went to the client."""
    for opcode, payload in server_frames(to_client(actions)):
        if opcode == 0x8:
            return (struct.unpack('>H', payload[:2])[0],
                    payload[2:].decode())
    return None


def status_line(actions):
    return to_client(actions).split(b'\r\n', 1)[0].decode()


class SessionTestCase(base.TestCase):
    settings = cs.Settings(max_frame_bytes=LIMIT, idle_timeout=0,
                           allowed_origins=('dashboard.example',))

    def setUp(self):
        super().setUp()
        self.clock = Clock()
        self.session = cs.ConsoleSession(self.settings, clock=self.clock)

    def open(self, history=b''):
        actions = self.session.client_data(request())
        self.assertEqual([cs.PauseReading(Side.CLIENT)],
                         of_type(actions, cs.PauseReading))
        authorize, = of_type(actions, cs.Authorize)
        self.assertTrue(authorize.lease)
        self.assertEqual(TOKEN, authorize.request.token)
        self.assertEqual([], self.session.leased(Console.from_answer(CONSOLE)))
        return self.session.guest_connected(history)

    def send(self, data):
        return self.session.client_data(data)


class HandshakeTest(SessionTestCase):
    def test_upgrade_opens_with_101_history_then_resumes_reading(self):
        actions = self.open(history=b'login: ')
        reply = to_client(actions)
        self.assertTrue(reply.startswith(b'HTTP/1.1 101 '))
        body = reply[reply.index(b'\r\n\r\n') + 4:]
        self.assertEqual([(0x2, b'login: ')], server_frames(body))
        self.assertIn(cs.Started(), actions)
        self.assertIn(cs.ResumeReading(Side.CLIENT), actions)
        self.assertIs(cs.State.OPEN, self.session.state)

    def test_bytes_sent_with_the_request_reach_the_guest_after_open(self):
        actions = self.session.client_data(
            request() + client_frame(0x2, b'early'))
        self.assertEqual([], to_guest(actions))
        self.session.leased(Console.from_answer(CONSOLE))
        self.assertEqual([b'early'],
                         to_guest(self.session.guest_connected()))

    def test_request_in_single_bytes_is_understood(self):
        raw = request()
        for i in range(len(raw) - 1):
            self.assertEqual([], self.send(raw[i:i + 1]))
        self.assertTrue(of_type(self.send(raw[-1:]), cs.Authorize))

    def test_plain_get_is_served_the_page(self):
        actions = self.send(request(upgrade=False))
        page, = of_type(actions, cs.ServePage)
        self.assertEqual('/', page.request.path)
        self.assertEqual(cs.CloseClient(), actions[-1])

    def test_check_header_asks_without_a_lease_and_answers_200(self):
        actions = self.send(request('X-Serialproxy-Check: 1',
                                    upgrade=False))
        authorize, = of_type(actions, cs.Authorize)
        self.assertFalse(authorize.lease)
        self.assertEqual('HTTP/1.1 200 OK',
                         status_line(self.session.check_passed()))


class CompatibleClientsTest(SessionTestCase):
    """Clients written for Nova's proxy: noVNC's cookie, offer forms."""

    def authorized_token(self, raw):
        authorize, = of_type(self.send(raw), cs.Authorize)
        self.assertTrue(authorize.lease)
        return authorize.request.token

    def test_token_cookie_on_websockify_path_is_the_token(self):
        self.assertEqual(TOKEN, self.authorized_token(request(
            'Cookie: lang=en; token=' + TOKEN, target='/websockify')))

    def test_query_token_wins_over_the_cookie(self):
        self.assertEqual(TOKEN, self.authorized_token(request(
            'Cookie: token=bogus', target='/websockify?token=' + TOKEN)))

    def test_binary_base64_offer_opens_with_binary(self):
        self.send(request('Sec-WebSocket-Protocol: base64',
                          'Sec-WebSocket-Protocol: chat , binary'))
        self.session.leased(Console.from_answer(CONSOLE))
        reply = to_client(self.session.guest_connected())
        self.assertTrue(reply.startswith(b'HTTP/1.1 101 '), reply)
        self.assertIn(b'\r\nSec-WebSocket-Protocol: binary\r\n', reply)

    def test_framing_dashboard_opening_the_websocket_is_accepted(self):
        self.session = cs.ConsoleSession(cs.Settings(
            frame_ancestors=frame_ancestors.FrameAncestors.parse(
                ["'self'", 'http://horizon.example:8080'])),
            clock=self.clock)
        self.assertTrue(of_type(self.send(request(
            'Origin: http://horizon.example:8080')), cs.Authorize))


class ForwardedTest(SessionTestCase):
    """X-Forwarded-For and -Proto count from a trusted proxy only."""

    settings = cs.Settings(
        trusted_proxies=forwarded.TrustedProxies(['10.0.0.0/24']))

    def session_from(self, peer_host):
        return cs.ConsoleSession(self.settings, clock=self.clock,
                                 peer_host=peer_host)

    def test_trusted_proxy_names_the_client_and_its_scheme(self):
        self.session = self.session_from('10.0.0.5')
        actions = self.send(request('X-Forwarded-For: 198.51.100.7',
                                    'X-Forwarded-Proto: https',
                                    'Origin: https://proxy.example'))
        self.assertTrue(of_type(actions, cs.Authorize))
        self.assertEqual('198.51.100.7', self.session.client_host)

    def test_forwarded_headers_from_another_peer_are_ignored(self):
        self.session = self.session_from('192.0.2.9')
        actions = self.send(request('X-Forwarded-For: 198.51.100.7',
                                    'X-Forwarded-Proto: https',
                                    'Origin: https://proxy.example'))
        # The connection is plain HTTP whatever the header says.
        refused, = of_type(actions, cs.Refused)
        self.assertEqual(403, refused.refusal.status)
        self.assertEqual('192.0.2.9', self.session.client_host)

    def test_malformed_forwarded_for_from_a_trusted_proxy_is_400(self):
        self.session = self.session_from('10.0.0.5')
        refused, = of_type(self.send(request('X-Forwarded-For: junk')),
                           cs.Refused)
        self.assertEqual((400, 'Malformed X-Forwarded-For header'),
                         (refused.refusal.status, refused.refusal.reason))


class RefusalTest(SessionTestCase):
    def assertRefused(self, actions, status, kind):
        refused, = of_type(actions, cs.Refused)
        self.assertEqual((status, kind),
                         (refused.refusal.status, refused.refusal.kind))
        self.assertTrue(status_line(actions).startswith(
            'HTTP/1.1 %d ' % status))
        self.assertNotIn(TOKEN.encode(), to_client(actions))
        self.assertEqual(cs.CloseClient(), actions[-1])
        self.assertIs(cs.State.ANSWERED, self.session.state)
        return refused.refusal.reason

    def test_half_a_request_then_eof_is_answered_at_once(self):
        self.send(b'GET /?token=t HTTP/1.1\r\nHost: h\r\n')
        reason = self.assertRefused(self.session.client_eof(), 400,
                                    'bad_request')
        self.assertIn('Request incomplete', reason)

    def test_eof_before_any_byte_is_no_refusal(self):
        self.assertEqual([], self.session.client_eof())

    def test_malformed_requests_get_400_431_426_405_403(self):
        cases = [
            (b'GARBAGE\r\n\r\n', 400, 'bad_request'),
            (b'GET / HTTP/2.0\r\n\r\n', 400, 'bad_request'),
            (b'GET / HTTP/1.1\r\n bad\r\n\r\n', 400, 'bad_request'),
            (b'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n', 400, 'bad_request'),
            (b'GET / HTTP/1.1\r\nX: a\nInjected: b\r\n\r\n', 400,
             'bad_request'),
            (b'GET / HTTP/1.1\r\n' + b'X: y\r\n' * 101 + b'\r\n', 431,
             'bad_request'),
            (b'GET /?a=' + b'x' * 20000, 431, 'bad_request'),
            (request(target='//evil.example/'), 400, 'bad_request'),
            (request(method='POST'), 405, 'method'),
            (request('Origin: http://evil.example'), 403, 'origin'),
            (request('Origin: https://proxy.example'), 403, 'origin'),
            (request('Sec-WebSocket-Protocol: base64'), 400,
             'bad_request'),
            (request('Sec-WebSocket-Protocol: bin ary'), 400,
             'bad_request'),
            (request('Origin: http://horizon.example:8080'), 403,
             'origin'),
            (request().replace(b'Version: 13', b'Version: 8'), 426,
             'bad_request'),
        ]
        for raw, status, kind in cases:
            self.session = cs.ConsoleSession(self.settings,
                                             clock=self.clock)
            self.assertRefused(self.send(raw), status, kind)

    def test_allowed_dashboard_origin_is_accepted(self):
        actions = self.send(request('Origin: http://dashboard.example'))
        self.assertTrue(of_type(actions, cs.Authorize))

    def test_errors_of_authorization_map_to_statuses(self):
        cases = [
            (refusals.Refusal(401, 'Missing token'), 401, 'invalid_token'),
            (exception.InvalidToken(), 401, 'invalid_token'),
            (exception.ConsoleInUse(since='2026-11-30T08:00:00Z'), 409,
             'in_use'),
            (messaging.MessagingTimeout(), 503, 'unavailable'),
            (exception.HypervisorUnavailable(host='c-1'), 503,
             'unavailable'),
            (ConnectionRefusedError(), 503, 'unavailable'),
            (refusals.Refusal(429, 'Too many connections from this address'),
             429, 'rate_limited'),
            (RuntimeError('bug'), 500, 'internal'),
            (exception.ConsoleAccessDisabled(level='project'), 403,
             'access'),
        ]
        for error, status, kind in cases:
            self.session = cs.ConsoleSession(self.settings,
                                             clock=self.clock)
            self.send(request())
            reason = self.assertRefused(self.session.refused(
                refusals.from_error(error)), status, kind)
            self.assertNotIn('bug', reason)

    def test_access_turned_off_says_at_which_level(self):
        self.send(request())
        actions = self.session.refused(refusals.from_error(
            exception.ConsoleAccessDisabled(level='server')))
        self.assertIn(b'Serial console access is turned off for this '
                      b'server', to_client(actions))

    def test_in_use_says_since_when(self):
        self.send(request())
        actions = self.session.refused(refusals.from_error(
            exception.ConsoleInUse(since='2026-11-30T08:00:00Z')))
        self.assertIn(b'Console in use since 2026-11-30T08:00:00Z',
                      to_client(actions))

    def test_refusal_after_the_lease_gives_it_back(self):
        self.send(request())
        self.session.leased(Console.from_answer(CONSOLE))
        actions = self.session.refused(refusals.from_error(
            ConnectionRefusedError()))
        self.assertEqual([cs.ReleaseLease('session-1')],
                         of_type(actions, cs.ReleaseLease))
        self.assertEqual('HTTP/1.1 503 Service Unavailable',
                         status_line(actions))

    def test_request_not_complete_in_time_is_refused_on_tick(self):
        self.send(b'GET / HTTP/1.1\r\n')
        self.clock.now += self.settings.handshake_timeout - 0.1
        self.assertEqual([], self.session.tick())
        self.clock.now += 0.2
        self.assertRefused(self.session.tick(), 400, 'timeout')

    def test_console_service_silent_past_the_deadline_is_503(self):
        # The request came in time; consoleauth (or the broker) did not
        # answer: a backend failure, not the client's.
        self.send(request())
        self.clock.now += self.settings.handshake_timeout + 0.1
        actions = self.session.tick()
        self.assertRefused(actions, 503, 'timeout')
        self.assertIn(b'Console service unavailable', to_client(actions))
        # Its answer, when it comes late, gives the lease back.
        self.assertEqual([cs.ReleaseLease('session-1')],
                         self.session.leased(Console.from_answer(CONSOLE)))

    def test_client_gone_during_authorization_frees_the_lease(self):
        self.send(request())
        self.assertEqual([], self.session.client_lost())
        self.assertEqual([cs.ReleaseLease('session-1')],
                         self.session.leased(Console.from_answer(CONSOLE)))
        self.assertEqual([cs.CloseGuest()], self.session.guest_connected())


class FramesTest(SessionTestCase):
    SIZES = (0, 1, 125, 126, 4095, 4096, 4097, 65535, LIMIT)

    def setUp(self):
        super().setUp()
        self.open()

    def test_single_frames_of_every_size_up_to_the_limit_are_relayed(self):
        for size in self.SIZES:
            payload = os.urandom(size)
            relayed = to_guest(self.send(client_frame(0x2, payload)))
            # An empty message carries nothing to write.
            self.assertEqual([payload] if size else [], relayed, size)
        self.assertIs(cs.State.OPEN, self.session.state)

    def test_fragmented_messages_of_every_size_are_relayed_whole(self):
        for size in self.SIZES:
            payload = os.urandom(size)
            third = size // 3
            wire = (client_frame(0x2, payload[:third], fin=False) +
                    client_frame(0x0, payload[third:2 * third], fin=False) +
                    client_frame(0x0, payload[2 * third:]))
            relayed = to_guest(self.send(wire))
            self.assertEqual([payload] if size else [], relayed, size)

    def test_a_frame_is_relayed_when_its_last_byte_arrives(self):
        payload = os.urandom(LIMIT)
        wire = client_frame(0x2, payload)
        for start in range(0, len(wire) - 1000, 1000):
            self.assertEqual([], to_guest(self.send(
                wire[start:start + 1000])))
        tail = len(wire) - len(wire) % 1000 if len(wire) % 1000 else \
            len(wire) - 1000
        self.assertEqual([payload], to_guest(self.send(wire[tail:])))

    def test_many_large_frames_in_one_read_are_all_relayed(self):
        payloads = [os.urandom(16 * 1024) for _ in range(20)]
        wire = b''.join(client_frame(0x2, p) for p in payloads)
        self.assertEqual(payloads, to_guest(self.send(wire)))

    def test_message_over_the_limit_closes_1009_after_what_came_first(self):
        first = os.urandom(100)
        wire = client_frame(0x2, first) + \
            client_frame(0x2, os.urandom(LIMIT + 1))
        actions = self.send(wire[:len(wire) // 2])
        self.assertEqual([first], to_guest(actions))
        self.assertEqual((CloseCode.MESSAGE_TOO_BIG,
                          'Message larger than %d bytes' % LIMIT),
                         close_frame(actions))
        self.assertIn(cs.ReleaseLease('session-1'), actions)
        self.assertIn(cs.CloseGuest(), actions)
        # The rest of the oversized frame is dropped, not buffered.
        self.assertEqual([], self.send(wire[len(wire) // 2:]))

    def test_fragments_adding_up_past_the_limit_close_1009(self):
        half = os.urandom(LIMIT // 2 + 1)
        actions = self.send(client_frame(0x2, half, fin=False) +
                            client_frame(0x0, half))
        self.assertEqual([], to_guest(actions))
        self.assertEqual(CloseCode.MESSAGE_TOO_BIG, close_frame(actions)[0])

    def test_ping_during_a_flood_is_answered_in_order(self):
        payloads = [os.urandom(8000) for _ in range(10)]
        wire = b''.join(client_frame(0x2, p) for p in payloads[:5]) + \
            client_frame(0x9, b'are you there') + \
            b''.join(client_frame(0x2, p) for p in payloads[5:])
        actions = self.send(wire)
        self.assertEqual(payloads, to_guest(actions))
        self.assertEqual([(0xA, b'are you there')],
                         server_frames(to_client(actions)))

    def test_empty_fragments_anywhere_in_a_message_are_fine(self):
        wire = client_frame(0x2, b'', fin=False) + \
            client_frame(0x0, b'', fin=False) + \
            client_frame(0x0, b'ab', fin=False) + \
            client_frame(0x0, b'', fin=False) + client_frame(0x0, b'cd')
        self.assertEqual([b'abcd'], to_guest(self.send(wire)))
        self.assertIs(cs.State.OPEN, self.session.state)

    def test_ping_between_fragments_does_not_break_the_message(self):
        wire = client_frame(0x2, b'ab', fin=False) + \
            client_frame(0x9, b'p') + client_frame(0x0, b'cd')
        actions = self.send(wire)
        self.assertEqual([b'abcd'], to_guest(actions))

    def test_guest_output_goes_out_in_binary_frames(self):
        actions = self.session.guest_data(b'\x1b[32mhello\r\n')
        self.assertEqual([(0x2, b'\x1b[32mhello\r\n')],
                         server_frames(to_client(actions)))
        self.assertEqual(len(b'\x1b[32mhello\r\n'),
                         of_type(actions, cs.SendToClient)[0].payload_bytes)


class ClosingTest(SessionTestCase):
    def setUp(self):
        super().setUp()
        self.open()

    def test_operator_disconnect_sends_4001_and_frees_the_console_now(self):
        actions = self.session.close(CloseCode.OPERATOR_DISCONNECT,
                                     'Disconnected by an operator')
        self.assertEqual((4001, 'Disconnected by an operator'),
                         close_frame(actions))
        self.assertEqual([cs.ReleaseLease('session-1')],
                         of_type(actions, cs.ReleaseLease))
        self.assertIn(cs.CloseGuest(), actions)
        self.assertIn(cs.Ended(4001, 'Disconnected by an operator'),
                      actions)
        # The client's answer ends the connection.
        answer = self.send(client_frame(0x8, struct.pack('>H', 4001)))
        self.assertEqual(cs.CloseClient(), answer[-1])
        self.assertEqual([], of_type(answer, cs.ReleaseLease))

    def test_client_that_never_answers_the_close_is_dropped_after_grace(
            self):
        self.session.close(CloseCode.GOING_AWAY,
                           'Console proxy shutting down')
        self.clock.now += self.settings.close_grace - 0.1
        self.assertEqual([], self.session.tick())
        self.clock.now += 0.2
        self.assertEqual([cs.CloseClient()], self.session.tick())

    def test_guest_eof_says_the_console_went_away(self):
        actions = self.session.guest_eof()
        self.assertEqual((4005, 'The console went away: the server '
                                'stopped or was deleted'),
                         close_frame(actions))

    def test_idle_session_closes_with_4003(self):
        self.session = cs.ConsoleSession(
            cs.Settings(idle_timeout=30), clock=self.clock)
        self.open()
        self.clock.now += 20
        self.session.guest_data(b'x')
        self.clock.now += 20
        self.assertEqual([], self.session.tick())
        self.clock.now += 11
        self.assertEqual((4003, 'Idle timeout'),
                         close_frame(self.session.tick()))

    def test_session_closes_with_4008_at_max_session_age(self):
        self.session = cs.ConsoleSession(
            cs.Settings(max_session_age=3600), clock=self.clock)
        self.open()
        self.clock.now += 3599
        # Busy or not: the age counts from the start, not the last byte.
        self.session.guest_data(b'x')
        self.assertEqual([], self.session.tick())
        self.clock.now += 1
        actions = self.session.tick()
        code, reason = close_frame(actions)
        self.assertEqual(CloseCode.SESSION_MAX_AGE, code)
        self.assertIn('ask for a new console URL', reason)
        self.assertIn(cs.ReleaseLease('session-1'), actions)
        self.assertIn(cs.Ended(code, reason), actions)

    def test_max_session_age_counts_from_the_open_not_the_request(self):
        self.session = cs.ConsoleSession(
            cs.Settings(max_session_age=10, handshake_timeout=60),
            clock=self.clock)
        self.send(request())
        self.clock.now += 8
        self.session.leased(Console.from_answer(CONSOLE))
        self.session.guest_connected()
        self.clock.now += 9
        self.assertEqual([], self.session.tick())
        self.clock.now += 1
        self.assertEqual(CloseCode.SESSION_MAX_AGE,
                         close_frame(self.session.tick())[0])

    def test_max_session_age_0_lets_a_session_live_on(self):
        self.session = cs.ConsoleSession(cs.Settings(), clock=self.clock)
        self.open()
        self.clock.now += 30 * 86400
        self.assertEqual([], self.session.tick())
        self.assertTrue(self.session.is_open)

    def test_session_ends_with_its_token_when_enforced(self):
        self.session = cs.ConsoleSession(
            cs.Settings(enforce_session_timeout=True), clock=self.clock)
        self.send(request())
        self.session.leased(Console.from_answer(
            dict(CONSOLE, expires_at=time.time() + 60)))
        self.session.guest_connected()
        self.clock.now += 59
        self.assertEqual([], self.session.tick())
        self.clock.now += 2
        self.assertEqual((4002, 'Token expired'),
                         close_frame(self.session.tick()))

    def test_client_close_racing_data_relays_the_data_then_closes(self):
        wire = client_frame(0x2, b'last words') + \
            client_frame(0x8, struct.pack('>H', 1000) + b'bye') + \
            client_frame(0x2, b'after close')
        actions = self.send(wire)
        self.assertEqual([b'last words'], to_guest(actions))
        self.assertIn(cs.ReleaseLease('session-1', then_answer=True),
                      actions)
        actions = self.session.lease_released()
        self.assertEqual((1000, 'bye'), close_frame(actions))
        self.assertEqual(cs.CloseClient(), actions[-1])
        # Guest output racing the close goes nowhere.
        self.assertEqual([], self.session.guest_data(b'late output'))

    def test_disconnect_racing_client_data_drops_the_data(self):
        self.session.close(CloseCode.OPERATOR_DISCONNECT, 'Disconnected')
        self.assertEqual([], to_guest(self.send(client_frame(0x2, b'x'))))

    def test_protocol_errors_close_with_their_codes(self):
        cases = [
            (client_frame(0x2, b'unmasked', mask=False), 1002),
            (client_frame(0x3, b'reserved opcode'), 1002),
            (client_frame(0x1, b'\xc3('), 1007),
            (client_frame(0x9, b'p' * 126), 1002),
            (bytes([0xC2]) + client_frame(0x2, b'x')[1:], 1002),
            (client_frame(0x0, b'no message to continue'), 1002),
        ]
        for wire, code in cases:
            self.session = cs.ConsoleSession(self.settings,
                                             clock=self.clock)
            self.open()
            actions = self.send(wire)
            self.assertEqual(code, close_frame(actions)[0], wire[:2])
            self.assertIn(cs.ReleaseLease('session-1'), actions)
            self.assertIs(cs.State.CLOSING, self.session.state)

    def test_client_lost_ends_the_session_and_frees_the_console(self):
        actions = self.session.client_lost()
        self.assertIn(cs.CloseGuest(), actions)
        self.assertIn(cs.ReleaseLease('session-1'), actions)
        self.assertEqual(1, len(of_type(actions, cs.Ended)))
        # Said twice, the release is not repeated.
        self.assertEqual([], self.session.client_lost())

    def test_eof_from_the_client_ends_the_session(self):
        actions = self.session.client_eof()
        self.assertIn(cs.Ended(1006, 'client closed (1006)'), actions)
        self.assertEqual([cs.CloseClient()], self.session.lease_released())

    def test_client_close_is_answered_once_the_console_is_free(self):
        # So that a client reconnecting as soon as its close completes
        # (a script, a reload, another proxy) is not refused with 409.
        actions = self.send(client_frame(0x8, struct.pack('>H', 1000)))
        self.assertIsNone(close_frame(actions))
        self.assertNotIn(cs.CloseClient(), actions)
        self.assertEqual([cs.ReleaseLease('session-1', then_answer=True)],
                         [a for a in actions
                          if isinstance(a, cs.ReleaseLease)])
        # Nothing the client sends meanwhile changes that.
        self.assertEqual([], self.session.client_eof())
        actions = self.session.lease_released()
        self.assertEqual(1000, close_frame(actions)[0])
        self.assertEqual(cs.CloseClient(), actions[-1])
        self.assertEqual([], self.session.lease_released())

    def test_client_close_is_answered_after_close_grace_without_release(self):
        self.send(client_frame(0x8, struct.pack('>H', 1000)))
        self.assertEqual([], self.session.tick())
        self.clock.now += self.settings.close_grace
        actions = self.session.tick()
        self.assertEqual(1000, close_frame(actions)[0])
        self.assertEqual(cs.CloseClient(), actions[-1])
        self.assertEqual([], self.session.lease_released())

    def test_connection_lost_before_the_release_answers_nothing(self):
        self.send(client_frame(0x8, struct.pack('>H', 1000)))
        self.session.client_lost()
        self.assertEqual([], self.session.lease_released())


class BackpressureTest(SessionTestCase):
    def test_each_side_blocked_pauses_the_other(self):
        self.open()
        self.assertEqual([cs.PauseReading(Side.GUEST),
                          cs.PauseReading(Side.CLIENT)],
                         self.session.client_write_blocked())
        self.assertEqual([cs.ResumeReading(Side.GUEST),
                          cs.ResumeReading(Side.CLIENT)],
                         self.session.client_write_unblocked())
        self.assertEqual([cs.PauseReading(Side.CLIENT)],
                         self.session.guest_write_blocked())
        self.assertEqual([cs.ResumeReading(Side.CLIENT)],
                         self.session.guest_write_unblocked())

    def test_nothing_to_pause_before_open(self):
        self.assertEqual([], self.session.client_write_blocked())


class ClientThatStopsReadingTest(SessionTestCase):
    """Nothing a client sends makes the proxy queue more than its write
    buffer limit plus REPLY_BYTES_PER_READ of answers toward it."""

    def test_a_client_that_stops_reading_is_not_read_either(self):
        self.open()
        self.assertIn(cs.PauseReading(Side.CLIENT),
                      self.session.client_write_blocked())

    def test_client_is_read_again_once_neither_side_is_full(self):
        self.open()
        self.session.client_write_blocked()
        self.assertEqual([], self.session.guest_write_blocked())
        self.assertEqual([cs.ResumeReading(Side.GUEST)],
                         self.session.client_write_unblocked())
        self.assertEqual([cs.ResumeReading(Side.CLIENT)],
                         self.session.guest_write_unblocked())

    def test_guest_full_then_client_full_resumes_once_both_drain(self):
        self.open()
        self.assertEqual([cs.PauseReading(Side.CLIENT)],
                         self.session.guest_write_blocked())
        self.assertEqual([cs.PauseReading(Side.GUEST)],
                         self.session.client_write_blocked())
        self.assertEqual([], self.session.guest_write_unblocked())
        self.assertEqual([cs.ResumeReading(Side.GUEST),
                          cs.ResumeReading(Side.CLIENT)],
                         self.session.client_write_unblocked())

    def test_a_read_full_of_pings_is_answered_with_one_pong(self):
        self.open()
        wire = b''.join(client_frame(0x9, b'%05d' % n + b'p' * 120)
                        for n in range(2000))
        self.assertEqual([(0xA, b'01999' + b'p' * 120)],
                         server_frames(to_client(self.send(wire))))
        self.assertIs(cs.State.OPEN, self.session.state)

    def test_pings_between_reads_are_each_answered(self):
        self.open()
        for n in range(3):
            self.assertEqual([(0xA, b'%d' % n)], server_frames(to_client(
                self.send(client_frame(0x9, b'%d' % n)))))

    def test_a_read_asking_too_many_answers_is_closed_with_1008(self):
        self.open()
        wire = client_frame(0x2, b'typed') + \
            client_frame(0x1, b'?') * 10000
        actions = self.send(wire)
        self.assertEqual([b'typed'], to_guest(actions))
        self.assertEqual((CloseCode.POLICY_VIOLATION, cs.TOO_MANY_REQUESTS),
                         close_frame(actions))
        self.assertIn(cs.ReleaseLease('session-1'), actions)
        self.assertLess(len(to_client(actions)),
                        cs.REPLY_BYTES_PER_READ + 1024)

    def test_any_read_queues_a_bounded_answer(self):
        self.open()
        read = 256 * 1024
        for unit in (client_frame(0x9, b'x' * 125), client_frame(0x9, b''),
                     client_frame(0x1, b'{"permissions": true}'),
                     client_frame(0x1, b'{"sysrq": "?"}'),
                     client_frame(0x1, b'x' * 300)):
            self.session = cs.ConsoleSession(self.settings,
                                             clock=self.clock)
            self.open()
            actions = self.send(unit * (read // len(unit)))
            self.assertLess(len(to_client(actions)),
                            cs.REPLY_BYTES_PER_READ + 1024, unit[:20])
