"""doc/notifications/ documents every event, and what the API really
emits matches those samples; no console token is ever in one."""

import os
import urllib.parse

from serialproxy.consoleauth import rpcapi
from serialproxy import notifications
from tests.unit.api import base
from tests.unit import notification_fixture


class SamplesTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.notes = self.useFixture(
            notification_fixture.CaughtNotifications())

    def test_every_event_type_has_a_sample_and_no_sample_is_stray(self):
        files = {name[:-len('.json')]
                 for name in os.listdir(notification_fixture.SAMPLES)}
        self.assertEqual(set(notifications.EVENT_TYPES), files)
        for event_type in notifications.EVENT_TYPES:
            sample = notification_fixture.sample(event_type)
            self.assertEqual(event_type, sample['event_type'])
            empty = notifications.access_payload() \
                if event_type == notifications.ACCESS_CHANGED \
                else notifications.payload()
            self.assertEqual([], notification_fixture.mismatches(
                event_type, empty))

    def test_api_events_match_their_samples_and_hold_no_token(self):
        server_id = self.define()
        resp = self.request('POST', '/v2.1/servers/%s/remote-consoles'
                            % server_id, version='2.6', body={
                                'remote_console': {'protocol': 'serial',
                                                   'type': 'serial'}})
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(
            resp.json['remote_console']['url']).query)['token'][0]
        self.request('POST', '/v2.1/servers/%s/serial-console/sysrq'
                     % server_id, body={'sysrq': {'key': 'h'}})
        self.request('POST', '/v2.1/servers/%s/serial-console/nmi'
                     % server_id, token='admin')
        rpcapi.ConsoleAuthAPI().acquire_session(
            {}, token, 'proxy-1', remote_address='203.0.113.7:1')
        self.request('DELETE', '/v2.1/servers/%s/serial-console/sessions'
                     % server_id, token='admin')
        self.request('PUT', '/v2.1/os-serial-console-access/%s'
                     % base.PROJECT, token='admin', body={
                         'serial_console_access': {'enabled': False}})
        caught = self.notes.caught()
        self.assertEqual(
            [notifications.URL_ISSUED, notifications.SYSRQ_SENT,
             notifications.NMI_SENT, notifications.FORCE_DISCONNECTED,
             notifications.ACCESS_CHANGED],
            [event for event, _ in caught])
        access = caught[-1][1]['serialproxy_object.data']
        self.assertEqual(
            ('project', base.PROJECT, None, 'disabled', False, 'project',
             0, base.USER, 'api'),
            (access['level'], access['project_id'], access['old'],
             access['new'], access['enabled'], access['decided_by'],
             access['sessions_ended'], access['changed_by_user_id'],
             access['source']))
        for event, body in caught:
            self.assertEqual([], notification_fixture.mismatches(event,
                                                                 body))
            self.assertNotIn(token, repr(body))
