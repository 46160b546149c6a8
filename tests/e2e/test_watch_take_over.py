"""Watching and taking a console over, from the page, in Chromium.

The second browser on a console in use is offered Watch and Take over;
watching shows the writer's output read-only and the writer how many
watch; taking over moves the console to the second browser at once.
"""

import json

from tests.e2e import test_console_page as tcp


class WatchTakeOverTest(tcp.ConsolePageTestCase):

    def second_sees_in_use(self, name):
        second, _ = self.open_console(name)
        state, reason, text = second.wait_for_state('disconnected')
        self.assertEqual('in-use', reason)
        self.assertTrue(second.page.is_visible('#watch'))
        self.assertTrue(second.page.is_visible('#take-over'))
        return second

    def assertKeysReachNothing(self, writer, spectator, number):
        """What the spectator types is not echoed by the guest: a line the
        writer types after it comes back to both, and the spectator's
        line to neither."""
        spy, spied = self.marker('spy', number)
        spectator.page.click('#terminal')
        spectator.type_line('echo ' + spy)
        probe, expected = self.marker('after', number + 1)
        writer.type_line('echo ' + probe)
        writer.wait_for_screen('^%s$' % expected)
        spectator.wait_for_screen('^%s$' % expected)
        self.assertNotIn(spied, writer.screen())

    def test_watch_shows_the_writers_output_read_only(self):
        first, _ = self.open_connected('watch-writer')
        second = self.second_sees_in_use('watch-spectator')
        second.page.click('#watch')
        state, reason, text = second.wait_for_state('connected')
        self.assertEqual(('watching', 'Watching (read-only)'),
                         (reason, text))
        first.page.wait_for_selector('#watchers:has-text("1 watching")')
        # SysRq is the writer's: a spectator is offered none.
        self.assertTrue(first.page.is_visible('#sysrq'))
        self.assertFalse(second.page.is_visible('#sysrq'))
        probe, expected = self.marker('shown', 1)
        first.type_line('echo ' + probe)
        second.wait_for_screen('^%s$' % expected)
        # The spectator's keys never reach the guest.
        self.assertKeysReachNothing(first, second, 2)
        first.screenshot('watch-writer-sees-count')
        second.screenshot('watch-spectator-read-only')

    def test_take_over_moves_the_console_at_once(self):
        first, _ = self.open_connected('take-over-first')
        second = self.second_sees_in_use('take-over-second')
        second.page.click('#take-over')
        second.wait_for_state('connected')
        state, reason, text = first.wait_for_state('disconnected')
        self.assertEqual(('taken-over',
                          'The console was taken over by another user'),
                         (reason, text))
        # The new writer is offered SysRq; the old one no longer.
        second.page.wait_for_selector('#sysrq', state='visible')
        self.assertFalse(first.page.is_visible('#sysrq'))
        probe, expected = self.marker('mine', 4)
        second.page.click('#terminal')
        second.type_line('echo ' + probe)
        second.wait_for_screen('^%s$' % expected)
        first.screenshot('take-over-first-told')
        second.screenshot('take-over-second-types')

    def watch_only_url(self):
        status, reply = self.world.deployment.api_request(
            'POST', '/v2.1/servers/%s/remote-consoles' % self.world.guest.uuid,
            {'remote_console': {'protocol': 'serial', 'type': 'serial',
                                'mode': 'view'}}, version='2.6')
        self.assertEqual(200, status, reply)
        return json.loads(reply)['remote_console']['url']

    def test_watch_only_url_watches_and_offers_no_take_over_or_sysrq(self):
        first, _ = self.open_connected('watch-only-writer')
        second, _ = self.open_console('watch-only-watcher',
                                      url=self.watch_only_url())
        second.page.wait_for_selector('body[data-reason="watching"]')
        self.assertIn('Watching (read-only)',
                      second.page.inner_text('#status-text'))
        first.page.wait_for_selector('#watchers:has-text("1 watching")')
        self.assertFalse(second.page.is_visible('#take-over'))
        self.assertFalse(second.page.is_visible('#sysrq'))
        probe, expected = self.marker('watched', 5)
        first.type_line('echo ' + probe)
        second.wait_for_screen('^%s$' % expected)
        # Its keys never reach the guest.
        self.assertKeysReachNothing(first, second, 6)
        second.screenshot('watch-only-watching')

    def test_watch_only_url_asking_to_take_over_is_refused(self):
        self.open_connected('watch-only-held')
        second, _ = self.open_console(
            'watch-only-take-over', url=self.watch_only_url() +
            '&mode=take_over')
        state, reason, text = second.wait_for_state('disconnected')
        self.assertEqual('refused', reason)
        self.assertIn('watch-only', text)
        self.assertFalse(second.page.is_visible('#take-over'))
