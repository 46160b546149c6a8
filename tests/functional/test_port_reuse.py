"""CVE-2013-0335 for real: a token must not reach another guest's port.

The proxy no longer asks the compute agent whether a token's port is
still its guest's on every connect; the agent and consoleauth revoke
tokens instead. Here guest A's token is issued, A is deleted, its port is
given to a new guest B, and A's token is refused (401) at the proxy while
B's own token opens B's console: once with the agent running (its
lifecycle events revoke), once with the agent down while it all happens
(its start-up report revokes), and once with every revoke lost and only
B's report arriving, when the lease's own check of the token's port
against consoleauth's registry refuses it.
"""

import struct
import time
import urllib.parse

from oslo_config import fixture as config_fixture
import websocket

from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy import conf as sp_conf
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import exception
from serialproxy import rpc
from tests.harness import fixtures as func_fixtures
from tests.functional.test_refusals import connect
from tests.functional.test_refusals import refusal
from tests.harness import testcase


class PortReuseTest(testcase.TestCase):

    def setUp(self):
        super().setUp()
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        self.deployment.start('serialproxy-consoleauth')
        self.agent = self.deployment.start('serialproxy-compute')
        self.deployment.start('serialproxy-proxy')
        self.deployment.wait_ready()
        self.host = self.deployment.host
        conf = self.useFixture(config_fixture.Config(sp_conf.CONF))
        conf.config(rpc_call_timeout=20)
        rpc.init(sp_conf.CONF, transport_url=vhost.url)
        self.addCleanup(rpc.cleanup)
        self.compute = compute_rpcapi.ComputeAPI()
        self.consoleauth = consoleauth_rpcapi.ConsoleAuthAPI()

    def registered(self, instance_uuid):
        try:
            return self.consoleauth.get_instance({}, instance_uuid)
        except exception.InstanceNotFound:
            return None

    def live(self, token):
        try:
            self.consoleauth.check_token({}, token)
            return True
        except exception.InvalidToken:
            return False

    def console_url(self, guest):
        """What the API does for a console URL: ask the agent, then
        consoleauth."""
        func_fixtures.wait_for(lambda: self.registered(guest.uuid), 60,
                               'guest %s registered' % guest.name)
        console = self.compute.get_serial_console({}, self.host, guest.uuid)
        self.assertEqual(guest.port, console['port'])
        token = self.consoleauth.authorize_console(
            {}, guest.uuid, self.host, console['host'], console['port'])
        return 'ws://127.0.0.1:%d/?%s' % (
            self.deployment.proxy_port,
            urllib.parse.urlencode({'token': token})), token

    def assertOpensItsGuest(self, url, guest):
        ws = connect(url)
        try:
            self.assertShellAnswers(ws, guest)
        finally:
            ws.close()

    def assertShellAnswers(self, ws, guest):
        ws.send_binary(b'\necho guest-$((6*7))-%s\n' % guest.name.encode())
        expected = b'guest-42-' + guest.name.encode()
        seen = b''
        while expected not in seen:
            seen += ws.recv()

    @staticmethod
    def close_frame(ws, timeout=60):
        """(code, reason) of the close frame the proxy sends next."""
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise AssertionError('no close frame in %ss' % timeout)
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return struct.unpack('>H', data[:2])[0], data[2:].decode()

    def delete(self, guest):
        guest.virsh('destroy', guest.name)
        guest.virsh('undefine', guest.name)

    def successor_on(self, port):
        """Guest B, defined with the port guest A had."""
        guest = func_fixtures.Guest()
        guest.port = port
        return self.useFixture(guest)

    def test_old_token_refused_after_its_port_went_to_another_guest(self):
        a = self.useFixture(func_fixtures.Guest())
        a_url, a_token = self.console_url(a)
        user = connect(a_url)
        self.addCleanup(user.close)
        self.assertShellAnswers(user, a)
        self.delete(a)
        # The user at A's console is told why it ended.
        self.assertEqual((4005, 'The console went away: the server stopped '
                                'or was deleted'), self.close_frame(user))
        func_fixtures.wait_for(lambda: not self.live(a_token), 30,
                               "guest A's token to be revoked")
        b = self.successor_on(a.port)
        self.assertEqual((401, 'Invalid or expired token'), refusal(a_url))
        b_url, _ = self.console_url(b)
        self.assertOpensItsGuest(b_url, b)
        self.assertEqual(401, refusal(a_url)[0])

    def test_revoke_lost_token_refused_by_the_lease_port_check(self):
        a = self.useFixture(func_fixtures.Guest())
        a_url, a_token = self.console_url(a)
        # Whatever the agent would say about A now is lost: its
        # 'undefined' event and the revoke it makes.
        self.deployment.stop(self.agent)
        self.delete(a)
        b = self.successor_on(a.port)
        # B's report arrives, as the agent's lifecycle event sends it; it
        # revokes nothing of A's.
        self.consoleauth.instance_event({}, self.host, 'started', {
            'uuid': b.uuid, 'name': b.name, 'state': 'running',
            'host': self.host, 'consoles': [{'index': 0, 'port': b.port}]})
        self.assertTrue(self.live(a_token))
        # A proxy that asks the (stopped) agent for nothing on connect:
        # no history to replay.
        port = func_fixtures.free_port()
        self.deployment.start(
            'serialproxy-proxy', label='proxy-without-replay',
            DEFAULT={'host': 'proxy-without-replay'},
            serial_console={'serialproxy_port': port},
            console={'admin_port': 0, 'workers': 1, 'replay_lines': 0})
        self.deployment.wait_ready()

        def url(token):
            return 'ws://127.0.0.1:%d/?%s' % (
                port, urllib.parse.urlencode({'token': token}))
        self.assertEqual((401, 'Invalid or expired token'),
                         self.refusal_not_guest(url(a_token), b))
        b_token = self.consoleauth.authorize_console(
            {}, b.uuid, self.host, '127.0.0.1', b.port)
        self.assertOpensItsGuest(url(b_token), b)

    def refusal_not_guest(self, url, guest):
        """(status, reason) of the refused upgrade; a failure naming the
        guest whose console the URL opened instead."""
        try:
            ws = connect(url)
        except websocket.WebSocketBadStatusException as exc:
            return exc.status_code, (exc.resp_body or b'').decode().strip()
        try:
            self.assertShellAnswers(ws, guest)
        finally:
            ws.close()
        self.fail("the token opened guest %s's console" % guest.name)

    def test_agent_down_meanwhile_revokes_at_its_start_up(self):
        a = self.useFixture(func_fixtures.Guest())
        a_url, a_token = self.console_url(a)
        self.deployment.stop(self.agent)
        self.delete(a)
        b = self.successor_on(a.port)
        # Nothing told consoleauth yet: the window an agent's downtime
        # leaves (the token's TTL bounds it).
        self.assertTrue(self.live(a_token))
        self.agent = self.deployment.start('serialproxy-compute')
        self.deployment.wait_ready()
        func_fixtures.wait_for(lambda: not self.live(a_token), 30,
                               "guest A's token to be revoked")
        self.assertEqual((401, 'Invalid or expired token'), refusal(a_url))
        b_url, _ = self.console_url(b)
        self.assertOpensItsGuest(b_url, b)
