"""The console page in headless Chromium against a real guest's shell.

Real parts only: serialproxy-all (or the four services over RabbitMQ
where an operator's tool or a proxy's death is part of the story), a QEMU
guest under libvirtd, Debian's Chromium. One guest and one deployment serve
every test of a class (a TCG boot is the slow part); each test opens its
own console URL and browser context, and closes them when done, so the
console is free for the next.
"""

import hashlib
import os
import random
import re
import signal
import time
import urllib.parse

from testtools import content

from tests.e2e import fixtures as e2e_fixtures
from tests.harness import fixtures as func_fixtures

CLIPBOARD = ['clipboard-read', 'clipboard-write']
# A paste of more than 64 KiB: lines of 61 bytes.
PASTE_LINES = 1100
PASTE_TIMEOUT = 60


class ConsolePageTestCase(func_fixtures.SharedWorldTestCase):
    separate_services = False
    world_config = None
    console_log = False

    @classmethod
    def make_world(cls):
        return e2e_fixtures.ConsoleWorld(
            separate=cls.separate_services, config=cls.world_config,
            console_log=cls.console_log)

    def setUp(self):
        super().setUp()
        # Markers the shell computes, so the typed command line never
        # matches the output we wait for, and no earlier test's output does.
        self.base = random.randrange(10000, 90000)

    def marker(self, name, offset):
        return '%s-$((%d+%d))' % (name, self.base, offset), \
            '%s-%d' % (name, self.base + offset)

    def open_console(self, name, url=None, viewport=None, permissions=(),
                     **context_options):
        """context_options: more of Playwright's new_context()'s."""
        url = url or self.world.console_url()
        context = self.world.browser.new_context(
            viewport=viewport or {'width': 1024, 'height': 640},
            permissions=list(permissions), **context_options)
        self.addCleanup(context.close)
        console = e2e_fixtures.ConsolePage(context.new_page())
        # Registered after context.close, so it runs before it: failures
        # get their screenshot too.
        self.addCleanup(console.screenshot, name)
        console.page.goto(e2e_fixtures.page_url(url))
        return console, url

    def open_connected(self, name, **kwargs):
        console, url = self.open_console(name, **kwargs)
        state, reason, text = console.wait_for_state('connected')
        self.assertTrue(text.startswith('Connected'), text)
        # A fresh prompt: earlier tests may have left a line half typed.
        console.page.keyboard.press('Control+C')
        probe, expected = self.marker('ready', 0)
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s' % expected)
        return console, url


