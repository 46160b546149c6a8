"""The api-ref samples are what the API really sends and accepts.

Each case names a sample: api-ref/source/samples/<name>-req.json is sent
(when it exists) and the answer must equal <name>-resp.json once the
values that differ per run (console tokens, session ids and start times)
are replaced by the sample's. Set SERIALPROXY_GENERATE_SAMPLES=1 to
rewrite the response samples from the API after a deliberate change, then
review the diff.
"""

import json
import os
import re
import urllib.parse

from serialproxy.api import console_sessions
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy.ssh import keys as ssh_keys
from tests.unit.api import base
from tests.unit.api import test_console_output

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SAMPLES = os.path.join(ROOT, 'api-ref', 'source', 'samples')
GENERATE = os.environ.get('SERIALPROXY_GENERATE_SAMPLES') == '1'

SERVER = '9168b536-cd40-4630-b43f-b259807c6e87'
STOPPED_SERVER = '2d8ba8d3-1f3d-4d8a-9b6e-4bbf1f4e7a01'
SAMPLE_TOKEN = 'jD6t8d0Ugk1yRJ3g0qoXhpw3OkEcZxHyQZ7tLfJj0G4'
SAMPLE_SESSION = 'e2b7e8c4-4c1e-4f55-a4a4-0f3c7f1c9d55'
SAMPLE_STARTED_AT = '2026-11-22T03:14:15Z'
HOST = 'api.example.com:8790'
# A real pair of host keys, so that the sample is consistent.
SAMPLE_HOST_KEYS = (
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOfJO99TIfP8w7ozvrOqlEfgPWOhYQUXoS'
    'rDJrKDxfqi',
    'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAA'
    'BBBMQxdXEKwOoUwVhT+jZTFF5La1rS2mVZIgDsCaTaVucmp3+1Xv/Qgpo6Gbl1iLokDUA3'
    'IezM1sC5e6frBiTU2Ao=')
SAMPLE_HOST_KEY_FINGERPRINTS = (
    'SHA256:vUHAzcPd42OxeU3IAPd0cmU2OjvaF4puME8kibfyb+4',
    'SHA256:hSXUOQoRqRI6P/gW5dN+vQ6ZOAjEyVmcH/obTIovK3E')
SAMPLE_EXPIRES_AT = '2026-11-22T03:15:15Z'
_EXPIRES_AT = re.compile(r'"expires_at": ?"[0-9T:Z-]+"')

# name, method, path, microversion, caller, expected status
CASES = [
    ('versions-get', 'GET', '/', None, None, 200),
    ('version-v21-get', 'GET', '/v2.1/', None, None, 200),
    ('servers-list', 'GET', '/v2.1/servers', '2.31', 'member', 200),
    ('servers-list-by-name', 'GET', '/v2.1/servers?name=^web', '2.31',
     'member', 200),
    ('servers-details', 'GET', '/v2.1/servers/detail', '2.31', 'member',
     200),
    ('server-get-admin', 'GET', '/v2.1/servers/%s' % SERVER, '2.31',
     'admin', 200),
    ('remote-console-create', 'POST',
     '/v2.1/servers/%s/remote-consoles' % SERVER, '2.6', 'member', 200),
    # A reader may ask for a watch-only URL.
    ('remote-console-create-watch-only', 'POST',
     '/v2.1/servers/%s/remote-consoles' % SERVER, '2.6', 'reader', 200),
    ('remote-console-create-unavailable', 'POST',
     '/v2.1/servers/%s/remote-consoles' % SERVER, '2.6', 'member', 400),
    ('remote-console-create-not-running', 'POST',
     '/v2.1/servers/%s/remote-consoles' % STOPPED_SERVER, '2.6', 'member',
     409),
    ('get-serial-console-action', 'POST',
     '/v2.1/servers/%s/action' % SERVER, '2.1', 'member', 200),
    ('console-output-action', 'POST', '/v2.1/servers/%s/action' % SERVER,
     '2.1', 'member', 200),
    ('blueprint-get-serial-console', 'POST',
     '/v2/%s/servers/%s/get-serial-console' % (base.PROJECT, SERVER), None,
     'member', 200),
    ('serial-console-output-get', 'GET',
     '/v2.1/servers/%s/serial-console/output?start=21&max_bytes=5' % SERVER,
     None, 'reader', 200),
    ('console-auth-token-get', 'GET',
     '/v2.1/os-console-auth-tokens/%s' % SAMPLE_TOKEN, '2.31', 'admin',
     200),
    ('version-not-acceptable', 'GET', '/v2.1/servers', '2.32', 'member',
     406),
    ('console-sessions-list', 'GET',
     '/v2.1/servers/%s/serial-console/sessions' % SERVER, None, 'member',
     200),
    # 202 with no body: only the request sample.
    ('serial-console-sysrq', 'POST',
     '/v2.1/servers/%s/serial-console/sysrq' % SERVER, None, 'member', 202),
    ('serial-console-nmi', 'POST',
     '/v2.1/servers/%s/serial-console/nmi' % SERVER, None, 'admin', 202),
    ('ssh-key-create', 'POST',
     '/v2.1/servers/%s/serial-console/ssh-keys' % SERVER, None, 'member',
     202),
    # The access switch, in an order that keeps SERVER's console open
    # for the cases' own URLs: the server on, then its project off.
    ('serial-console-access-server-update', 'PUT',
     '/v2.1/servers/%s/serial-console/access' % SERVER, None, 'member',
     200),
    ('serial-console-access-project-update', 'PUT',
     '/v2.1/os-serial-console-access/%s' % base.PROJECT, None, 'admin',
     200),
    ('serial-console-access-project-get', 'GET',
     '/v2.1/os-serial-console-access/%s' % base.PROJECT, None, 'reader',
     200),
    ('serial-console-access-server-get', 'GET',
     '/v2.1/servers/%s/serial-console/access' % SERVER, None, 'reader',
     200),
    ('serial-console-access-list', 'GET', '/v2.1/os-serial-console-access',
     None, 'admin', 200),
    ('remote-console-create-access-disabled', 'POST',
     '/v2.1/servers/%s/remote-consoles' % STOPPED_SERVER, '2.6', 'member',
     403),
    ('serial-console-access-project-delete', 'DELETE',
     '/v2.1/os-serial-console-access/%s' % base.PROJECT, None, 'admin',
     200),
    ('serial-console-access-server-delete', 'DELETE',
     '/v2.1/servers/%s/serial-console/access' % SERVER, None, 'member',
     200),
]


