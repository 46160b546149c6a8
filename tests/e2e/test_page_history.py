"""The console page and the console's history, in Chromium.

A guest whose serial output virtlogd keeps in a console log, served by
serialproxy-all: the page's Download log against the history API, search
in a long scrollback, and a page whose connection drops while the guest
prints, resuming where it was.
"""

import base64
import json
import re
import time

from testtools import content

from tests.e2e import fixtures as e2e_fixtures
from tests.e2e import test_console_page as tcp
from tests.e2e import test_page_devices
from tests.harness import fixtures as func_fixtures

SETTINGS_KEY = 'serialproxy-console-settings'
# Lines printed after the word search must find.
SEARCH_DEPTH = 5000


class PageHistoryTest(tcp.ConsolePageTestCase):
    console_log = True
    # Lines the guest prints while the page's connection is cut.
    resume_lines = 300

    def open_with_scrollback(self, name, url=None, scrollback=20000,
                             **options):
        """A page whose stored settings keep a long scrollback."""
        context = self.world.browser.new_context(
            viewport={'width': 1024, 'height': 640}, **options)
        self.addCleanup(context.close)
        context.add_init_script(
            'window.localStorage.setItem(%s, %s);' % (
                json.dumps(SETTINGS_KEY),
                json.dumps(json.dumps({'scrollback': scrollback}))))
        console = e2e_fixtures.ConsolePage(context.new_page())
        self.addCleanup(console.screenshot, name)
        console.page.goto(url or e2e_fixtures.page_url(
            self.world.console_url()))
        console.wait_for_state('connected')
        console.page.keyboard.press('Control+C')
        probe, expected = self.marker('ready', 0)
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)
        return console

    def api_history(self):
        """The whole kept history, paged through the API."""
        data, start = b'', 0
        while True:
            status, body = self.world.deployment.api_request(
                'GET', '/v2.1/servers/%s/serial-console/output?start=%d'
                % (self.world.guest.uuid, start))
            self.assertEqual(200, status, body)
            page = json.loads(body)['serial_console_output']
            chunk = base64.b64decode(page['data'])
            if not chunk:
                return data
            data += chunk
            start = page['next']

    def buffer_lines(self, console):
        """The terminal's scrollback and screen, as the page's Select
        box shows them (its last 1,000 lines)."""
        console.page.evaluate(
            "document.getElementById('key-select').click()")
        text = console.page.input_value('#select-text-content')
        console.page.evaluate("document.getElementById('select-text')"
                              ".close()")
        return text.split('\n')

    def test_download_log_saves_what_the_history_api_answers(self):
        console = self.open_with_scrollback('download-log')
        probe, expected = self.marker('log', 0)
        expected = expected.split('-', 1)[1]
        # Bytes of every kind: UTF-8, a tab, an escape sequence.
        console.type_line("printf '%%s \\342\\202\\254\\t\\033[1mbold"
                          "\\033[0m\\n' %s" % probe.split('-', 1)[1])
        console.wait_for_screen('^%s \u20ac' % expected)

        def logged():
            with open(self.world.console_log_path, 'rb') as f:
                return b'\x1b[0m\r\n' in f.read()
        func_fixtures.wait_for(logged, 10, 'the output in the console log')
        time.sleep(1)  # the prompt after it, too
        before = self.api_history()
        page = console.page
        self.assertTrue(page.is_visible('#download-log'))
        with page.expect_download() as download_info:
            page.click('#download-log')
        download = download_info.value
        self.assertEqual('console-%s.log' % self.world.guest.uuid,
                         download.suggested_filename)
        with open(download.path(), 'rb') as f:
            saved = f.read()
        after = self.api_history()
        self.assertEqual(before, after, 'the guest printed meanwhile')
        self.assertEqual(before, saved)
        self.assertIn(('%s \u20ac\t\x1b[1mbold\x1b[0m\r\n' % expected)
                      .encode(), saved)
        page.wait_for_function(
            "() => /^Console log saved/.test(document.getElementById("
            "'command-status').textContent)")
        # The token went in a header-carrying fetch, never a link, and
        # no log line of any service holds it.
        token = e2e_fixtures.token_of(console.sockets[0])
        self.assertNotIn(token, self.world.deployment.logs())
        self.assertIn('Console log of instance %s' % self.world.guest.uuid,
                      self.world.deployment.logs())
        self.addDetail('download', content.text_content(
            '%d bytes saved' % len(saved)))

    def test_search_finds_a_word_printed_5000_lines_back(self):
        console = self.open_with_scrollback('search')
        word = 'nd%d' % self.base
        # The typed command holds $((...)), never the word itself.
        console.type_line(
            'echo nd$((%d)) first; seq 1 %d; echo nd$((%d)) second; '
            'echo nd$((%d)) third' % (self.base, SEARCH_DEPTH, self.base,
                                      self.base))
        console.wait_for_screen('^%s third$' % word, timeout=120)
        page = console.page
        # Ctrl+Shift+F opens the search; the guest hears nothing of it.
        page.keyboard.press('Control+Shift+F')
        page.wait_for_selector('#search-bar', state='visible')
        self.assertEqual('search-input', page.evaluate(
            'document.activeElement.id'))
        page.keyboard.type(word)
        page.wait_for_function(
            "() => / of 3$/.test(document.getElementById('search-count')"
            ".textContent)")

        def current():
            page.wait_for_timeout(300)
            count = page.inner_text('#search-count')
            match = re.fullmatch(r'(\d) of 3', count)
            self.assertIsNotNone(match, count)
            return int(match.group(1))
        # Every match highlighted, the current one apart.
        # (drawn on the renderer's next frame after the count)
        page.wait_for_function(
            "() => document.querySelectorAll("
            "'.xterm-find-result-decoration').length >= 1")
        visits = []
        for _ in range(3):
            page.keyboard.press('Enter')
            visits.append(current())
            visits.append(console.screen())
        indexes = visits[0::2]
        self.assertEqual(3, len(set(indexes)), indexes)
        # The first, 5,000 lines up, is scrolled into view when found.
        first_at = indexes.index(1)
        self.assertRegex(visits[2 * first_at + 1],
                         r'(?m)^%s first$' % word)
        # The current match is the terminal's selection.
        self.assertGreaterEqual(page.locator(
            '.xterm-selection div').count(), 1)
        # Previous goes back, by key and by button.
        page.keyboard.press('Shift+Enter')
        self.assertEqual(indexes[1], current())
        page.click('#search-previous')
        self.assertEqual(indexes[0], current())
        page.click('#search-next')
        self.assertEqual(indexes[1], current())
        # Esc closes it, clears the highlights, gives the terminal back.
        page.keyboard.press('Escape')
        page.wait_for_selector('#search-bar', state='hidden')
        self.assertEqual(0, page.locator(
            '.xterm-find-result-decoration').count())
        probe, expected = self.marker('after-search', 0)
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)

    def test_search_by_touch_from_the_key_bar(self):
        context = self.world.browser.new_context(**test_page_devices.PHONE)
        self.addCleanup(context.close)
        console = e2e_fixtures.ConsolePage(context.new_page())
        self.addCleanup(console.screenshot, 'search-phone')
        console.page.goto(e2e_fixtures.page_url(self.world.console_url()))
        console.wait_for_state('connected')
        page = console.page
        word = 'tp%d' % self.base
        page.keyboard.insert_text('echo tp$((%d)); echo tp$((%d))'
                                  % (self.base, self.base))
        page.keyboard.press('Enter')
        console.wait_for_screen('^%s\n%s$' % (word, word))
        page.tap('#key-search')
        page.wait_for_selector('#search-bar', state='visible')
        page.keyboard.insert_text(word)
        page.wait_for_function(
            "() => document.getElementById('search-count').textContent "
            "=== '1 of 2'")
        # The on-screen keyboard opening takes rows from the terminal,
        # which clears xterm's selection: the current match stays where
        # it was (past the search addon's refresh, 200 ms after a
        # resize), and Next steps on from it rather than starting over.
        rows = console.size()[1]
        page.set_viewport_size({'width': test_page_devices.PHONE[
            'viewport']['width'], 'height': 460})
        page.wait_for_function(
            "r => !document.getElementById('size').textContent"
            ".endsWith('\u00d7' + r)", arg=rows)
        page.wait_for_timeout(600)
        self.assertEqual('1 of 2', page.inner_text('#search-count'))
        page.tap('#search-next')
        page.wait_for_function(
            "() => document.getElementById('search-count').textContent "
            "=== '2 of 2'")
        # The box keeps the focus: a phone's keyboard stays open.
        self.assertEqual('search-input', page.evaluate(
            'document.activeElement.id'))
        page.tap('#search-close')
        page.wait_for_selector('#search-bar', state='hidden')
        self.assertTrue(page.is_visible('#key-bar'))

    def test_dropped_connection_resumes_and_shows_every_line_once(self):
        """The page's connection cut (TCP resets, no close frame) while
        the guest prints: the page comes back by itself, or by
        Reconnect, and the terminal shows every line once."""
        link = self.useFixture(e2e_fixtures.CuttableLink(
            self.world.deployment.proxy_port))
        url = self.world.console_url()
        console = self.open_with_scrollback('resume',
                                            url=link.url(url))
        page = console.page
        tag = 'rs%d' % self.base
        console.type_line(
            'i=0; while [ $i -lt %d ]; do echo rs$((%d))-$i; i=$((i+1)); '
            'sleep 0.02; done; echo rs$((%d))-end'
            % (self.resume_lines, self.base, self.base))
        console.wait_for_screen('^%s-20$' % tag, timeout=60)
        # Cut: the page says so and reconnects by itself.
        self.assertGreaterEqual(link.cut(), 1)
        state = console.wait_for_state('disconnected')
        self.assertEqual('lost', state[1])
        self.assertIn('Reconnecting in', state[2])
        console.wait_for_state('connected', timeout=60)
        console.wait_for_screen('^%s-(1[0-9][0-9])$' % tag, timeout=60)
        # Cut again: Reconnect at once, by hand.
        self.assertGreaterEqual(link.cut(), 1)
        console.wait_for_state('disconnected')
        page.click('#reconnect')
        console.wait_for_state('connected', timeout=60)
        console.wait_for_screen('^%s-end$' % tag, timeout=120)
        page.wait_for_timeout(1000)
        lines = [line.rstrip() for line in self.buffer_lines(console)]
        printed = [line for line in lines if line.startswith(tag + '-')]
        expected = ['%s-%d' % (tag, i) for i in range(self.resume_lines)]
        self.assertEqual(expected + ['%s-end' % tag], printed)
        # The first session asked for offsets, the later ones resumed.
        self.assertIn('offsets=1', console.sockets[0])
        resumed = [u for u in console.sockets[1:] if 'resume=' in u]
        self.assertGreaterEqual(len(resumed), 2, console.sockets)
        self.assertEqual('connected', console.status()[0])

    def test_queries_in_resumed_history_are_not_answered(self):
        """A guest asks where the cursor is (ESC[6n) while the page is
        cut off: the page shows it as history on resuming, and sends the
        guest no answer to a question asked while nobody was there."""
        link = self.useFixture(e2e_fixtures.CuttableLink(
            self.world.deployment.proxy_port))
        console = self.open_with_scrollback(
            'history-query', url=link.url(self.world.console_url()))
        tag = 'cq%d' % self.base
        # Raw and silent, the guest asks, then reads for 6 s what comes
        # back: an answer would be its 6 or more bytes.
        console.type_line(
            "echo go$((%d)); stty raw -echo; sleep 0.4; "
            "printf 'asked\\033[6n'; "
            "timeout 6 dd bs=1 count=32 of=/tmp/answer 2>/dev/null; "
            "stty sane; echo; echo cq$((%d))-$(wc -c < /tmp/answer)"
            % (self.base, self.base))
        # Cut once the guest runs it (a cut drops the keys in flight,
        # Enter included) and before it asks; the network is down for
        # 2 s, so the page is back after the question.
        console.wait_for_screen('^go%d$' % self.base)
        self.assertGreaterEqual(link.cut(down_for=2), 1)
        console.wait_for_state('connected', timeout=60)
        match = console.wait_for_screen(r'^%s-(\d+)' % tag, timeout=60)
        self.assertEqual('0', match.group(1), console.screen())
        self.assertIn('resume=', console.sockets[-1])
        # Asked live, the same question is answered (the guest shell's
        # dd reads the page's report): the test can tell.
        console.type_line(
            "stty raw -echo; printf 'asked\\033[6n'; "
            "timeout 6 dd bs=1 count=32 of=/tmp/answer 2>/dev/null; "
            "stty sane; echo; echo cq$((%d+1))-$(wc -c < /tmp/answer)"
            % self.base)
        match = console.wait_for_screen(r'^cq%d-(\d+)' % (self.base + 1),
                                        timeout=60)
        self.assertGreaterEqual(int(match.group(1)), 6)