class ConsolePageTest(ConsolePageTestCase):

    @classmethod
    def setUpClass(cls):
        # Two dashboards on hosts of their own: frame_ancestors lists
        # one. The world is the same one every test here uses.
        cls.dashboard = e2e_fixtures.Dashboard('127.0.0.2')
        cls.dashboard.setUp()
        cls.unlisted_dashboard = e2e_fixtures.Dashboard('127.0.0.3')
        cls.unlisted_dashboard.setUp()
        # The TLS front of test_page_works_behind_tls_and_a_path_prefix
        # is a trusted proxy on 127.0.0.1.
        cls.world_config = {'console': {
            'frame_ancestors': "'self', %s" % cls.dashboard.origin,
            'trusted_proxies': '127.0.0.1'}}
        try:
            super().setUpClass()
        except Exception:
            cls._stop_dashboards()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._stop_dashboards()

    @classmethod
    def _stop_dashboards(cls):
        cls.dashboard.cleanUp()
        cls.unlisted_dashboard.cleanUp()

    def open_dashboard(self, name, dashboard):
        """A browser tab on a dashboard framing a fresh console URL."""
        context = self.world.browser.new_context(
            viewport={'width': 1024, 'height': 640})
        self.addCleanup(context.close)
        page = context.new_page()
        messages, sockets = [], []
        page.on('console', lambda message: messages.append(message.text))
        page.on('websocket', lambda ws: sockets.append(ws.url))
        self.addCleanup(self._screenshot, page, name)
        url = e2e_fixtures.page_url(self.world.console_url())
        page.goto(dashboard.url(url))
        return page.wait_for_selector('iframe#console').content_frame(), \
            page, messages, sockets

    @staticmethod
    def _screenshot(page, name):
        os.makedirs(e2e_fixtures.OUTPUT_DIR, exist_ok=True)
        page.screenshot(path=os.path.join(e2e_fixtures.OUTPUT_DIR,
                                          name + '.png'))

    def test_uname_shows_the_guest_kernel_line(self):
        # This screenshot is the one in README.rst: a clean screen first.
        console, url = self.open_connected(
            'uname', viewport={'width': 900, 'height': 420})
        console.type_line('clear')
        console.wait_for_screen(r'\A\s*serialproxy-guest# \s*\Z')
        console.type_line('uname -a')
        console.wait_for_screen(r'^Linux serialproxy-guest \d+\.\d+\.\d+')
        token = e2e_fixtures.token_of(url)
        # The token left the address bar and never reached the console log.
        self.assertNotIn(token, console.page.url)
        self.assertNotIn('token=', console.page.url)
        for message in console.console_messages:
            self.assertNotIn(token, message)
        # Nor any service's log, though the page asked for assets with it.
        self.assertNotIn(token, self.world.deployment.logs())

    def test_operator_disconnect_through_the_api_offers_no_reconnect(self):
        console, url = self.open_connected('operator-disconnect-api')
        status, body = self.world.deployment.api_request(
            'DELETE', '/v2.1/servers/%s/serial-console/sessions'
            % self.world.guest.uuid)
        self.assertEqual(204, status, body)
        state, reason, text = console.wait_for_state('disconnected')
        self.assertEqual(('operator', 'Disconnected by an operator. Ask '
                                      'for a new console URL.'),
                         (reason, text))
        # One click must not undo the operator's decision.
        self.assertFalse(console.page.is_visible('#reconnect'))
        # Nor can the URL itself: its token went with the session.
        again, _ = self.open_console('operator-disconnect-api-again',
                                     url=url)
        state, reason, text = again.wait_for_state('disconnected')
        self.assertEqual('expired', reason)
        self.assertTrue(text.startswith('Token expired or invalid'), text)

    def test_page_is_self_contained_readable_and_keyboard_usable(self):
        requests = []
        context = self.world.browser.new_context(
            viewport={'width': 1024, 'height': 640})
        self.addCleanup(context.close)
        context.on('request', lambda request: requests.append(request.url))
        console = e2e_fixtures.ConsolePage(context.new_page())
        self.addCleanup(console.screenshot, 'keyboard-focus')
        url = e2e_fixtures.page_url(self.world.console_url())
        console.page.goto(url)
        console.wait_for_state('connected')
        origin = url.split('/?')[0] + '/'
        # Nothing from a CDN, no web fonts: every request stays home.
        self.assertGreater(len(requests), 4)
        for request_url in requests:
            self.assertTrue(request_url.startswith((origin, 'ws://', 'data:')),
                            request_url)
        self.assertIn(origin + 'vendor/xterm.js', requests)
        # The proxy's Content-Security-Policy lets the page do its work.
        for message in console.console_messages:
            self.assertNotIn('Content Security Policy', message)

        def contrast(fg, bg):
            def luminance(css):
                rgb = [int(v) / 255 for v in re.findall(r'\d+', css)[:3]]
                lin = [c / 12.92 if c <= 0.03928 else
                       ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
                return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
            light, dark = sorted([luminance(fg), luminance(bg)],
                                 reverse=True)
            return (light + 0.05) / (dark + 0.05)
        colours = console.page.evaluate(
            "() => { const s = e => getComputedStyle(document.querySelector("
            "e)); return [s('.xterm-rows').color, s('.xterm-viewport')"
            ".backgroundColor, s('#status-text').color, s('header')"
            ".backgroundColor]; }")
        # Light on dark, past WCAG AAA for the terminal, AA for the bar.
        self.assertGreater(contrast(colours[0], colours[1]), 7)
        self.assertGreater(contrast(colours[2], colours[3]), 4.5)

        # The terminal shows that it has the focus...
        focus_ring = "() => getComputedStyle(document.getElementById(" \
            "'terminal')).outlineColor"
        focused = console.page.evaluate(focus_ring)
        self.assertNotEqual('rgba(0, 0, 0, 0)', focused)
        # ...and a keyboard user can leave it, to a visibly focused button.
        console.page.keyboard.press('Control+Shift+F6')
        self.assertEqual('fullscreen', console.page.evaluate(
            'document.activeElement.id'))
        self.assertEqual('rgba(0, 0, 0, 0)',
                         console.page.evaluate(focus_ring))
        self.assertEqual('solid', console.page.evaluate(
            'getComputedStyle(document.activeElement).outlineStyle'))
        console.page.keyboard.press('Enter')
        console.page.wait_for_function('() => !!document.fullscreenElement')
        self.assertEqual('Exit full screen',
                         console.page.inner_text('#fullscreen'))
        # In full screen the keys are the terminal's again.
        probe, expected = self.marker('full', 0)
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)

    def test_page_works_behind_tls_and_a_path_prefix(self):
        front = self.useFixture(e2e_fixtures.TLSPrefixFront(
            self.world.deployment.proxy_port, prefix='/console'))
        token = e2e_fixtures.token_of(self.world.console_url())
        context = self.world.browser.new_context(ignore_https_errors=True)
        self.addCleanup(context.close)
        console = e2e_fixtures.ConsolePage(context.new_page())
        self.addCleanup(console.screenshot, 'tls-prefix')
        sockets = []
        console.page.on('websocket', lambda ws: sockets.append(ws.url))
        console.page.goto('https://127.0.0.1:%d/console/?token=%s'
                          % (front.port, token))
        console.wait_for_state('connected')
        self.assertEqual('https://127.0.0.1:%d/console/' % front.port,
                         console.page.url)
        self.assertEqual(['wss://127.0.0.1:%d/console/?token=%s&offsets=1'
                          % (front.port, token)], sockets)
        probe, expected = self.marker('tls', 0)
        console.page.keyboard.press('Control+C')
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)

    def test_reload_after_load_has_no_token_to_reuse(self):
        console, _ = self.open_connected('reload')
        console.page.reload()
        state, reason, text = console.wait_for_state('disconnected')
        self.assertEqual('no-token', reason)
        self.assertIn('No console token in this address', text)
        self.assertFalse(console.page.is_visible('#reconnect'))

    def test_quiet_guest_gets_a_hint_until_it_prints(self):
        console, _ = self.open_console('quiet-guest')
        console.wait_for_state('connected')
        console.page.wait_for_function(
            "() => document.body.dataset.reason === 'quiet'", timeout=10000)
        self.assertIn('press Enter for a prompt', console.status()[2])
        console.page.keyboard.press('Enter')
        console.page.wait_for_function(
            "() => document.body.dataset.reason === 'connected'",
            timeout=10000)
        self.assertEqual('Connected', console.status()[2])
        console.wait_for_screen('^serialproxy-guest# ')

    def test_ctrl_c_interrupts_sleep(self):
        console, _ = self.open_connected('ctrl-c')
        console.type_line('sleep 100')
        time.sleep(1)
        started = time.monotonic()
        console.page.keyboard.press('Control+C')
        check, expected = self.marker('rc', 0)
        console.type_line('echo %s-$?' % check)
        # 130: the shell saw sleep die of SIGINT, long before 100 seconds.
        console.wait_for_screen('^%s-130' % expected, timeout=20)
        self.assertLess(time.monotonic() - started, 30)

    def test_keys_reach_the_guest_as_their_bytes(self):
        console, _ = self.open_connected('keys')
        go, go_expected = self.marker('raw', 0)
        # In raw mode the tty passes every byte through: od shows them.
        console.type_line('stty raw -echo; echo %s; head -c 12 | od -An -tx1;'
                          ' stty sane' % go)
        console.wait_for_screen('^%s' % go_expected)
        for key in ('Escape', 'Tab', 'Control+W', 'Control+D', 'ArrowUp',
                    'Control+C', 'ArrowLeft', 'x'):
            console.page.keyboard.press(key)
        console.wait_for_screen(
            r'^\s*1b 09 17 04 1b 5b 41 03 1b 5b 44 78\s*$')

    def test_line_editing_keys_work_in_the_guest_shell(self):
        console, _ = self.open_connected('line-editing')
        # Ctrl-W deletes the word before the cursor.
        kept, kept_expected = self.marker('w', 1)
        added, added_expected = self.marker('z', 2)
        console.page.keyboard.type('echo %s dropme' % kept)
        console.page.keyboard.press('Control+W')
        console.type_line(added)
        console.wait_for_screen('^%s %s$' % (kept_expected, added_expected))
        # Tab completes a command name.
        tab, tab_expected = self.marker('t', 3)
        console.page.keyboard.type('ech')
        console.page.keyboard.press('Tab')
        console.type_line(' ' + tab)
        console.wait_for_screen('^%s$' % tab_expected)
        # Arrows move the cursor in the line editor.
        left, left_expected = self.marker('l', 4)
        tail = left[1:]
        console.page.keyboard.type('echo ' + tail)
        for _ in tail:
            console.page.keyboard.press('ArrowLeft')
        console.type_line(left[0])
        console.wait_for_screen('^%s$' % left_expected)
        # Ctrl-D is end of input for a program reading the terminal.
        eof, eof_expected = self.marker('d', 5)
        console.type_line('read x; echo %s-$?' % eof)
        time.sleep(1)
        console.page.keyboard.press('Control+D')
        console.wait_for_screen('^%s-1$' % eof_expected)

    def test_terminal_fills_the_window_and_follows_resizes(self):
        console, _ = self.open_connected(
            'size', viewport={'width': 760, 'height': 560})
        cols, rows = console.size()
        self.assertGreaterEqual(cols, 80)
        self.assertGreaterEqual(rows, 24)
        self.assertLess(cols, 90)
        self.assertLess(rows, 30)
        console.screenshot('size-80x24')
        console.page.set_viewport_size({'width': 1600, 'height': 900})
        console.page.wait_for_function(
            'c => !document.getElementById("size").textContent'
            '.startsWith(c + "\\u00d7")', arg=cols)
        big_cols, big_rows = console.size()
        self.assertGreater(big_cols, cols + 60)
        self.assertGreater(big_rows, rows + 10)
        self.assertEqual('%d\u00d7%d' % (big_cols, big_rows),
                         console.page.inner_text('#size'))
        # The grid fills the space the page gives it: what is left over is
        # less than one cell, besides the padding (2 x 4px) and xterm.js's
        # scrollbar (14px).
        box = console.page.evaluate(
            "() => { const c = document.getElementById('terminal')"
            ".getBoundingClientRect(); const s = document.querySelector("
            "'.xterm-screen').getBoundingClientRect(); return [c.width, "
            "c.height, s.width, s.height]; }")
        cell_w, cell_h = box[2] / big_cols, box[3] / big_rows
        self.assertLess(box[0] - box[2], cell_w + 8 + 14 + 1)
        self.assertLess(box[1] - box[3], cell_h + 8 + 1)

        # A serial line carries no size: the guest keeps what it had until
        # told. Told what the page shows, its programs use the whole width.
        probe, expected = self.marker('size', 0)
        console.type_line('echo %s; stty size' % probe)
        # busybox's stty reports an unset (0x0) size as an error.
        before = console.wait_for_screen(
            r'^%s\n(stty: standard input|(\d+) (\d+))$' % expected)
        self.assertNotEqual((str(big_rows), str(big_cols)),
                            before.groups()[1:])
        tooltip = console.page.get_attribute('#size', 'title')
        command = re.search(r'stty rows \d+ cols \d+', tooltip).group(0)
        self.assertEqual('stty rows %d cols %d' % (big_rows, big_cols),
                         command)
        after, after_expected = self.marker('size', 1)
        console.type_line('%s; echo %s; stty size' % (command, after))
        console.wait_for_screen(
            r'^%s\n%d %d$' % (after_expected, big_rows, big_cols))
        console.type_line("printf '%%0%dd|\\n' 0" % (big_cols - 1))
        console.wait_for_screen(r'^0{%d}\|$' % (big_cols - 1))
        console.screenshot('size-full-screen')

    def test_copy_on_select_and_paste(self):
        console, _ = self.open_connected('copy-paste',
                                         permissions=CLIPBOARD)
        probe, expected = self.marker('copied', 0)
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)
        # Double-click the output word, as a person would.
        cols, rows = console.size()
        row = console.screen().split('\n').index(expected)
        screen = console.page.locator('.xterm-screen').bounding_box()
        cell_w = screen['width'] / cols
        cell_h = screen['height'] / rows
        x, y = screen['x'] + cell_w * 2.5, screen['y'] + cell_h * (row + 0.5)
        console.page.mouse.dblclick(x, y)
        func_fixtures.wait_for(
            lambda: console.page.evaluate('navigator.clipboard.readText()')
            == expected, 5, 'the selection in the clipboard')

        pasted, pasted_expected = self.marker('pasted', 1)
        console.page.evaluate('t => navigator.clipboard.writeText(t)',
                              'echo %s\n' % pasted)
        console.page.keyboard.press('Control+Shift+V')
        console.wait_for_screen('^%s$' % pasted_expected)

    def test_paste_of_64_kb_reaches_the_guest_whole(self):
        # More than 64 KiB in one paste: xterm.js sends a paste as one
        # websocket message, which the proxy must relay whole (client
        # frames over ~4 KB used to stall). Lines of 61 bytes stay far
        # below the tty's 4096-byte line limit.
        console, _ = self.open_connected('paste-64k',
                                         permissions=CLIPBOARD)
        rnd = random.Random(self.base)
        alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
        lines = ['%05d %s' % (i, ''.join(rnd.choices(alphabet, k=54)))
                 for i in range(PASTE_LINES)]
        text = '\n'.join(lines) + '\n'
        self.assertGreater(len(text), 64 * 1024)
        # The tty turns the CR xterm.js sends for each newline into LF.
        digest = hashlib.md5(text.encode()).hexdigest()
        go, go_expected = self.marker('paste', 0)
        done, done_expected = self.marker('pasted', 1)
        # Without echo the guest does not send the 64 KiB back.
        console.type_line(
            'stty -echo; echo %s; head -n %d > /tmp/paste; stty echo; '
            'echo %s-$(wc -l < /tmp/paste); md5sum /tmp/paste'
            % (go, PASTE_LINES, done))
        console.wait_for_screen('^%s$' % go_expected)
        console.page.evaluate('t => navigator.clipboard.writeText(t)', text)
        started = time.monotonic()
        console.page.keyboard.press('Control+Shift+V')
        # A paste this large: the page asks whether to pace it. At once.
        console.page.click('#paste-now')
        console.wait_for_screen('^%s-%d$' % (done_expected, PASTE_LINES),
                                timeout=PASTE_TIMEOUT)
        elapsed = time.monotonic() - started
        console.wait_for_screen('^%s  /tmp/paste$' % digest)
        self.addDetail('paste', content.text_content(
            '%d bytes in %d lines reached the guest in %.1fs'
            % (len(text), PASTE_LINES, elapsed)))
        self.assertEqual('connected', console.status()[0])

    def test_console_works_framed_by_a_listed_dashboard(self):
        frame, page, messages, sockets = self.open_dashboard(
            'framed-listed', self.dashboard)
        console = e2e_fixtures.ConsolePage(page, frame=frame)
        state, reason, text = console.wait_for_state('connected')
        self.assertTrue(text.startswith('Connected'), text)
        # The page's own origin opened the websocket, inside the frame.
        self.assertEqual(1, len(sockets))
        frame.click('#terminal')
        page.keyboard.press('Control+C')
        probe, expected = self.marker('framed', 0)
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)
        # The frame has no allow="fullscreen": no button that cannot work.
        self.assertFalse(frame.is_visible('#fullscreen'))
        for message in messages:
            self.assertNotIn('Content Security Policy', message)

    def test_unlisted_dashboard_cannot_frame_the_console(self):
        frame, page, messages, sockets = self.open_dashboard(
            'framed-unlisted', self.unlisted_dashboard)
        deadline = time.monotonic() + 30
        while not any('frame-ancestors' in m for m in messages):
            self.assertLess(time.monotonic(), deadline, messages)
            page.wait_for_timeout(200)
        violation, = [m for m in messages if 'frame-ancestors' in m]
        self.assertIn("Content Security Policy directive: \"frame-ancestors "
                      "'self' %s\"" % self.dashboard.origin, violation)
        # Chromium shows its error page instead: the console never ran.
        self.assertTrue(frame.url.startswith('chrome-error://'), frame.url)
        self.assertIsNone(frame.query_selector('#terminal'))
        self.assertEqual([], sockets)

    def test_listed_dashboard_may_open_the_websocket_itself(self):
        # A dashboard with its own terminal sends its own Origin.
        def open_websocket(dashboard):
            context = self.world.browser.new_context()
            self.addCleanup(context.close)
            page = context.new_page()
            page.goto(dashboard.url('about:blank'))
            return page.evaluate("""url => new Promise(done => {
                const ws = new WebSocket(url, ['binary']);
                ws.onopen = () => { done('open ' + ws.protocol); };
                ws.onerror = () => done('refused');
            })""", self.world.console_url())

        def origin_refusals():
            return self.world.deployment.logs().count(
                ': 403 Origin not allowed')
        before = origin_refusals()
        self.assertEqual('refused', open_websocket(self.unlisted_dashboard))
        self.assertEqual(before + 1, origin_refusals())
        self.assertEqual('open binary', open_websocket(self.dashboard))

    def test_second_browser_sees_console_in_use(self):
        first, _ = self.open_connected('in-use-first')
        second, _ = self.open_console('in-use-second')
        state, reason, text = second.wait_for_state('disconnected')
        self.assertEqual('in-use', reason)
        self.assertRegex(text, r'^Console in use since \d{4}-\d\d-\d\dT')
        self.assertTrue(second.page.is_visible('#reconnect'))
        # The first browser keeps its console.
        probe, expected = self.marker('still', 0)
        first.type_line('echo ' + probe)
        first.wait_for_screen('^%s$' % expected)
        self.assertEqual('connected', first.status()[0])


