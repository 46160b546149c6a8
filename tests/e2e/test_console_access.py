"""The console page when serial console access is turned off under it.

serialproxy-all and a real guest, Debian's Chromium: the switch ends the
page's session with its reason, the page's Reconnect is then refused
with the same reason, and works again once access is on.
"""

import json

from tests.e2e import test_console_page

SERVER_OFF = 'Serial console access is turned off for this server'


class AccessSwitchPageTest(test_console_page.ConsolePageTestCase):

    def switch(self, method, enabled=None):
        body = None if enabled is None else {
            'serial_console_access': {'enabled': enabled}}
        status, reply = self.world.deployment.api_request(
            method, '/v2.1/servers/%s/serial-console/access'
            % self.world.guest.uuid, body)
        self.assertEqual(200, status, reply)
        return json.loads(reply)['serial_console_access']

    def test_page_shows_why_access_ended_and_was_refused(self):
        console, _ = self.open_connected('access-off')
        self.addCleanup(self.switch, 'DELETE')
        self.assertEqual('server', self.switch('PUT', False)['decided_by'])
        state, reason, text = console.wait_for_state('disconnected')
        self.assertEqual(('access-off', SERVER_OFF), (reason, text))
        console.screenshot('access-off-message')
        # Access may be turned on again: the page offers to try.
        self.assertTrue(console.page.is_visible('#reconnect'))

        console.page.click('#reconnect')
        console.page.wait_for_function(
            "() => document.body.dataset.reason === 'refused'")
        self.assertEqual(('disconnected', 'refused',
                          'Refused by the proxy. ' + SERVER_OFF),
                         tuple(console.status()))
        console.screenshot('access-off-refused')

        self.switch('DELETE')
        console.page.click('#reconnect')
        console.wait_for_state('connected')
        probe, expected = self.marker('access-on', 0)
        console.type_line('echo ' + probe)
        console.wait_for_screen('^%s$' % expected)
