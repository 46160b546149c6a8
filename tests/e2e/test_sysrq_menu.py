"""The console page's SysRq menu, in Chromium, against a real guest.

The page's URL is an admin's, so its token allows SysRq and NMI: the menu
lists both. A harmless key (h) is sent for real and the guest's kernel
answers on the console; the destructive ones (b, and the NMI) must ask
first, and are cancelled here: the guest is shared by the class.
"""

from tests.e2e import test_console_page as tcp

HELP = r'sysrq: HELP ?:'


def key_button(key):
    return '#sysrq-menu button:has(kbd:text-is("%s"))' % key


class SysRqMenuTest(tcp.ConsolePageTestCase):

    def open_menu(self, console):
        page = console.page
        page.click('#sysrq')
        page.wait_for_selector('#sysrq-menu', state='visible')
        self.assertEqual('true', page.get_attribute('#sysrq',
                                                    'aria-expanded'))

    def sent_by_the_proxy(self, what):
        """Whether the proxy's log says a session sent what (e.g.
        'SysRq b')."""
        return ' sent %s to instance ' % what in \
            self.world.deployment.logs()

    def test_h_from_the_menu_prints_the_kernels_sysrq_help(self):
        console, _ = self.open_connected(
            'sysrq-help', viewport={'width': 1200, 'height': 600})
        page = console.page
        page.wait_for_selector('#sysrq', state='visible')
        console.type_line('clear')
        console.wait_for_screen(r'\A\s*serialproxy-guest# \s*\Z')
        self.open_menu(console)
        # The admin's token allows both: every key, the log levels, NMI.
        self.assertEqual(25, page.locator('#sysrq-keys button').count())
        self.assertEqual(10,
                         page.locator('#sysrq-level-keys button').count())
        self.assertTrue(page.is_visible('#nmi'))
        self.assertEqual(
            ['b', 'c', 'e', 'i', 'o'],
            sorted(page.locator('#sysrq-keys button.destructive kbd')
                   .all_inner_texts()))
        page.click(key_button('h'))
        # Not destructive: sent at once, the menu closed.
        self.assertFalse(page.is_visible('#confirm'))
        self.assertFalse(page.is_visible('#sysrq-menu'))
        console.wait_for_screen(HELP, timeout=20)
        page.wait_for_selector('#command-status:has-text("SysRq h sent")')
        self.assertTrue(self.sent_by_the_proxy('SysRq h'))
        # Keys still reach the shell afterwards, as typed.
        probe, expected = self.marker('after-sysrq', 1)
        page.click('#terminal')
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)
        # The README's picture: the kernel's answer, the menu open.
        self.open_menu(console)
        page.hover(key_button('s'))
        console.screenshot('sysrq-menu')
        page.keyboard.press('Escape')
        self.assertFalse(page.is_visible('#sysrq-menu'))

    def test_b_and_nmi_ask_first_and_cancel_sends_nothing(self):
        console, _ = self.open_connected('sysrq-confirm')
        page = console.page
        page.wait_for_selector('#sysrq', state='visible')
        self.open_menu(console)
        page.click(key_button('b'))
        page.wait_for_selector('#confirm', state='visible')
        self.assertEqual('SysRq b: Reboot at once?',
                         page.inner_text('#confirm-title'))
        self.assertIn('without syncing', page.inner_text('#confirm-text'))
        self.assertEqual('Send SysRq b', page.inner_text('#confirm-send'))
        # Cancel has the focus: Enter would not reboot.
        self.assertEqual('confirm-cancel', page.evaluate(
            'document.activeElement.id'))
        console.screenshot('sysrq-confirm-reboot')
        page.click('#confirm-cancel')
        self.assertFalse(page.is_visible('#confirm'))
        page.wait_for_selector(
            '#command-status:has-text("SysRq b not sent")')
        # The NMI asks too; Escape cancels it.
        self.open_menu(console)
        page.click('#nmi')
        page.wait_for_selector('#confirm', state='visible')
        self.assertEqual('Send NMI', page.inner_text('#confirm-send'))
        page.keyboard.press('Escape')
        page.wait_for_selector('#confirm', state='hidden')
        page.wait_for_selector('#command-status:has-text("NMI not sent")')
        # Nothing reached the guest: its shell answers as before, and the
        # proxy sent neither.
        probe, expected = self.marker('still-up', 2)
        page.click('#terminal')
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)
        self.assertFalse(self.sent_by_the_proxy('SysRq b'))
        self.assertFalse(self.sent_by_the_proxy('NMI'))