class OperatorDisconnectTest(ConsolePageTestCase):
    """The four services over RabbitMQ: serialproxy-manage reaches them."""
    separate_services = True

    def test_operator_disconnect_shows_why_and_offers_no_reconnect(self):
        console, _ = self.open_connected('operator-disconnect')
        self.world.deployment.run('serialproxy-manage', 'sessions',
                                  'disconnect', self.world.guest.uuid)
        state, reason, text = console.wait_for_state('disconnected')
        self.assertEqual('operator', reason)
        self.assertEqual('Disconnected by an operator. Ask for a new '
                         'console URL.', text)
        console.screenshot('operator-disconnect-message')
        self.assertFalse(console.page.is_visible('#reconnect'))
        # The page is done: a new URL opens the console again.
        fresh = self.open_connected('operator-disconnect-new-url')[0]
        probe, expected = self.marker('back', 0)
        fresh.type_line('echo ' + probe)
        fresh.wait_for_screen('^%s$' % expected)


class ServerGoneTest(ConsolePageTestCase):
    """The server destroyed under the page: its own guest, since it ends."""

    def test_destroyed_server_is_told_as_the_console_going_away(self):
        console, _ = self.open_connected('server-gone')
        self.world.guest.virsh('destroy', self.world.guest.name)
        state, reason, text = console.wait_for_state('disconnected')
        self.assertEqual(('gone', 'The console went away: the server '
                                  'stopped or was deleted'), (reason, text))
        console.screenshot('server-gone-message')


