"""Admission on real sockets: per-address limits from accept, checks under
the same limits, and the client address a trusted load balancer gives."""

import asyncio
import base64
import os
import socket

from serialproxy.proxy import forwarded
from serialproxy.proxy import session
from tests.unit import base
from tests.unit.proxy.fakes import make_proxy
from tests.unit.proxy.fakes import StubConsoleAuth


class RecordingConsoleAuth(StubConsoleAuth):
    """Remembers the client address each lease was asked for."""

    def __init__(self, port):
        super().__init__(port)
        self.remote_addresses = []

    def acquire_sessions(self, ctxt, proxy_host, requests):
        self.remote_addresses += [r['remote_address'] for r in requests]
        return super().acquire_sessions(ctxt, proxy_host, requests)

    def list_sessions(self, ctxt, instance_uuid):
        return []


async def connect_from(loop, source, port):
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((source, 0))
    await loop.sock_connect(sock, ('127.0.0.1', port))
    return sock


async def answer(loop, sock, timeout=5):
    """What the proxy sends until it closes, or until its head ends for
    a 101."""
    data = b''
    while True:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)
        data += chunk
        if not chunk or (data.startswith(b'HTTP/1.1 101') and
                         b'\r\n\r\n' in data):
            return data


def upgrade(token='t', headers=()):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ['GET /?token=%s HTTP/1.1' % token, 'Host: 127.0.0.1',
             'Upgrade: websocket', 'Connection: Upgrade',
             'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: %s' % key]
    lines += ['%s: %s' % header for header in headers]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode()


def check(token='t', headers=()):
    lines = ['GET /?token=%s HTTP/1.1' % token, 'Host: 127.0.0.1',
             'X-Serialproxy-Check: 1']
    lines += ['%s: %s' % header for header in headers]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode()


class ProxyScenario(base.TestCase):
    def run_scenario(self, scenario, **settings):
        async def main():
            loop = asyncio.get_running_loop()
            guest = await loop.create_server(asyncio.Protocol, '127.0.0.1',
                                             0)
            self.auth = RecordingConsoleAuth(
                guest.sockets[0].getsockname()[1])
            proxy = make_proxy(self.auth, **settings)
            await proxy.start('127.0.0.1', 0)
            sockets = []
            try:
                return await scenario(loop, proxy, sockets)
            finally:
                for sock in sockets:
                    sock.close()
                await proxy.stop()
                guest.close()
        return asyncio.run(main())


class PerAddressFromAcceptTest(ProxyScenario):
    def test_silent_connections_past_the_address_cap_get_429(self):
        async def scenario(loop, proxy, sockets):
            for _ in range(3):
                sockets.append(await connect_from(loop, '127.0.0.1',
                                                  proxy.bound_port))
            # None of them sent a byte: the third is refused all the same.
            refused = await answer(loop, sockets[2])
            other = await connect_from(loop, '127.0.0.2', proxy.bound_port)
            sockets.append(other)
            await loop.sock_sendall(other, upgrade())
            return refused, await answer(loop, other)
        refused, other = self.run_scenario(scenario, max_per_address=2)
        self.assertTrue(refused.startswith(b'HTTP/1.1 429 '), refused)
        self.assertIn(b'Too many connections from this address', refused)
        self.assertTrue(other.startswith(b'HTTP/1.1 101 '), other)

    def test_a_closed_connection_frees_its_place(self):
        async def scenario(loop, proxy, sockets):
            first = await connect_from(loop, '127.0.0.1', proxy.bound_port)
            await asyncio.sleep(0.1)
            first.close()
            await asyncio.sleep(0.2)
            second = await connect_from(loop, '127.0.0.1', proxy.bound_port)
            sockets.append(second)
            await loop.sock_sendall(second, upgrade())
            return await answer(loop, second)
        opened = self.run_scenario(scenario, max_per_address=1)
        self.assertTrue(opened.startswith(b'HTTP/1.1 101 '), opened)


