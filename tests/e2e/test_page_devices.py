"""The console page on a phone and with a user's settings, in Chromium.

A phone is Chromium's mobile emulation: a phone's viewport, touch, no
mouse; keys come as a phone's on-screen keyboard sends them (text input
events, Enter), the rest from the page's key bar. Against the real guest
shell, as test_console_page.py. Screenshots of a phone and of a desktop,
dark and light, go to test-output/e2e/; phone-dark.png and
desktop-light.png are README.rst's doc/console-page-phone.png and
doc/console-page-light.png.
"""

import hashlib
import random
import time

from testtools import content

from tests.e2e import fixtures as e2e_fixtures
from tests.e2e import test_console_page as tcp
from tests.harness import fixtures as func_fixtures

PHONE = {'viewport': {'width': 393, 'height': 760},
         'device_scale_factor': 2, 'is_mobile': True, 'has_touch': True}
DESKTOP_VIEWPORT = {'width': 1024, 'height': 560}
# Send text of more than 200 KB, multi-byte characters included, in lines
# far below the tty's 4096-byte line limit.
SEND_TEXT_LINES = 2600
SEND_TEXT_TIMEOUT = 300


def key(name):
    return '#key-bar button[data-key="%s"]' % name


CTRL = '#key-bar button[data-modifier="ctrl"]'


