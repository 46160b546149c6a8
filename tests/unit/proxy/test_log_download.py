"""The page's Download log: the proxy answering a console's kept history.

The pager alone (bytes in, reads out), then the proxy on real sockets
with consoleauth and the compute agent stubbed at the edge: the history
is a byte string the stub pages through as get_console_history does.
"""

import asyncio
import base64
import os
import socket
import time

import fixtures

from serialproxy import exception
from serialproxy.proxy import metrics
from serialproxy.proxy.page import log_download
from serialproxy.proxy import session
from tests.unit import base
from tests.unit.proxy.fakes import make_proxy
from tests.unit.proxy.fakes import StubCompute
from tests.unit.proxy.fakes import StubConsoleAuth

TOKEN = 'download-token-that-must-stay-out-of-logs'
UUID = '0b0b0b0b-1111-2222-3333-444444444444'


def history_answer(history, first, start, max_bytes, encode=False):
    """get_console_history's answer over history, which holds the
    stream's bytes from offset first: data as bytes, or as it crosses
    RPC (base64) when encode."""
    end = first + len(history)
    start = min(max(start, first), end)
    data = history[start - first:start - first + min(max_bytes,
                                                     end - start)]
    if encode:
        data = base64.b64encode(data).decode()
    return {'data': data, 'start': start,
            'next': start + len(data), 'first_available': first,
            'end': end}


class LogPagesTest(base.TestCase):
    def test_pages_from_first_available_give_the_history_once(self):
        history = os.urandom(1000)
        pages = log_download.LogPages(UUID, page_bytes=64)
        got = b''
        reads = []
        while not pages.done:
            start, max_bytes = pages.next_read()
            reads.append((start, max_bytes))
            got += pages.take(history_answer(history, 5000, start,
                                             max_bytes))
        self.assertEqual(history, got)
        self.assertEqual((0, 64), reads[0])
        self.assertEqual((5064, 64), reads[1])
        self.assertEqual((5000, 6000), (pages.first, pages.end))
        self.assertEqual(16, len(reads))
        self.assertTrue(all(size <= 64 for _, size in reads))

    def test_output_printed_during_the_download_is_left_out(self):
        history = b'a' * 100
        pages = log_download.LogPages(UUID, page_bytes=60)
        first = pages.take(history_answer(history, 0, *pages.next_read()))
        # The guest prints on: the second read sees a longer log.
        rest = pages.take(history_answer(history + b'b' * 50, 0,
                                         *pages.next_read()))
        self.assertEqual(history, first + rest)
        self.assertTrue(pages.done)

    def test_a_log_rotated_or_begun_again_meanwhile_breaks_it(self):
        # The oldest 50 bytes rotated away before the second read; the
        # guest rebooted, and its log is 5 bytes long now.
        for history, first in ((b'x' * 60, 50), (b'y' * 5, 0)):
            pages = log_download.LogPages(UUID, page_bytes=10)
            pages.take(history_answer(b'x' * 100, 0, *pages.next_read()))
            self.assertRaises(
                log_download.BrokenHistory, pages.take,
                history_answer(history, first, *pages.next_read()))

    def test_empty_history_is_an_empty_file(self):
        pages = log_download.LogPages(UUID)
        self.assertEqual(b'', pages.take(history_answer(b'', 0, 0, 10)))
        self.assertTrue(pages.done)
        head = pages.head()
        self.assertIn(b'Content-Length: 0\r\n', head)

    def test_head_names_the_file_after_the_instance(self):
        pages = log_download.LogPages(UUID)
        pages.take(history_answer(b'abc', 7, 0, 10))
        head = pages.head([('X-Content-Type-Options', 'nosniff')])
        self.assertTrue(head.startswith(b'HTTP/1.1 200 OK\r\n'), head)
        self.assertIn(b'Content-Disposition: attachment; filename="console-'
                      b'%s.log"\r\n' % UUID.encode(), head)
        self.assertIn(b'Content-Length: 3\r\n', head)
        self.assertIn(b'X-Serialproxy-Log-Start: 7\r\n', head)
        self.assertIn(b'X-Content-Type-Options: nosniff\r\n', head)
        self.assertTrue(head.endswith(b'\r\n\r\n'))