class MaxSessionAgeTest(ConsolePageTestCase):
    """[console] max_session_age ends the page's session for good."""
    world_config = {'console': {'max_session_age': 10}}

    def test_old_session_is_closed_and_offers_no_reconnect(self):
        console, _ = self.open_connected('max-session-age')
        state, reason, text = console.wait_for_state('disconnected',
                                                     timeout=30)
        self.assertEqual('max-age', reason)
        self.assertTrue(text.startswith('The session reached the longest '
                                        'a console session may last'), text)
        # Said once: the reason asks for a new URL, the page adds nothing.
        self.assertEqual(1, text.count('new console URL'), text)
        self.assertFalse(console.page.is_visible('#reconnect'))


class ProxyGoneTest(ConsolePageTestCase):
    """Proxies of a four-process deployment stop and die under the page."""
    separate_services = True

    def start_proxy(self, label, port):
        """One more proxy, ready; the deployment's wait_ready() would fail
        on the proxies this test stopped on purpose."""
        deployment = self.world.deployment
        proc = deployment.start_proxy(label, port)
        log_path = [path for _, started, path in deployment.processes
                    if started is proc][0]

        def ready():
            if proc.poll() is not None:
                raise AssertionError('%s exited with %s'
                                     % (label, proc.returncode))
            with open(log_path, errors='replace') as f:
                return 'Ready: every service' in f.read()
        func_fixtures.wait_for(ready, 60, label + ' to serve')
        return proc

    def test_proxy_shutdown_and_death_are_told_apart(self):
        port = func_fixtures.free_port()
        url = self.world.console_url()
        parts = urllib.parse.urlsplit(url)
        url = parts._replace(netloc='127.0.0.1:%d' % port).geturl()
        proxy = self.start_proxy('proxy-b', port)
        console, _ = self.open_connected('proxy-gone', url=url)

        # A proxy that stops says so in its close frame (and must still
        # exit cleanly: checked at teardown).
        self.world.deployment.stop(proxy, signal.SIGTERM, wait=False)
        state, reason, text = console.wait_for_state('disconnected')
        self.assertEqual(('shutdown', 'Console proxy shutting down'),
                         (reason, text))
        proxy.wait(15)

        # Back on a new proxy at the same address with the same token.
        proxy = self.start_proxy('proxy-c', port)
        console.page.click('#reconnect')
        console.wait_for_state('connected')

        # A proxy that dies says nothing: the connection is lost, and
        # the page tries again by itself...
        func_fixtures.crash(proxy)
        state, reason, text = console.wait_for_state('disconnected')
        self.assertEqual('lost', reason)
        self.assertRegex(text, r'^Connection lost\. Reconnecting in 1 s')
        proxy.wait(15)
        # ...and while no proxy answers, the page says that too.
        console.page.wait_for_function(
            "() => document.getElementById('status-text').textContent"
            ".includes('cannot be reached.')", timeout=30000)
        state, reason, text = console.status()
        self.assertEqual(('disconnected', 'lost'), (state, reason))
        self.assertRegex(text, r'^Connection lost\. The console proxy '
                               r'cannot be reached\. Trying again in \d+ s')
        # Reconnect tries at once: clicked in the same task that sees
        # the page waiting (its own next try may have begun meanwhile,
        # and a click then has nothing to start), the page is connecting
        # when the click returns. (Chromium itself may hold the new
        # socket back a while after so many failed ones.)
        for _ in range(100):
            after = console.frame.evaluate(
                "() => document.body.dataset.state !== 'disconnected' ? "
                "null : (document.getElementById('reconnect').click(), "
                "document.body.dataset.state)")
            if after is not None:
                break
            console.page.wait_for_timeout(100)
        else:
            self.fail('the page never waited to try again')
        self.assertEqual('connecting', after)


