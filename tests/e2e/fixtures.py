"""The world of a browser test: a real guest, serialproxy-all, Chromium.

Debian's own headless Chromium, driven by Playwright: Playwright's browser
downloads are not used, so the browser under test is the one a Debian
user runs. Screenshots go to test-output/e2e/ for CI to keep.
"""

import asyncio
import html
import http.server
import os
import re
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid

import fixtures
from playwright import sync_api

from tests.harness import fixtures as func_fixtures

CHROMIUM = os.environ.get('SERIALPROXY_CHROMIUM', '/usr/bin/chromium')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--no-first-run']
GUEST_BOOT_TIMEOUT = 300
OUTPUT_DIR = os.environ.get(
    'SERIALPROXY_TEST_OUTPUT',
    os.path.join(func_fixtures.ROOT, 'test-output')) + '/e2e'


class Browser(fixtures.Fixture):
    """One headless Chromium; each test opens its own contexts in it."""

    def _setUp(self):
        if not os.access(CHROMIUM, os.X_OK):
            raise AssertionError('%s missing: run tools/test-setup.sh '
                                 '(Debian package chromium)' % CHROMIUM)
        self.playwright = sync_api.sync_playwright().start()
        self.addCleanup(self.playwright.stop)
        self.browser = self.playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.addCleanup(self.browser.close)


class ConsoleWorld(fixtures.Fixture):
    """A booted guest, serialproxy serving it, and a browser.

    separate=False: serialproxy-all, the demo's deployment. separate=True:
    the four services as processes over a RabbitMQ vhost, which is what
    lets serialproxy-manage reach consoleauth (an operator's tools).
    """

    def __init__(self, separate=False, config=None, console_log=False):
        self.separate = separate
        self.config = config or {}
        self.console_log = console_log

    def _setUp(self):
        self.console_log_path = None
        if self.console_log:
            # virtlogd copies the guest's serial output to this file
            # (tools/define-guest.sh); the proxy replays its end on connect.
            self.console_log_path = '/var/log/libvirt/qemu/sp-e2e-%s.log' \
                % uuid.uuid4().hex[:8]
            self.addCleanup(self._remove_console_log)
        # A TCG boot takes seconds on an idle machine and minutes on a CI
        # host shared with other test runs: the browser is what is tested.
        self.guest = self.useFixture(func_fixtures.Guest(
            boot_timeout=GUEST_BOOT_TIMEOUT,
            serial_log=self.console_log_path))
        if self.separate:
            vhost = self.useFixture(func_fixtures.RabbitVhost())
            self.deployment = self.useFixture(func_fixtures.Deployment(
                transport_url=vhost.url, options=self.config))
            self.deployment.run('serialproxy-manage', 'db', 'sync')
            for name in ('serialproxy-consoleauth', 'serialproxy-compute',
                         'serialproxy-api', 'serialproxy-proxy'):
                self.deployment.start(name)
        else:
            self.deployment = self.useFixture(
                func_fixtures.Deployment(options=self.config))
            self.deployment.start('serialproxy-all')
        self.deployment.wait_ready()
        self.browser = self.useFixture(Browser()).browser

    def console_url(self):
        """A fresh console URL of the guest, as the API gives it (ws://)."""
        return self.deployment.console_url(self.guest.uuid)

    def _remove_console_log(self):
        try:
            os.remove(self.console_log_path)
        except FileNotFoundError:
            pass


class LoopbackFront(fixtures.Fixture):
    """Something between the browser and the proxy: a listener on a free
    loopback port, served by an event loop in a thread of its own, whose
    _client(reader, writer) a subclass writes."""

    def __init__(self, backend_port):
        self.backend_port = backend_port
        self.port = func_fixtures.free_port()

    def _serve(self, ssl_context=None):
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(asyncio.start_server(
                self._client, '127.0.0.1', self.port, ssl=ssl_context))
            started.set()
            self.loop.run_forever()
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started.wait(10)
        self.addCleanup(self.loop.close)
        self.addCleanup(thread.join, 10)
        self.addCleanup(self.loop.call_soon_threadsafe, self.loop.stop)
        self.addCleanup(lambda: asyncio.run_coroutine_threadsafe(
            self._shutdown(), self.loop).result(10))

    async def _shutdown(self):
        self.server.close()
        tasks = [task for task in asyncio.all_tasks()
                 if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, reader, writer):
        raise NotImplementedError

    @staticmethod
    async def _pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