class SessionTest(base.TestCase):
    def request(self, *headers):
        s = session.ConsoleSession(session.Settings())
        return s, s.client_data(
            b'GET /?token=t HTTP/1.1\r\nHost: h\r\n' +
            b''.join(h + b'\r\n' for h in headers) + b'\r\n')

    def test_download_header_asks_for_the_log_not_the_page(self):
        s, actions = self.request(b'X-Serialproxy-Download: log')
        action, = actions
        self.assertIsInstance(action, session.DownloadLog)
        self.assertEqual(session.State.AUTHORIZING, s.state)
        self.assertTrue(s.download_started())
        self.assertEqual(session.State.ANSWERED, s.state)

    def test_download_of_something_else_is_400(self):
        s, actions = self.request(b'X-Serialproxy-Download: disk')
        self.assertIn(b'HTTP/1.1 400 ', actions[1].chunks[0])
        self.assertIn(b'Unknown download', actions[1].chunks[0])

    def test_download_from_another_origin_is_403(self):
        s, actions = self.request(b'X-Serialproxy-Download: log',
                                  b'Origin: http://elsewhere.example')
        self.assertIn(b'HTTP/1.1 403 ', actions[1].chunks[0])

    def test_a_download_refused_by_the_clock_does_not_start(self):
        now = [0.0]
        s = session.ConsoleSession(session.Settings(handshake_timeout=5),
                                   clock=lambda: now[0])
        s.client_data(b'GET /?token=t HTTP/1.1\r\nHost: h\r\n'
                      b'X-Serialproxy-Download: log\r\n\r\n')
        now[0] = 6
        self.assertIn(b'HTTP/1.1 503 ', s.tick()[1].chunks[0])
        self.assertFalse(s.download_started())


class HistoryCompute(StubCompute):
    """A compute agent whose console log holds history from first."""

    def __init__(self, history, first=0, delay=0):
        super().__init__()
        self.history = history
        self.first = first
        self.delay = delay
        self.reads = []

    def get_console_history(self, ctxt, host, instance_uuid, start=None,
                            max_bytes=None):
        self.reads.append((start, max_bytes))
        time.sleep(self.delay)
        return history_answer(self.history, self.first, start, max_bytes,
                              encode=True)


class NoLogCompute(StubCompute):
    def get_console_history(self, ctxt, host, instance_uuid, start=None,
                            max_bytes=None):
        raise exception.ConsoleLogNotFound(
            instance_uuid=instance_uuid,
            reason='/var/log/libvirt/qemu/secret-path.log is missing')


class InUseConsoleAuth(StubConsoleAuth):
    """One console, held by a writer (the page downloading, say)."""

    def __init__(self, port=1, enabled=True, index=0):
        super().__init__(port)
        self.enabled = enabled
        self.index = index

    def check_token(self, ctxt, token):
        if token != TOKEN:
            raise exception.InvalidToken()
        return dict(super().check_token(ctxt, token), instance_uuid=UUID,
                    index=self.index, modes=['write'])

    def get_console_access(self, ctxt, instance_uuid=None, project_id=None):
        return {'enabled': self.enabled, 'decided_by': 'server'}

    def list_sessions(self, ctxt, instance_uuid):
        return [{'index': 0, 'mode': 'write', 'started_at': 1e9}]


async def get(port, token=TOKEN, download='log', read=True, extra=b''):
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(b'GET /?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                 b'X-Serialproxy-Download: %s\r\n%s\r\n'
                 % (token.encode(), download.encode(), extra))
    if not read:
        return reader, writer
    answer = await asyncio.wait_for(reader.read(), 20)
    writer.close()
    return answer


def split(answer):
    head, _, body = answer.partition(b'\r\n\r\n')
    return head.decode('latin-1'), body


class DownloadTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level='DEBUG'))

    def tearDown(self):
        self.assertNotIn(TOKEN, self.log.output)
        super().tearDown()

    def run_proxy(self, scenario, auth=None, compute=None):
        async def main():
            proxy = make_proxy(auth or InUseConsoleAuth(), compute)
            await proxy.start('127.0.0.1', 0)
            try:
                return await scenario(proxy)
            finally:
                await proxy.stop()
        return asyncio.run(main())

    def test_the_kept_history_downloads_whole_while_the_console_is_used(
            self):
        history = os.urandom(log_download.PAGE_BYTES * 3 + 12345)
        compute = HistoryCompute(history, first=777)

        async def scenario(proxy):
            return await get(proxy.bound_port)
        head, body = split(self.run_proxy(scenario, compute=compute))
        self.assertTrue(head.startswith('HTTP/1.1 200 OK'), head)
        self.assertEqual(history, body)
        self.assertIn('Content-Length: %d' % len(history), head)
        self.assertIn('Content-Disposition: attachment; filename="console-'
                      '%s.log"' % UUID, head)
        self.assertIn('Cache-Control: no-store', head)
        self.assertIn('Content-Security-Policy: ', head)
        # A page at a time, each from where the last ended.
        self.assertEqual([0, 777 + log_download.PAGE_BYTES,
                          777 + 2 * log_download.PAGE_BYTES,
                          777 + 3 * log_download.PAGE_BYTES],
                         [start for start, _ in compute.reads])
        self.assertTrue(all(size <= log_download.PAGE_BYTES
                            for _, size in compute.reads))
        self.assertIn('Console log of instance %s (offsets 777 to %d) sent'
                      % (UUID, 777 + len(history)), self.log.output)

    def test_refusals_are_statuses_with_reasons(self):
        cases = [
            (InUseConsoleAuth(enabled=False), TOKEN, 'log', 403,
             'Serial console access is turned off for this server'),
            (InUseConsoleAuth(), 'not-the-token', 'log', 401,
             'Invalid or expired token'),
            (InUseConsoleAuth(), '', 'log', 401, 'Missing token'),
            (InUseConsoleAuth(), TOKEN, 'disk', 400, 'Unknown download'),
            (InUseConsoleAuth(index=1), TOKEN, 'log', 404,
             'Only the first serial port'),
        ]
        for auth, token, download, status, reason in cases:
            compute = HistoryCompute(b'secret output')

            async def scenario(proxy):
                return await get(proxy.bound_port, token=token,
                                 download=download)
            head, body = split(self.run_proxy(scenario, auth, compute))
            self.assertTrue(head.startswith('HTTP/1.1 %d ' % status), head)
            self.assertIn(reason, body.decode())
            self.assertNotIn(b'secret output', body)
            self.assertEqual([], compute.reads)

    def test_a_server_without_a_log_gets_404_naming_no_path(self):
        async def scenario(proxy):
            return await get(proxy.bound_port)
        head, body = split(self.run_proxy(scenario, compute=NoLogCompute()))
        self.assertTrue(head.startswith('HTTP/1.1 404 '), head)
        self.assertEqual(b'This server has no serial console log.\n', body)

    def test_a_client_that_does_not_read_holds_back_the_reads(self):
        # More than the kernel's socket buffers take on loopback.
        history = os.urandom(16 * 1024 * 1024)
        compute = HistoryCompute(history)

        async def scenario(proxy):
            loop = asyncio.get_running_loop()
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, ('127.0.0.1', proxy.bound_port))
            await loop.sock_sendall(
                sock, b'GET /?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                      b'X-Serialproxy-Download: log\r\n\r\n' % TOKEN.encode())
            await asyncio.sleep(1.5)
            stalled = len(compute.reads)
            connection, = proxy.registry.connections
            buffered = connection.transport.get_write_buffer_size()
            await asyncio.sleep(0.5)
            self.assertEqual(stalled, len(compute.reads))
            received = b''
            while True:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65536),
                                              20)
                if not data:
                    break
                received += data
            sock.close()
            return stalled, buffered, received
        stalled, buffered, received = self.run_proxy(scenario,
                                                     compute=compute)
        # 64 pages; a client that reads nothing stops the reads once
        # the kernel's buffers are full, and the proxy holds at most
        # about a page.
        self.assertLess(stalled, 40)
        self.assertLessEqual(buffered, log_download.PAGE_BYTES + 64 * 1024)
        self.assertEqual(history, split(received)[1])
        self.assertEqual(64, len(compute.reads))

    def test_downloads_past_the_limit_get_503_until_one_ends(self):
        # Slow reads: each download streams for seconds.
        compute = HistoryCompute(os.urandom(4 * 1024 * 1024), delay=0.2)
        auth = InUseConsoleAuth()

        async def scenario(proxy):
            # max_per_token would refuse the fifth first.
            proxy.admission.max_per_token = 100
            held = []
            for _ in range(log_download.DOWNLOADS_AT_ONCE):
                held.append(await get(proxy.bound_port, read=False))
                # Each has its head: it is streaming.
                await asyncio.wait_for(held[-1][0].readuntil(b'\r\n\r\n'),
                                       10)
            busy = await get(proxy.bound_port)
            reader, writer = held.pop()
            writer.transport.abort()
            await asyncio.sleep(0.3)
            after = await get(proxy.bound_port, read=False)
            head = await asyncio.wait_for(after[0].readuntil(b'\r\n\r\n'),
                                          10)
            for _, writer in held + [after]:
                writer.close()
            return busy, head
        labels = {'status': '503', 'reason': 'capacity'}
        before = metrics.sample_value('serialproxy_refusals_total', labels)
        busy, head = self.run_proxy(scenario, auth, compute)
        self.assertTrue(busy.startswith(b'HTTP/1.1 503 '), busy[:200])
        self.assertIn(log_download.BUSY_REASON.encode(), busy)
        self.assertTrue(head.startswith(b'HTTP/1.1 200 '), head)
        self.assertEqual(1, metrics.sample_value(
            'serialproxy_refusals_total', labels) - before)

    def test_history_rotated_during_a_download_cuts_it_short(self):
        history = os.urandom(log_download.PAGE_BYTES * 2)

        class RotatingCompute(HistoryCompute):
            def get_console_history(self, ctxt, host, instance_uuid,
                                    start=None, max_bytes=None):
                if self.reads:
                    # The first page's bytes were dropped meanwhile.
                    self.first += log_download.PAGE_BYTES + 10
                    self.history = self.history[
                        log_download.PAGE_BYTES + 10:]
                return super().get_console_history(
                    ctxt, host, instance_uuid, start, max_bytes)

        async def scenario(proxy):
            return await get(proxy.bound_port)
        head, body = split(self.run_proxy(
            scenario, compute=RotatingCompute(history)))
        self.assertTrue(head.startswith('HTTP/1.1 200 '), head)
        self.assertIn('Content-Length: %d' % len(history), head)
        # Less than promised: the client knows it failed.
        self.assertEqual(history[:log_download.PAGE_BYTES], body)
        self.assertIn('cut short', self.log.output)