class RecentOutputTest(ConsolePageTestCase):
    """A guest whose serial output virtlogd keeps in a console log.

    Four processes over RabbitMQ. Sessions idle out quickly: an idle
    session's page offers Reconnect (an operator's disconnect is final).
    """
    console_log = True
    separate_services = True
    idle_timeout = 10
    world_config = {'console': {'idle_timeout': idle_timeout}}

    def test_recent_output_is_shown_on_connect(self):
        first, _ = self.open_connected('recent-output-before')
        probe, expected = self.marker('recent', 0)
        first.type_line('echo ' + probe)
        first.wait_for_screen('^%s$' % expected)
        first.screenshot('recent-output-before')
        first.page.context.close()

        def logged():
            with open(self.world.console_log_path, 'rb') as f:
                return expected.encode() in f.read()
        func_fixtures.wait_for(logged, 10, 'the output in the console log')
        # A new browser, no key pressed: the screen is not blank.
        console, _ = self.open_console('recent-output-after')
        console.wait_for_state('connected')
        console.wait_for_screen('^%s$' % expected, 15)
        self.assertEqual('Connected', console.status()[2])

        # After a reconnect the recent output replaces the screen instead
        # of being repeated below it.
        state, reason, _ = console.wait_for_state('disconnected',
                                                  self.idle_timeout + 20)
        self.assertEqual('idle', reason)
        console.page.click('#reconnect')
        console.wait_for_state('connected')
        console.wait_for_screen('^%s$' % expected, 15)
        console.page.wait_for_timeout(1000)
        self.assertEqual(1, console.screen().split('\n').count(expected),
                         console.screen())