def _load(name):
    path = os.path.join(SAMPLES, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


class ApiSamplesTest(base.APITestCase):
    def setUp(self):
        super().setUp()
        self.define(instance_uuid=SERVER, name='web-1',
                    console_log=test_console_output.CONSOLE_LOG)
        self.define(instance_uuid=STOPPED_SERVER, name='db-1', start=False)
        # A live session, as a proxy would hold it, for the sessions list.
        session_id = consoleauth_rpcapi.ConsoleAuthAPI().acquire_session(
            {}, self.token_for_samples(), 'proxy-1',
            remote_address='203.0.113.7:52814')['session_id']
        session, = self.consoleauth.list_sessions({}, SERVER)
        key_dir = os.path.join(self.state_path, 'ssh')
        self.flags(group='ssh', enabled=True, host_key_dir=key_dir,
                   public_host='console.example.com')
        ssh_keys.ensure_host_keys(key_dir)
        self.replacements = {
            session_id: SAMPLE_SESSION,
            console_sessions.session_view(session)['started_at']:
                SAMPLE_STARTED_AT,
            **dict(zip(ssh_keys.host_key_fingerprints(key_dir),
                       SAMPLE_HOST_KEY_FINGERPRINTS)),
            **dict(zip(
                [k.export_public_key().decode().strip()
                 for k in ssh_keys.host_public_keys(key_dir)],
                SAMPLE_HOST_KEYS)),
        }

    def token_for_samples(self):
        """A real console token; samples show SAMPLE_TOKEN in its place."""
        resp = self.request('POST', '/v2.1/servers/%s/remote-consoles'
                            % SERVER, version='2.6', body={'remote_console': {
                                'protocol': 'serial', 'type': 'serial'}})
        url = resp.json['remote_console']['url']
        return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)[
            'token'][0]

    def run_case(self, name, method, path, version, caller, status):
        token = self.token_for_samples()
        path = path.replace(SAMPLE_TOKEN, token)
        body = _load(name + '-req.json')
        resp = self.request(method, path, body=body, version=version,
                            token=caller, headers={'Host': HOST})
        self.assertEqual(status, resp.status_int,
                         '%s: %s' % (name, resp.body))
        resp_path = os.path.join(SAMPLES, name + '-resp.json')
        if status == 202 and not os.path.exists(resp_path):
            # Accepted with nothing to say (SysRq, NMI): no body at all.
            self.assertEqual(b'', resp.body, name)
            return
        text = resp.body.decode()
        for actual, sample in self.replacements.items():
            text = text.replace(actual, sample)
        text = _EXPIRES_AT.sub('"expires_at": "%s"' % SAMPLE_EXPIRES_AT,
                               text)
        # Tokens handed out while running the case, and the one looked up.
        for url_token in _tokens_in(text):
            text = text.replace(url_token, SAMPLE_TOKEN)
        actual = json.loads(text)
        if GENERATE:
            with open(resp_path, 'w') as f:
                json.dump(actual, f, indent=4, sort_keys=True)
                f.write('\n')
        self.assertEqual(_load(name + '-resp.json'), actual,
                         '%s differs from the API' % resp_path)

    def test_every_sample_matches_the_api(self):
        for case in CASES:
            self.run_case(*case)

    def test_every_sample_file_is_checked(self):
        checked = set()
        for case in CASES:
            checked.update({case[0] + '-req.json', case[0] + '-resp.json'})
        self.assertEqual(set(), set(os.listdir(SAMPLES)) - checked)


def _tokens_in(text):
    found = set()
    start = 0
    while True:
        start = text.find('token=', start)
        if start < 0:
            return found
        start += len('token=')
        end = start
        while end < len(text) and (text[end].isalnum() or text[end] in '-_'):
            end += 1
        found.add(text[start:end])
