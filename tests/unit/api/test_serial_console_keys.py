"""SysRq keys and NMIs through the API, to the compute agent on libvirt's
test:///default driver."""

import uuid

from serialproxy import notifications
from serialproxy import sysrq
from tests.unit.api import base
from tests.unit import notification_fixture


class SysRqTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.notes = self.useFixture(
            notification_fixture.CaughtNotifications())

    def sysrq(self, server_id, body, **kwargs):
        return self.request(
            'POST', '/v2.1/servers/%s/serial-console/sysrq' % server_id,
            body=body, **kwargs)

    def test_every_documented_key_is_accepted_with_202(self):
        server_id = self.define()
        for key in sysrq.KEYS:
            resp = self.sysrq(server_id, {'sysrq': {'key': key}})
            self.assertEqual(202, resp.status_int, resp.body)
            self.assertEqual(b'', resp.body)

    def test_sysrq_sent_notification_names_key_and_user(self):
        server_id = self.define()
        self.sysrq(server_id, {'sysrq': {'key': 'h'}})
        (event, payload), = self.notes.caught(notifications.SYSRQ_SENT)
        data = payload['serialproxy_object.data']
        self.assertEqual((server_id, 'h', base.USER, base.PROJECT),
                         (data['instance_uuid'], data['sysrq_key'],
                          data['user_id'], data['project_id']))

    def test_keys_outside_the_kernel_set_are_400(self):
        server_id = self.define()
        for key in ('a', 'H', 'R', '', 'hh', ' ', 1, None):
            self.assertFault(self.sysrq(server_id, {'sysrq': {'key': key}}),
                             400, 'badRequest', 'sysrq/key')

    def test_malformed_bodies_are_400(self):
        server_id = self.define()
        for body in (None, {}, {'sysrq': {}}, {'sysrq': 'h'},
                     {'sysrq': {'key': 'h', 'more': 1}},
                     {'sysrq': {'key': 'h'}, 'nmi': {}}):
            self.assertFault(self.sysrq(server_id, body), 400, 'badRequest')

    def test_stopped_server_is_409(self):
        self.assertFault(self.sysrq(self.define(start=False),
                                    {'sysrq': {'key': 'h'}}),
                         409, 'conflictingRequest', 'not running')

    def test_unknown_and_other_projects_servers_are_404(self):
        self.assertFault(self.sysrq(str(uuid.uuid4()),
                                    {'sysrq': {'key': 'h'}}),
                         404, 'itemNotFound')
        other = self.define(project=base.OTHER_PROJECT, port=10078)
        self.assertFault(self.sysrq(other, {'sysrq': {'key': 'h'}}),
                         404, 'itemNotFound')

    def test_readers_may_not_send_sysrq(self):
        self.assertFault(self.sysrq(self.define(), {'sysrq': {'key': 'h'}},
                                    token='reader'), 403, 'forbidden')
        self.assertEqual([], self.notes.caught(notifications.SYSRQ_SENT))


class NMITest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.notes = self.useFixture(
            notification_fixture.CaughtNotifications())

    def nmi(self, server_id, body=None, token='admin'):
        return self.request(
            'POST', '/v2.1/servers/%s/serial-console/nmi' % server_id,
            body=body, token=token)

    def test_admin_injects_nmi_with_or_without_body(self):
        server_id = self.define()
        for body in (None, {'nmi': {}}, {}):
            resp = self.nmi(server_id, body)
            self.assertEqual(202, resp.status_int, resp.body)
        self.assertEqual(3, len(self.notes.caught(notifications.NMI_SENT)))

    def test_members_may_not_inject_nmi(self):
        self.assertFault(self.nmi(self.define(), token='member'), 403,
                         'forbidden')

    def test_bad_body_is_400(self):
        self.assertFault(self.nmi(self.define(), {'nmi': {'x': 1}}), 400,
                         'badRequest')
        self.assertFault(self.nmi(self.define(port=10079), {'other': {}}),
                         400, 'badRequest')

    def test_stopped_server_is_409_and_unknown_404(self):
        self.assertFault(self.nmi(self.define(start=False)), 409,
                         'conflictingRequest')
        self.assertFault(self.nmi(str(uuid.uuid4())), 404, 'itemNotFound')