class TokenLifetimeTest(ConsolePageTestCase):
    """Short-lived tokens; sessions end with them, as Nova's option does."""
    ttl = 10
    world_config = {'consoleauth': {'token_ttl': ttl},
                    'console': {'enforce_session_timeout': True}}

    def test_expired_token_shows_its_message(self):
        url = self.world.console_url()
        time.sleep(self.ttl + 1)
        console, _ = self.open_console('token-expired', url=url)
        state, reason, text = console.wait_for_state('disconnected')
        self.assertEqual('expired', reason)
        self.assertEqual(
            'Token expired or invalid. Ask for a new console URL.', text)
        self.assertTrue(console.page.is_visible('#reconnect'))

    def test_session_ends_when_its_token_expires(self):
        console, _ = self.open_connected('token-expired-in-session')
        state, reason, text = console.wait_for_state(
            'disconnected', timeout=self.ttl + 20)
        self.assertEqual('expired', reason)
        self.assertEqual('Token expired. Ask for a new console URL.', text)
        # Reconnect with the same token: refused, and told why.
        console.page.click('#reconnect')
        console.page.wait_for_function(
            "() => document.getElementById('status-text').textContent"
            ".startsWith('Token expired or invalid')")
        self.assertEqual('disconnected', console.status()[0])
