"""POST /servers/{id}/serial-console/ssh-keys: one-time SSH keys."""

import os
import uuid

import asyncssh

from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import exception
from serialproxy.ssh import keys
from tests.unit.api import base


def public_key():
    key = asyncssh.generate_private_key('ssh-ed25519')
    return (key.export_public_key().decode().strip(),
            key.get_fingerprint('sha256'))


class SSHKeysTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.key_dir = os.path.join(self.state_path, 'ssh')
        self.flags(group='ssh', enabled=True, host_key_dir=self.key_dir)
        keys.ensure_host_keys(self.key_dir)
        self.server_id = self.define()
        self.public_key, self.fingerprint = public_key()

    def push(self, server_id=None, token='member', **ssh_key):
        ssh_key.setdefault('public_key', self.public_key)
        return self.request(
            'POST', '/v2.1/servers/%s/serial-console/ssh-keys'
            % (server_id or self.server_id), body={'ssh_key': ssh_key},
            token=token)

    def test_member_gets_user_endpoint_and_host_keys(self):
        resp = self.push()
        self.assertEqual(202, resp.status_int, resp.body)
        answer = resp.json['ssh_key']
        self.assertEqual(self.server_id + '.port0', answer['user'])
        self.assertEqual(('console.example', 2222),
                         (answer['host'], answer['port']))
        self.assertEqual(self.fingerprint, answer['fingerprint'])
        self.assertEqual(keys.host_key_fingerprints(self.key_dir),
                         answer['host_key_fingerprints'])
        self.assertEqual(2, len(answer['host_key_fingerprints']))
        self.assertTrue(answer['expires_at'].endswith('Z'))
        self.assertTrue(consoleauth_rpcapi.ConsoleAuthAPI().check_ssh_key(
            {}, self.server_id, 0, self.fingerprint))

    def test_public_host_and_port_are_given_when_set(self):
        self.flags(group='ssh', public_host='ssh.example', public_port=22)
        answer = self.push().json['ssh_key']
        self.assertEqual(('ssh.example', 22),
                         (answer['host'], answer['port']))

    def test_index_names_the_port_in_the_user(self):
        resp = self.push(index=1)
        # The test domain has one serial port: port 1 is not there.
        self.assertFault(resp, 400, 'badRequest')

    def test_reader_is_forbidden(self):
        self.assertFault(self.push(token='reader'), 403, 'forbidden')

    def test_another_projects_server_is_not_found(self):
        self.assertFault(self.push(token='other'), 404, 'itemNotFound')

    def test_unknown_server_is_not_found(self):
        self.assertFault(self.push(server_id=str(uuid.uuid4())), 404,
                         'itemNotFound')

    def test_stopped_server_is_a_conflict(self):
        stopped = self.define(start=False, port=10078)
        self.assertFault(self.push(server_id=stopped), 409,
                         'conflictingRequest', 'not running')

    def test_unsupported_key_type_is_a_bad_request_naming_it(self):
        self.assertFault(self.push(public_key='ssh-dss AAAAB3NzaC1kc3MAAA'),
                         400, 'badRequest', 'ssh-dss')

    def test_malformed_key_is_a_bad_request(self):
        self.assertFault(self.push(public_key='ssh-ed25519 not-base64!'),
                         400, 'badRequest', 'not an OpenSSH public key')

    def test_bodies_outside_the_schema_are_bad_requests(self):
        for body in ({}, {'ssh_key': {}}, {'ssh_key': {'public_key': 1}},
                     {'ssh_key': {'public_key': 'x', 'private_key': 'y'}},
                     {'ssh_key': {'public_key': 'x', 'index': -1}},
                     {'ssh_key': {'public_key': 'x' * 5000}}):
            resp = self.request(
                'POST', '/v2.1/servers/%s/serial-console/ssh-keys'
                % self.server_id, body=body)
            self.assertFault(resp, 400, 'badRequest')

    def key_modes(self):
        """The modes of the pushed key's session, as the proxy gets them;
        the session ends again."""
        api = consoleauth_rpcapi.ConsoleAuthAPI()
        console = api.acquire_session_by_ssh_key(
            {}, 'proxy-1', self.server_id, 0, self.fingerprint)
        api.release_session({}, console['session_id'])
        return console['modes']

    def test_member_key_may_send_sysrq_but_no_nmi(self):
        self.assertEqual(202, self.push().status_int)
        self.assertEqual(['sysrq', 'view', 'write'], self.key_modes())

    def test_admin_key_may_send_both(self):
        self.assertEqual(202, self.push(token='admin').status_int)
        self.assertEqual(['nmi', 'sysrq', 'view', 'write'], self.key_modes())

    def test_role_without_the_sysrq_rule_gets_a_key_without_sysrq(self):
        # SysRq stays with members; typing goes with the URL rule.
        self.use_policy_file({'serialproxy:serial_console:sysrq': '!'})
        self.assertEqual(202, self.push().status_int)
        self.assertEqual(['view', 'write'], self.key_modes())

    def test_key_of_a_user_who_may_not_type_never_signs_in_as_writer(self):
        # Readers may push keys here, but the URL rule says they may not
        # type in a console: their key is watch-only.
        self.use_policy_file({'serialproxy:serial_console:ssh_key':
                              'rule:project_reader_or_admin'})
        self.assertEqual(202, self.push(token='reader').status_int)
        exc = self.assertRaises(exception.ModeNotAllowed, self.key_modes)
        self.assertEqual('write', exc.kwargs['mode'])

    def test_sysrq_rule_is_checked_on_the_server(self):
        # A rule on the owner: the API checks it on the server it found.
        self.use_policy_file({'serialproxy:serial_console:sysrq':
                              'role:member and project_id:%(project_id)s',
                              'serialproxy:serial_console:nmi': '!'})
        self.assertEqual(202, self.push().status_int)
        self.assertEqual(['sysrq', 'view', 'write'], self.key_modes())
        self.use_policy_file({'serialproxy:serial_console:sysrq':
                              'role:member and project_id:someone-else'})
        self.public_key, self.fingerprint = public_key()
        self.assertEqual(202, self.push().status_int)
        self.assertEqual(['view', 'write'], self.key_modes())

    def test_disabled_ssh_is_not_implemented(self):
        self.flags(group='ssh', enabled=False)
        self.assertFault(self.push(), 501, 'notImplemented')