class ChecksAdmittedTest(ProxyScenario):
    def test_check_past_the_token_limit_is_429(self):
        async def scenario(loop, proxy, sockets):
            held = await connect_from(loop, '127.0.0.1', proxy.bound_port)
            sockets.append(held)
            await loop.sock_sendall(held, upgrade())
            opened = await answer(loop, held)
            asker = await connect_from(loop, '127.0.0.2', proxy.bound_port)
            sockets.append(asker)
            await loop.sock_sendall(asker, check())
            return opened, await answer(loop, asker)
        opened, checked = self.run_scenario(scenario, max_per_token=1)
        self.assertTrue(opened.startswith(b'HTTP/1.1 101 '), opened)
        self.assertTrue(checked.startswith(b'HTTP/1.1 429 '), checked)
        self.assertIn(b'Too many sessions for this token', checked)

    def test_checks_past_the_address_cap_are_429(self):
        async def scenario(loop, proxy, sockets):
            held = await connect_from(loop, '127.0.0.1', proxy.bound_port)
            sockets.append(held)
            await asyncio.sleep(0.1)
            asker = await connect_from(loop, '127.0.0.1', proxy.bound_port)
            sockets.append(asker)
            await loop.sock_sendall(asker, check())
            return await answer(loop, asker)
        checked = self.run_scenario(scenario, max_per_address=1)
        self.assertTrue(checked.startswith(b'HTTP/1.1 429 '), checked)


TRUSTED = session.Settings(
    trusted_proxies=forwarded.TrustedProxies(['127.0.0.1']))


class ForwardedClientTest(ProxyScenario):
    def test_forwarded_address_from_a_trusted_peer_is_the_client(self):
        async def scenario(loop, proxy, sockets):
            sock = await connect_from(loop, '127.0.0.1', proxy.bound_port)
            sockets.append(sock)
            await loop.sock_sendall(sock, upgrade(headers=[
                ('X-Forwarded-For', '192.0.2.1, 198.51.100.7')]))
            return await answer(loop, sock)
        opened = self.run_scenario(scenario, session_settings=TRUSTED)
        self.assertTrue(opened.startswith(b'HTTP/1.1 101 '), opened)
        self.assertEqual(['198.51.100.7'], self.auth.remote_addresses)

    def test_forwarded_address_from_any_other_peer_is_ignored(self):
        async def scenario(loop, proxy, sockets):
            sock = await connect_from(loop, '127.0.0.2', proxy.bound_port)
            sockets.append(sock)
            await loop.sock_sendall(sock, upgrade(headers=[
                ('X-Forwarded-For', '198.51.100.7')]))
            return await answer(loop, sock)
        opened = self.run_scenario(scenario, session_settings=TRUSTED)
        self.assertTrue(opened.startswith(b'HTTP/1.1 101 '), opened)
        address, = self.auth.remote_addresses
        self.assertTrue(address.startswith('127.0.0.2:'), address)

    def test_address_cap_counts_forwarded_clients_not_the_balancer(self):
        async def scenario(loop, proxy, sockets):
            answers = []
            for client in ('198.51.100.7', '198.51.100.8', '198.51.100.7'):
                sock = await connect_from(loop, '127.0.0.1',
                                          proxy.bound_port)
                sockets.append(sock)
                await loop.sock_sendall(sock, upgrade(
                    token=client, headers=[('X-Forwarded-For', client)]))
                answers.append(await answer(loop, sock))
            return answers
        answers = self.run_scenario(scenario, session_settings=TRUSTED,
                                    max_per_address=1)
        self.assertEqual([b'HTTP/1.1 101', b'HTTP/1.1 101', b'HTTP/1.1 429'],
                         [a[:12] for a in answers])
        self.assertIn(b'Too many connections from this address', answers[2])

    def test_balancer_is_not_capped_at_accept(self):
        async def scenario(loop, proxy, sockets):
            for _ in range(3):
                sockets.append(await connect_from(loop, '127.0.0.1',
                                                  proxy.bound_port))
            last = sockets[-1]
            await loop.sock_sendall(last, upgrade(
                headers=[('X-Forwarded-For', '198.51.100.9')]))
            return await answer(loop, last)
        opened = self.run_scenario(scenario, session_settings=TRUSTED,
                                   max_per_address=2)
        self.assertTrue(opened.startswith(b'HTTP/1.1 101 '), opened)