class TLSPrefixFront(LoopbackFront):
    """A TLS-terminating reverse proxy that serves the proxy under a prefix.

    What a deployment puts in front: https://127.0.0.1:PORT/PREFIX/... is
    passed on as http://backend/... with X-Forwarded-Proto: https and
    X-Forwarded-For (the proxy believes them from its trusted_proxies,
    which must list 127.0.0.1), bytes both ways after the request head
    (so websocket upgrades go through).
    Anything outside the prefix gets a 404 from the front itself.
    """

    def __init__(self, backend_port, prefix='/console'):
        super().__init__(backend_port)
        self.prefix = prefix

    def _setUp(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        cert, key = os.path.join(tmp, 'cert.pem'), os.path.join(tmp, 'key')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048',
                        '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
                        '-keyout', key, '-out', cert],
                       check=True, capture_output=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._serve(context)

    async def _client(self, reader, writer):
        try:
            head = await reader.readuntil(b'\r\n\r\n')
            line, rest = head.split(b'\r\n', 1)
            method, target, version = line.split(b' ')
            prefix = self.prefix.encode()
            if not target.startswith(prefix + b'/'):
                writer.write(b'HTTP/1.1 404 Not Found\r\nContent-Length: 0'
                             b'\r\nConnection: close\r\n\r\n')
                return
            client = writer.get_extra_info('peername')[0].encode()
            head = (b'%s %s %s\r\nX-Forwarded-Proto: https\r\n'
                    b'X-Forwarded-For: %s\r\n%s') % (
                method, target[len(prefix):], version, client, rest)
            up_reader, up_writer = await asyncio.open_connection(
                '127.0.0.1', self.backend_port)
            up_writer.write(head)
            await asyncio.gather(self._pipe(reader, up_writer),
                                 self._pipe(up_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError,
                asyncio.CancelledError):
            pass  # a client gone, a bad request, or the fixture stopping
        finally:
            writer.close()


class Dashboard(fixtures.Fixture):
    """Another origin's page that frames the console, as dashboards do.

    http://HOST:PORT/?console=URL answers a page whose iframe shows URL.
    A loopback address other than the proxy's makes another host: the
    proxy's Origin check, like Nova's, compares host names only.
    """

    def __init__(self, host):
        self.host = host

    def _setUp(self):
        self.server = http.server.ThreadingHTTPServer((self.host, 0),
                                                      _DashboardPage)
        self.origin = 'http://%s:%d' % (self.host, self.server.server_port)
        thread = threading.Thread(target=self.server.serve_forever,
                                  daemon=True)
        thread.start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)

    def url(self, console_page_url):
        return '%s/?%s' % (self.origin, urllib.parse.urlencode(
            {'console': console_page_url}))


class _DashboardPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        body = ('<!DOCTYPE html><title>Dashboard</title><h1>Instance '
                'console</h1><iframe id="console" title="Serial console" '
                'width="900" height="480" src="%s"></iframe>' % html.escape(
                    query.get('console', ['about:blank'])[0])).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/html; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # the console URL, token included, stays out of the output


def page_url(console_url):
    """The URL a person opens: the console URL with http(s)."""
    scheme, rest = console_url.split(':', 1)
    return {'ws': 'http', 'wss': 'https'}[scheme] + ':' + rest


def token_of(console_url):
    query = urllib.parse.urlsplit(console_url).query
    return urllib.parse.parse_qs(query)['token'][0]


class ConsolePage:
    """One browser tab on the console page, read as a person sees it."""

    def __init__(self, page, frame=None):
        """frame: the console page's frame, when a dashboard frames it."""
        self.page = page
        self.frame = frame or page.main_frame
        self.console_messages = []
        page.on('console', lambda message: self.console_messages.append(
            message.text))
        # The websockets' URLs, from before the page is opened.
        self.sockets = []
        page.on('websocket', lambda ws: self.sockets.append(ws.url))
        # Leaving a connected console asks first (beforeunload): agree.
        page.on('dialog', lambda dialog: dialog.accept())

    def screen(self):
        """The terminal's visible rows, one line each."""
        text = self.frame.evaluate(
            "() => Array.from(document.querySelectorAll('.xterm-rows > div'),"
            " row => row.textContent).join('\\n')")
        return text.replace('\xa0', ' ')

    def wait_for_screen(self, pattern, timeout=30):
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            match = regex.search(screen)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError('%r not on screen after %ss; screen:\n%s'
                                     % (pattern, timeout, screen))
            self.page.wait_for_timeout(200)

    def status(self):
        return self.frame.evaluate(
            "() => [document.body.dataset.state, document.body.dataset.reason,"
            " document.getElementById('status-text').textContent]")

    def wait_for_state(self, state, timeout=30):
        try:
            self.frame.wait_for_function(
                's => document.body.dataset.state === s', arg=state,
                timeout=timeout * 1000)
        except sync_api.TimeoutError:
            raise AssertionError('page not %s after %ss; status: %r'
                                 % (state, timeout, self.status()))
        return self.status()

    def size(self):
        """Columns and rows, as the page's status bar shows them."""
        cols, rows = self.frame.inner_text('#size').split('\u00d7')
        return int(cols), int(rows)

    def type_line(self, text):
        self.page.keyboard.type(text)
        self.page.keyboard.press('Enter')

    def screenshot(self, name):
        if self.page.is_closed():
            return  # a test that closed it took its own
        os.makedirs(OUTPUT_DIR, exist_ok=True)
        self.page.screenshot(path=os.path.join(OUTPUT_DIR, name + '.png'))


class CuttableLink(LoopbackFront):
    """A TCP forwarder between the browser and the proxy whose
    connections can be cut: cut() resets every one of them (RST, no
    close frame), as a network that drops does, and goes on forwarding
    new ones."""

    def _setUp(self):
        self._pairs = set()
        self._down_until = 0.0
        self._serve()

    def url(self, console_url):
        """The page's URL of a console URL, through this link."""
        parts = urllib.parse.urlsplit(page_url(console_url))
        return parts._replace(netloc='127.0.0.1:%d' % self.port).geturl()

    def cut(self, down_for=0.0):
        """Reset every connection through the link now, and new ones for
        down_for seconds (the network stays down); returns how many
        there were."""
        return asyncio.run_coroutine_threadsafe(
            self._cut(down_for), self.loop).result(10)

    async def _cut(self, down_for=0.0):
        self._down_until = self.loop.time() + down_for
        pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for writer in pair:
                sock = writer.get_extra_info('socket')
                if sock is not None:
                    # Linger 0: close sends RST, as a dropped link ends.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack('ii', 1, 0))
                writer.transport.abort()
        return len(pairs)

    async def _shutdown(self):
        await self._cut()
        await super()._shutdown()

    async def _client(self, reader, writer):
        if self.loop.time() < self._down_until:
            writer.get_extra_info('socket').setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                '127.0.0.1', self.backend_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer),
                                 self._pipe(up_reader, writer),
                                 return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the fixture stopping
        self._pairs.discard(pair)
