"""The serial console access API: every verb, its policy, its bodies, and
what a switch does to URLs, keys and live sessions."""

import urllib.parse
import uuid

import asyncssh

from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import exception
from serialproxy.proxy.close_codes import CloseCode
from serialproxy.proxy import manager as proxy_manager
from serialproxy.proxy import rpcapi as proxy_rpcapi
from tests.unit.api import base
from tests.unit.api import test_console_sessions

PROJECT_PATH = '/v2.1/os-serial-console-access/%s'
SERVER_PATH = '/v2.1/servers/%s/serial-console/access'
OFF = {'serial_console_access': {'enabled': False}}
ON = {'serial_console_access': {'enabled': True}}
URL_BODY = {'remote_console': {'protocol': 'serial', 'type': 'serial'}}


class ConsoleAccessAPITest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.recorder = test_console_sessions.ProxyRecorder()
        self.rpc.serve(proxy_rpcapi.TOPIC, proxy_manager.ProxyManager(
            self.recorder, self.recorder), server='proxy-1')
        self.consoleauth_api = consoleauth_rpcapi.ConsoleAuthAPI()
        self.server_id = self.define()
        self.other_server = self.define(port=10078)

    def access(self, method, path, body=None, token='admin', status=200):
        resp = self.request(method, path, body=body, token=token)
        self.assertEqual(status, resp.status_int, resp.body)
        return resp.json.get('serial_console_access') if status == 200 \
            else resp

    disconnect_orders = \
        test_console_sessions.ConsoleSessionsTest.wait_for_disconnect_order

    def url(self, server_id=None):
        return self.request('POST', '/v2.1/servers/%s/remote-consoles'
                            % (server_id or self.server_id),
                            body=URL_BODY, version='2.6')

    def token(self, server_id=None):
        resp = self.url(server_id)
        self.assertEqual(200, resp.status_int, resp.body)
        return urllib.parse.parse_qs(urllib.parse.urlsplit(
            resp.json['remote_console']['url']).query)['token'][0]

    # Project level -------------------------------------------------------

    def test_project_follows_the_cloud_until_set(self):
        self.assertEqual(
            {'project_id': base.PROJECT, 'enabled': True,
             'decided_by': 'cloud',
             'levels': {'cloud': 'enabled', 'project': None}},
            self.access('GET', PROJECT_PATH % base.PROJECT, token='reader'))

    def test_admin_turns_a_project_off_then_back_to_the_default(self):
        answer = self.access('PUT', PROJECT_PATH % base.PROJECT, OFF)
        self.assertEqual((False, 'project', 'disabled'),
                         (answer['enabled'], answer['decided_by'],
                          answer['levels']['project']))
        self.assertEqual(answer, self.access(
            'GET', PROJECT_PATH % base.PROJECT, token='member'))
        answer = self.access('DELETE', PROJECT_PATH % base.PROJECT)
        self.assertEqual((True, 'cloud', None),
                         (answer['enabled'], answer['decided_by'],
                          answer['levels']['project']))

    def test_project_id_is_taken_as_given(self):
        answer = self.access('PUT', PROJECT_PATH % 'not-yet-a-project', OFF)
        self.assertEqual('not-yet-a-project', answer['project_id'])
        resp = self.request('GET', '/v2.1/os-serial-console-access',
                            token='admin')
        self.assertEqual(200, resp.status_int, resp.body)
        self.assertEqual([answer], resp.json['projects'])

    def test_list_shows_only_projects_that_are_set(self):
        resp = self.request('GET', '/v2.1/os-serial-console-access',
                            token='admin')
        self.assertEqual({'projects': []}, resp.json)
        self.access('PUT', PROJECT_PATH % base.PROJECT, ON)
        resp = self.request('GET', '/v2.1/os-serial-console-access',
                            token='admin')
        self.assertEqual([(base.PROJECT, True, 'project')],
                         [(p['project_id'], p['enabled'], p['decided_by'])
                          for p in resp.json['projects']])

    def test_project_policies(self):
        path = PROJECT_PATH % base.PROJECT
        for token in ('member', 'reader', 'other'):
            for method, body in (('PUT', OFF), ('DELETE', None)):
                self.assertFault(
                    self.request(method, path, body=body, token=token),
                    403, 'forbidden', 'project:update')
            self.assertFault(
                self.request('GET', '/v2.1/os-serial-console-access',
                             token=token), 403, 'forbidden',
                'project:index')
        # Readers of the project see it; another project's members not.
        self.access('GET', path, token='reader')
        self.assertFault(self.request('GET', path, token='other'), 403,
                         'forbidden', 'project:show')

    def test_project_update_policy_is_configurable(self):
        self.use_policy_file({
            'serialproxy:serial_console_access:project:update':
                'role:member and project_id:%(project_id)s'})
        self.access('PUT', PROJECT_PATH % base.PROJECT, OFF, token='member')

    # Server level --------------------------------------------------------

    def test_member_turns_a_server_on_inside_a_project_that_is_off(self):
        self.access('PUT', PROJECT_PATH % base.PROJECT, OFF)
        answer = self.access('PUT', SERVER_PATH % self.server_id, ON,
                             token='member')
        self.assertEqual(
            {'project_id': base.PROJECT, 'server_id': self.server_id,
             'enabled': True, 'decided_by': 'server',
             'levels': {'cloud': 'enabled', 'project': 'disabled',
                        'server': 'enabled'}}, answer)
        self.assertEqual(200, self.url().status_int)
        self.assertFault(self.url(self.other_server), 403, 'forbidden',
                         'turned off for this project')
        answer = self.access('DELETE', SERVER_PATH % self.server_id,
                             token='member')
        self.assertEqual((False, 'project'),
                         (answer['enabled'], answer['decided_by']))
        self.assertFault(self.url(), 403, 'forbidden',
                         'Serial console access is turned off for this '
                         'project')

    def test_server_policies(self):
        path = SERVER_PATH % self.server_id
        self.assertEqual('cloud', self.access('GET', path,
                                              token='reader')['decided_by'])
        for method, body in (('PUT', OFF), ('DELETE', None)):
            self.assertFault(self.request(method, path, body=body,
                                          token='reader'),
                             403, 'forbidden', 'server:update')
            # Another project's server does not exist for its members.
            self.assertFault(self.request(method, path, body=body,
                                          token='other'),
                             404, 'itemNotFound')
        self.assertFault(self.request('GET', path, token='other'), 404,
                         'itemNotFound')

    def test_server_update_policy_is_configurable_to_admins_only(self):
        self.use_policy_file({
            'serialproxy:serial_console_access:server:update':
                'rule:context_is_admin'})
        self.assertFault(self.request('PUT', SERVER_PATH % self.server_id,
                                      body=ON, token='member'),
                         403, 'forbidden', 'server:update')
        self.access('PUT', SERVER_PATH % self.server_id, ON, token='admin')

    def test_unknown_server_is_404(self):
        for method, body in (('GET', None), ('PUT', ON), ('DELETE', None)):
            self.assertFault(
                self.request(method, SERVER_PATH % uuid.uuid4(), body=body,
                             token='admin'), 404, 'itemNotFound')

    # Bodies --------------------------------------------------------------

    def test_bodies_not_exactly_the_switch_are_400_with_a_reason(self):
        bad = [
            (None, 'None is not of type'),
            ({}, "'serial_console_access' is a required property"),
            ({'serial_console_access': {}},
             "'enabled' is a required property"),
            ({'serial_console_access': {'enabled': 'false'}},
             "is not of type 'boolean'"),
            ({'serial_console_access': {'enabled': 1}},
             "is not of type 'boolean'"),
            ({'serial_console_access': {'enabled': None}},
             "is not of type 'boolean'"),
            ({'serial_console_access': {'enabled': True, 'level': 'x'}},
             "'level' was unexpected"),
            ({'serial_console_access': True}, "is not of type 'object'"),
            ({'serial_console_access': {'enabled': True}, 'x': 1},
             "'x' was unexpected"),
        ]
        for path in (PROJECT_PATH % base.PROJECT,
                     SERVER_PATH % self.server_id):
            for body, reason in bad:
                self.assertFault(self.request('PUT', path, body=body,
                                              token='admin'),
                                 400, 'badRequest', reason)
            self.assertFault(
                self.request('PUT', path, raw=b'{"serial_console_access"',
                             token='admin'),
                400, 'badRequest', 'not valid JSON')
            self.assertFault(self.request('GET', path + '?all=1',
                                          token='admin'),
                             400, 'badRequest', "'all' was unexpected")
        self.assertFault(
            self.request('PUT', PROJECT_PATH % ('p' * 256), body=OFF,
                         token='admin'), 400, 'badRequest', 'longer than')
        self.assertEqual(
            {'projects': []},
            self.request('GET', '/v2.1/os-serial-console-access',
                         token='admin').json)

    # Enforcement ---------------------------------------------------------

    def test_turning_a_project_off_ends_its_sessions_and_refuses_urls(self):
        token = self.token()
        session = self.consoleauth_api.acquire_session(
            {}, token, 'proxy-1')['session_id']
        self.access('PUT', PROJECT_PATH % base.PROJECT, OFF)
        self.assertEqual(
            [([session], int(CloseCode.ACCESS_DISABLED),
              'Serial console access is turned off for this project')],
            self.disconnect_orders())
        self.assertFault(self.url(), 403, 'forbidden',
                         'Serial console access is turned off for this '
                         'project')
        exc = self.assertRaises(exception.ConsoleAccessDisabled,
                                self.consoleauth_api.acquire_session,
                                {}, token, 'proxy-1')
        self.assertEqual('project', exc.kwargs['level'])
        # On again: the same URL opens, nothing restarted.
        self.access('PUT', PROJECT_PATH % base.PROJECT, ON)
        self.consoleauth_api.acquire_session({}, token, 'proxy-1')

    def test_legacy_url_actions_are_refused_too(self):
        self.access('PUT', SERVER_PATH % self.server_id, OFF)
        resp = self.request('POST', '/v2.1/servers/%s/action'
                            % self.server_id, version='2.1',
                            body={'os-getSerialConsole': {'type': 'serial'}})
        self.assertFault(resp, 403, 'forbidden',
                         'turned off for this server')

    def test_ssh_keys_are_refused_and_pushed_ones_dropped(self):
        self.flags(group='ssh', enabled=True,
                   host_key_dir=self.state_path + '/ssh')
        key = asyncssh.generate_private_key('ssh-ed25519')
        body = {'ssh_key': {
            'public_key': key.export_public_key().decode().strip()}}
        path = '/v2.1/servers/%s/serial-console/ssh-keys' % self.server_id
        self.assertEqual(202, self.request('POST', path,
                                           body=body).status_int)
        fingerprint = key.get_fingerprint('sha256')
        self.assertTrue(self.consoleauth_api.check_ssh_key(
            {}, self.server_id, 0, fingerprint))
        self.access('PUT', SERVER_PATH % self.server_id, OFF)
        self.assertFalse(self.consoleauth_api.check_ssh_key(
            {}, self.server_id, 0, fingerprint))
        self.assertFault(self.request('POST', path, body=body), 403,
                         'forbidden', 'turned off for this server')

    def test_forced_off_refuses_even_a_server_switched_on(self):
        self.access('PUT', SERVER_PATH % self.server_id, ON)
        self.flags(group='console', access_default='forced_off')
        answer = self.access('GET', SERVER_PATH % self.server_id)
        self.assertEqual((False, 'cloud'),
                         (answer['enabled'], answer['decided_by']))
        self.assertFault(self.url(), 403, 'forbidden',
                         'turned off for this cloud')