class PageDevicesTest(tcp.ConsolePageTestCase):

    def open_phone(self, name, url=None, permissions=()):
        url = url or self.world.console_url()
        context = self.world.browser.new_context(
            permissions=list(permissions), **PHONE)
        self.addCleanup(context.close)
        console = e2e_fixtures.ConsolePage(context.new_page())
        self.addCleanup(console.screenshot, name)
        console.page.goto(e2e_fixtures.page_url(url))
        console.wait_for_state('connected')
        return console

    def fresh_prompt(self, console, name):
        # Typed as a phone's keyboard types: text, then Enter.
        console.page.tap(CTRL)
        console.page.keyboard.insert_text('c')
        probe, expected = self.marker(name, 0)
        self.phone_line(console, 'echo ' + probe)
        console.wait_for_screen('^%s$' % expected)

    @staticmethod
    def phone_line(console, text):
        console.page.keyboard.insert_text(text)
        console.page.keyboard.press('Enter')

    def terminal_looks(self, console):
        """The terminal's font size, text colour and background."""
        return console.page.evaluate(
            "() => { const rows = getComputedStyle(document.querySelector("
            "'.xterm-rows')); return [rows.fontSize, rows.color, "
            "getComputedStyle(document.querySelector('.xterm-viewport'))"
            ".backgroundColor]; }")

    def test_phone_key_bar_ctrl_then_c_interrupts_sleep(self):
        console = self.open_phone('phone-ctrl-c')
        page = console.page
        self.assertTrue(page.evaluate(
            "document.body.classList.contains('touch')"))
        self.assertTrue(page.is_visible('#key-bar'))
        # The keyboard help is for keyboards. SysRq is on the bar: this
        # URL is an admin's, whose token allows it.
        self.assertFalse(page.is_visible('footer.help'))
        page.wait_for_selector('#key-sysrq', state='visible')
        page.tap('#key-sysrq')
        page.wait_for_selector('#sysrq-menu', state='visible')
        page.tap('#key-sysrq')
        page.wait_for_selector('#sysrq-menu', state='hidden')
        self.fresh_prompt(console, 'phone')
        self.phone_line(console, 'sleep 100')
        time.sleep(1)
        started = time.monotonic()
        page.tap(CTRL)
        self.assertEqual('true', page.get_attribute(CTRL, 'aria-pressed'))
        page.keyboard.insert_text('c')
        # Ctrl lets go after one key.
        self.assertEqual('false', page.get_attribute(CTRL, 'aria-pressed'))
        check, expected = self.marker('rc', 1)
        self.phone_line(console, 'echo %s-$?' % check)
        console.wait_for_screen('^%s-130' % expected, timeout=20)
        self.assertLess(time.monotonic() - started, 30)
        # The terminal kept the focus: the on-screen keyboard stays open.
        self.assertTrue(page.evaluate(
            "document.activeElement.classList.contains("
            "'xterm-helper-textarea')"))
        self.phone_line(console, 'clear; uname -a')
        console.wait_for_screen(r'^Linux serialproxy-guest')
        console.screenshot('phone-dark')

    def test_phone_key_bar_esc_tab_and_arrows_reach_the_guest(self):
        console = self.open_phone('phone-keys')
        self.fresh_prompt(console, 'phone-keys')
        go, go_expected = self.marker('raw', 1)
        # In raw mode the tty passes every byte through: od shows them.
        # Six bytes a line: a phone's screen is narrow.
        self.phone_line(console, 'stty raw -echo; echo %s; head -c 24 > '
                                 '/tmp/keys; stty sane; od -An -tx1 -w6 '
                                 '/tmp/keys' % go)
        console.wait_for_screen('^%s' % go_expected)
        page = console.page
        for name in ('esc', 'tab', 'up', 'down', 'right', 'left', '|', '/',
                     '-', '~'):
            page.tap(key(name))
        page.tap(CTRL)
        page.tap(key('left'))
        console.wait_for_screen(
            # raw mode: the first line starts where echo left the cursor
            r' 1b 09 1b 5b 41 1b\n 5b 42 1b 5b 43 1b\n 5b 44 7c 2f 2d 7e\n'
            r' 1b 5b 31 3b 35 44$', timeout=20)

    def test_phone_light_theme_and_watch_only_has_no_key_bar(self):
        writer = self.open_phone(
            'phone-light', url=self.world.console_url() + '&theme=light',
            permissions=tcp.CLIPBOARD)
        self.assertEqual('light', writer.page.evaluate(
            'document.body.dataset.theme'))
        self.fresh_prompt(writer, 'phone-light')
        writer.page.keyboard.insert_text('ls /')
        writer.page.keyboard.press('Enter')
        writer.wait_for_screen(r'\bproc\b')
        writer.screenshot('phone-light')
        # Select: the screen's text in a box a finger can select in.
        page = writer.page
        page.tap('#key-select')
        page.wait_for_selector('#select-text', state='visible')
        self.assertIn('phone-light-', page.input_value(
            '#select-text-content'))
        page.tap('#select-text button[value="close"]')
        # Paste: Send text, with the clipboard's text when allowed.
        probe, expected = self.marker('touch-paste', 1)
        page.evaluate('t => navigator.clipboard.writeText(t)',
                      'echo %s\n' % probe)
        page.tap('#key-paste')
        page.wait_for_function(
            "() => document.getElementById('send-text-input').value !== ''")
        page.tap('#send-text-go')
        page.wait_for_selector('#send-text-status[data-state="done"]')
        page.tap('#send-text-close')
        writer.wait_for_screen('^%s$' % expected)
        # A spectator cannot type: no key bar, no Send text, no Fit.
        watcher = self.open_phone(
            'phone-watching', url=self.world.console_url() + '&mode=view')
        watcher.page.wait_for_function(
            "() => document.body.dataset.reason === 'watching'")
        for selector in ('#key-bar', '#send-text-open', '#fit-guest'):
            self.assertFalse(watcher.page.is_visible(selector), selector)

    def test_query_sets_font_size_and_theme(self):
        url = self.world.console_url()
        console, _ = self.open_console(
            'desktop-light', viewport=DESKTOP_VIEWPORT,
            url=url + '&font_size=22&theme=light')
        console.wait_for_state('connected')
        # The page's settings are its own: the proxy hears none of them
        # (it asks for the stream's offsets, to resume a reconnect).
        self.assertEqual([url + '&offsets=1'], console.sockets)
        size, colour, background = self.terminal_looks(console)
        self.assertEqual('22px', size)
        self.assertEqual('rgb(29, 32, 35)', colour)
        self.assertEqual('rgb(251, 251, 250)', background)
        # The bars follow the theme, readable still.
        self.assertEqual('rgb(236, 238, 240)', console.page.evaluate(
            "getComputedStyle(document.querySelector('header'))"
            ".backgroundColor"))
        console.page.keyboard.press('Control+C')
        probe, expected = self.marker('light', 0)
        console.type_line('clear; uname -a; echo ' + probe)
        console.wait_for_screen('^%s$' % expected)
        console.screenshot('desktop-light')
        console.page.context.close()  # the console is free again
        # The defaults elsewhere: the dark screenshot to compare.
        dark, _ = self.open_connected('desktop-dark',
                                      viewport=DESKTOP_VIEWPORT)
        self.assertEqual(['15px', 'rgb(230, 230, 230)', 'rgb(16, 18, 20)'],
                         self.terminal_looks(dark))
        dark.type_line('clear; uname -a; echo ' + probe)
        dark.wait_for_screen('^%s$' % expected)

    def test_setting_from_the_menu_survives_a_reload(self):
        requests = []
        console, _ = self.open_connected('settings-menu',
                                         viewport=DESKTOP_VIEWPORT)
        page = console.page
        page.on('request', lambda request: requests.append(request.url))
        page.click('#settings-open')
        page.wait_for_selector('#settings-menu', state='visible')
        page.fill('#setting-fontSize', '19')
        page.press('#setting-fontSize', 'Tab')
        page.select_option('#setting-theme', 'high-contrast')
        page.select_option('#setting-cursorStyle', 'underline')
        self.assertEqual(['19px', 'rgb(255, 255, 255)', 'rgb(0, 0, 0)'],
                         self.terminal_looks(console))
        console.screenshot('settings-menu-open')
        page.keyboard.press('Escape')
        self.assertFalse(page.is_visible('#settings-menu'))
        page.reload()
        console.wait_for_state('disconnected')  # the token went with load
        self.assertEqual(['19px', 'rgb(255, 255, 255)', 'rgb(0, 0, 0)'],
                         self.terminal_looks(console))
        self.assertEqual('high-contrast', page.evaluate(
            'document.body.dataset.theme'))
        page.click('#settings-open')
        self.assertEqual('underline', page.input_value(
            '#setting-cursorStyle'))
        # Kept in the browser, never sent to the proxy.
        for request_url in requests:
            self.assertNotIn('high-contrast', request_url)
            self.assertNotIn('19', request_url.split('?', 1)[-1])

    def test_send_text_of_200_kb_arrives_byte_for_byte(self):
        console, _ = self.open_connected('send-text',
                                         viewport=DESKTOP_VIEWPORT)
        rnd = random.Random(self.base)
        alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 \u00e9\u20ac\u4e2d'
        lines = ['%05d %s \U0001f600' % (
            i, ''.join(rnd.choices(alphabet, k=70)))
            for i in range(SEND_TEXT_LINES)]
        text = '\n'.join(lines) + '\n'
        data = text.encode()
        self.assertGreater(len(data), 200 * 1024)
        go, go_expected = self.marker('cat', 0)
        # Without echo the guest does not send the 200 KB back.
        console.type_line('stty -echo; echo %s; cat > /tmp/pasted.txt'
                          % go)
        console.wait_for_screen('^%s$' % go_expected)
        page = console.page
        page.click('#send-text-open')
        # As a paste into the box puts it there (typing 200 KB into a
        # text area is what takes a person, and Playwright, long).
        page.eval_on_selector('#send-text-input', '(box, t) => { '
                              'box.value = t; }', text)
        self.assertEqual('128', page.input_value('#send-chunk'))
        self.assertEqual('20', page.input_value('#send-delay'))
        started = time.monotonic()
        page.click('#send-text-go')
        page.wait_for_selector('#send-text-status[data-sha256]',
                               timeout=SEND_TEXT_TIMEOUT * 1000)
        elapsed = time.monotonic() - started
        page_digest = page.get_attribute('#send-text-status', 'data-sha256')
        self.assertIn('Sent %d bytes.' % len(data),
                      page.inner_text('#send-text-status'))
        page.click('#send-text-close')
        # What is typed as the box closes goes to the terminal, not to
        # the button that opened the box (Chromium gives that button the
        # focus back and fires 'close' a task later).
        self.assertTrue(page.evaluate(
            "document.activeElement.classList"
            ".contains('xterm-helper-textarea')"))
        page.keyboard.press('Control+D')
        done, done_expected = self.marker('sent', 1)
        console.type_line('stty echo; echo %s; md5sum /tmp/pasted.txt; '
                          'sha256sum /tmp/pasted.txt' % done)
        # md5sum as the guest computes it, against this test's own digest;
        # the page's digest is SHA-256 (SubtleCrypto has no MD5), against
        # the guest's sha256sum.
        # (The prompt before the marker: echo was still off.)
        console.wait_for_screen('%s\n%s  /tmp/pasted.txt\n%s  '
                                '/tmp/pasted.txt$' % (
                                    done_expected,
                                    hashlib.md5(data).hexdigest(),
                                    page_digest), timeout=30)
        self.assertEqual(hashlib.sha256(data).hexdigest(), page_digest)
        self.addDetail('send-text', content.text_content(
            '%d bytes reached the guest in %.1fs' % (len(data), elapsed)))
        self.assertEqual('connected', console.status()[0])

    def interrupt_until_the_shell_answers(self, console, attempts=5):
        """Ctrl+C and stty sane until an echo comes back. Stop ends the
        page's sending; the chunks it sent before may still be on their
        way through a busy guest's slow serial line, and what arrives
        after an interrupt lands on the shell's command line."""
        for attempt in range(attempts):
            console.page.keyboard.press('Control+C')
            probe, expected = self.marker('sane', attempt)
            console.type_line('stty sane; echo %s' % probe)
            try:
                console.wait_for_screen('^%s$' % expected, timeout=10)
                return
            except AssertionError:
                if attempt == attempts - 1:
                    raise

    def test_large_paste_asks_and_stop_stops_sending(self):
        console, _ = self.open_connected('send-text-stop',
                                         viewport=DESKTOP_VIEWPORT,
                                         permissions=tcp.CLIPBOARD)
        page = console.page
        text = ''.join('%06d %s\n' % (i, 'x' * 50) for i in range(4000))
        go, go_expected = self.marker('stop', 0)
        console.type_line('stty -echo; echo %s; cat > /tmp/stopped.txt'
                          % go)
        console.wait_for_screen('^%s$' % go_expected)
        page.evaluate('t => navigator.clipboard.writeText(t)', text)
        page.keyboard.press('Control+Shift+V')
        # More than 1 KB through the clipboard: the page asks first.
        page.wait_for_selector('#paste-ask', state='visible')
        self.assertIn('KB', page.inner_text('#paste-ask-text'))
        page.click('#paste-paced')
        page.wait_for_selector('#send-text', state='visible')
        page.wait_for_function(
            "() => document.getElementById('send-progress').value > 2000")
        page.click('#send-text-stop')
        status = page.inner_text('#send-text-status')
        self.assertRegex(status, r'^Stopped after \d+ of %d bytes\.$'
                         % len(text))
        sent = int(status.split()[2])
        self.assertLess(sent, len(text))
        self.assertTrue(page.is_visible('#send-text-go'))
        page.click('#send-text-close')
        self.interrupt_until_the_shell_answers(console)

        def guest_size():
            probe, expected = self.marker('size', random.randrange(10 ** 6))
            console.type_line('echo %s-$(wc -c < /tmp/stopped.txt)' % probe)
            return int(console.wait_for_screen(
                '^%s-(\\d+)$' % expected).group(1))
        first = guest_size()
        time.sleep(2)
        # Nothing more arrives: what was sent, less the last half line.
        self.assertEqual(first, guest_size())
        self.assertLessEqual(first, sent)
        self.assertGreater(first, 1000)

    def test_multibyte_text_split_by_sleep_renders_right(self):
        console, _ = self.open_connected('utf8-split',
                                         viewport=DESKTOP_VIEWPORT)
        probe, expected = self.marker('utf8', 0)
        # Euro sign, e acute and a 4-byte emoji, each cut in two by a
        # sleep: the halves reach the page in different frames.
        console.type_line(
            "echo %s; printf 'A\\342\\202'; sleep 1; printf '\\254 B\\303';"
            " sleep 1; printf '\\251 C\\360\\237'; sleep 1; printf "
            "'\\230\\200 D\\n'" % probe)
        console.wait_for_screen('^%s$' % expected)
        console.wait_for_screen('^A\u20ac B\u00e9 C\U0001f600 ?D *$',
                                timeout=20)
        self.assertNotIn('\ufffd', console.screen())
        # Bytes that are no UTF-8 still show, as U+FFFD.
        bad, bad_expected = self.marker('bad', 1)
        console.type_line("printf 'x\\377y\\n'; echo %s" % bad)
        console.wait_for_screen('^x\ufffdy\n%s$' % bad_expected)

    def test_fit_types_the_size_only_when_pressed(self):
        console, _ = self.open_connected('fit', viewport=DESKTOP_VIEWPORT)
        probe, expected = self.marker('fit', 0)
        console.type_line('stty rows 10 cols 33; echo %s' % probe)
        console.wait_for_screen('^%s$' % expected)
        # A resize tells the guest nothing by itself.
        console.page.set_viewport_size({'width': 800, 'height': 500})
        console.page.wait_for_timeout(1000)
        before, before_expected = self.marker('fit', 1)
        console.type_line('echo %s; stty size' % before)
        console.wait_for_screen('^%s\n10 33$' % before_expected)
        cols, rows = console.size()
        console.page.click('#fit-guest')
        after, after_expected = self.marker('fit', 2)
        console.type_line('echo %s; stty size' % after)
        console.wait_for_screen('^%s\n%d %d$' % (after_expected, rows, cols))
        func_fixtures.wait_for(
            lambda: console.page.evaluate(
                "document.activeElement.classList.contains("
                "'xterm-helper-textarea')"),
            5, 'the terminal to have the focus again')
