"""The compute agent against real libvirtd, a QEMU guest and RabbitMQ.

The agent (serialproxy-compute) and consoleauth run as their own
processes; the test talks to them over RPC as the API and proxy do, and
looks into the pool file as an operator would.
"""

import os
import random
import signal
import threading
import time
import uuid

import libvirt
from oslo_config import fixture as config_fixture
import oslo_messaging as messaging

from serialproxy.compute import domain_xml
from serialproxy.compute import port_pool
from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy import conf as sp_conf
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import exception
from serialproxy import rpc
from tests.harness import fixtures as func_fixtures
from tests.harness import testcase

# A domain defined, never started: enough for libvirt to hold its ports.
STOPPED_DOMAIN = """<domain type='qemu'><name>%(name)s</name>
  <uuid>%(uuid)s</uuid><memory unit='MiB'>32</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>%(devices)s</devices></domain>"""


class AgentTestCase(testcase.TestCase):
    """consoleauth + compute agent over a RabbitMQ vhost, an RPC client."""

    agent_options = {}
    range_size = 40
    rpc_call_timeout = 20

    def setUp(self):
        super().setUp()
        # Below Linux's ephemeral ports, where other tests' guests listen.
        lo = random.randrange(22000, 32000 - self.range_size)
        self.port_range = '%d:%d' % (lo, lo + self.range_size)
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        options = {'serial_console': {'port_range': self.port_range}}
        options.update(self.agent_options)
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, options=options))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        self.deployment.start('serialproxy-consoleauth')
        self.agent = self.deployment.start('serialproxy-compute')
        self.deployment.wait_ready()
        self.host = self.deployment.host
        self.pool_path = os.path.join(self.deployment.dir,
                                      'serial_port_pool.sqlite')
        conf = self.useFixture(config_fixture.Config(sp_conf.CONF))
        conf.config(rpc_call_timeout=self.rpc_call_timeout)
        rpc.init(sp_conf.CONF, transport_url=vhost.url)
        self.addCleanup(rpc.cleanup)
        self.compute = compute_rpcapi.ComputeAPI()
        self.consoleauth = consoleauth_rpcapi.ConsoleAuthAPI()

    def restart_agent(self, signum=signal.SIGTERM):
        self.deployment.stop(self.agent, signum)
        self.agent = self.deployment.start('serialproxy-compute')
        self.deployment.wait_ready()

    def pool(self):
        pool = port_pool.PortPool(self.pool_path, self.port_range,
                                  '127.0.0.1')
        self.addCleanup(pool.close)
        return pool

    def pool_ports(self, instance_uuid):
        return {a['port']: a['index']
                for a in self.pool().allocations(instance_uuid)}

    def registered(self, instance_uuid):
        try:
            return self.consoleauth.get_instance({}, instance_uuid)
        except exception.InstanceNotFound:
            return None

    def guest_with_pool_consoles(self, count=2):
        """The test guest, its consoles replaced by the pool's own
        <serial> devices through serialproxy-manage, then booted."""
        def use_pool_consoles(guest):
            self.deployment.run('serialproxy-manage', 'serial-console',
                                'add', guest.name, '--replace', '--count',
                                str(count))
            xml = guest.virsh('dumpxml', '--inactive', guest.name)
            guest.ports = {p['port']: p['index'] for p in
                           domain_xml.tcp_serial_ports(xml, '127.0.0.1')}
            guest.port = min(guest.ports, key=guest.ports.get)
        return self.useFixture(func_fixtures.Guest(
            before_start=use_pool_consoles))


class ComputeAgentTest(AgentTestCase):
    def test_boot_output_of_the_guest_is_its_console_output(self):
        guest = self.guest_with_pool_consoles()
        output = self.compute.get_console_output({}, self.host, guest.uuid)
        self.assertIn('serialproxy-guest booted', output)
        # The probe of Guest typed this at the shell: the log is live.
        self.assertIn('ready-42', output)
        last = self.compute.get_console_output({}, self.host, guest.uuid,
                                               length=1)
        self.assertEqual(1, len(last.splitlines()))
        self.assertTrue(output.endswith(last))

    def test_guest_without_console_log_is_a_named_error(self):
        guest = self.useFixture(func_fixtures.Guest())
        exc = self.assertRaises(exception.ConsoleLogNotFound,
                                self.compute.get_console_output, {},
                                self.host, guest.uuid, 10)
        self.assertIn(guest.uuid, str(exc))

    def test_ports_of_a_running_guest_are_found_after_restart(self):
        guest = self.guest_with_pool_consoles(count=2)
        func_fixtures.wait_for(
            lambda: self.registered(guest.uuid), 30, 'the guest registered')
        self.restart_agent()
        self.assertEqual(guest.ports, self.pool_ports(guest.uuid))
        # Even with the pool file lost, libvirt's XML gives them back.
        self.deployment.stop(self.agent)
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(self.pool_path + suffix):
                os.unlink(self.pool_path + suffix)
        self.agent = self.deployment.start('serialproxy-compute')
        self.deployment.wait_ready()
        self.assertEqual(guest.ports, self.pool_ports(guest.uuid))
        self.assertEqual(
            {'index': 1, 'host': '127.0.0.1',
             'port': [p for p, i in guest.ports.items() if i == 1][0]},
            self.compute.get_serial_console({}, self.host, guest.uuid, 1))
        # Handing out the rest of the range never gives a guest port.
        handed_out = []
        while True:
            try:
                handed_out += [p['port'] for p in
                               self.compute.allocate_serial_ports(
                                   {}, self.host,
                                   'filler-%d' % len(handed_out))['ports']]
            except exception.PortRangeExhausted as exc:
                self.assertEqual(400, exc.code)
                break
        self.assertGreater(len(handed_out), 0)
        self.assertEqual(set(), set(handed_out) & set(guest.ports))
        self.assertEqual(len(handed_out), len(set(handed_out)))

    def test_undefining_the_guest_frees_its_ports(self):
        guest = self.guest_with_pool_consoles(count=1)
        func_fixtures.wait_for(
            lambda: self.registered(guest.uuid), 30, 'the guest registered')
        self.assertEqual(guest.ports, self.pool_ports(guest.uuid))
        guest.virsh('destroy', guest.name)
        guest.virsh('undefine', guest.name)
        func_fixtures.wait_for(
            lambda: self.registered(guest.uuid) is None, 30,
            'the guest to leave the registry')
        self.assertEqual({}, self.pool_ports(guest.uuid))
        pool = self.pool()
        for port in guest.ports:
            self.assertEqual('released', pool.port_status(port))


class AgentCrashTest(AgentTestCase):
    """The agent SIGKILLed while a caller allocates and defines domains."""

    agent_options = {'compute': {'pending_allocation_timeout': '3'}}
    range_size = 400
    rpc_call_timeout = 5

    def setUp(self):
        super().setUp()
        self.conn = libvirt.open(func_fixtures.LIBVIRT_URI)
        self.addCleanup(self.conn.close)
        self.prefix = 'sp-crash-%s-' % uuid.uuid4().hex[:6]
        self.addCleanup(self._undefine_ours)

    def _undefine_ours(self):
        for dom in self.conn.listAllDomains():
            if dom.name().startswith(self.prefix):
                dom.undefine()

    def define_stopped(self, instance_uuid, devices):
        self.conn.defineXML(STOPPED_DOMAIN % {
            'name': self.prefix + instance_uuid[:8], 'uuid': instance_uuid,
            'devices': ''.join(devices)})

    def libvirt_ports(self):
        """{uuid: {port: index}} of every domain libvirt has, ours or not."""
        found = {}
        for dom in self.conn.listAllDomains():
            try:
                xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                found[dom.UUIDString()] = {
                    p['port']: p['index']
                    for p in domain_xml.tcp_serial_ports(xml, '127.0.0.1')}
            except libvirt.libvirtError:
                continue  # another test's guest, gone meanwhile
        return found

    def caller(self, stop, defined, errors):
        """Allocate and define as fast as the agent answers; one in five
        callers gives up before defining, leaving a pending allocation.
        Only a timeout is an answer while the agent is down; anything
        else goes to errors, for the test to fail on."""
        while not stop.is_set():
            instance_uuid = str(uuid.uuid4())
            try:
                result = self.compute.allocate_serial_ports(
                    {}, self.host, instance_uuid,
                    count=random.randint(1, 3))
            except messaging.MessagingTimeout:
                continue  # the agent is down: the call timed out
            except Exception as exc:
                errors.append(repr(exc))
                return
            if random.random() < 0.2:
                continue
            self.define_stopped(instance_uuid, result['devices'])
            defined[instance_uuid] = {p['port']: p['index']
                                      for p in result['ports']}

    def inconsistencies(self, ours):
        """What keeps the pool from agreeing with libvirt, or []."""
        problems = []
        in_libvirt = self.libvirt_ports()
        lo, hi = port_pool.parse_port_range(self.port_range)
        for a in self.pool().allocations():
            named = in_libvirt.get(a['instance_uuid'], {})
            if named.get(a['port']) != a['index']:
                problems.append('pool allocates %(port)s to %(instance_uuid)s'
                                ' which does not name it' % a)
        for instance_uuid in ours:
            in_range = {p: i for p, i in in_libvirt[instance_uuid].items()
                        if lo <= p < hi}
            if self.pool_ports(instance_uuid) != in_range:
                problems.append('pool has %s for %s, libvirt %s' % (
                    self.pool_ports(instance_uuid), instance_uuid,
                    in_range))
        return problems

    def test_pool_agrees_with_libvirt_after_sigkill_mid_allocation(self):
        stop = threading.Event()
        defined = {}
        errors = []
        caller = threading.Thread(target=self.caller,
                                  args=(stop, defined, errors))
        caller.start()

        def defined_at_least(count):
            if errors:
                raise AssertionError('the caller failed: %s' % errors)
            return len(defined) >= count
        try:
            func_fixtures.wait_for(lambda: defined_at_least(15), 120,
                                   'domains to be defined')
            self.deployment.stop(self.agent, signal.SIGKILL)
            time.sleep(1)  # calls in flight now wait on a dead agent
            self.agent = self.deployment.start('serialproxy-compute')
            self.deployment.wait_ready()
            count = len(defined)
            func_fixtures.wait_for(lambda: defined_at_least(count + 5), 120,
                                   'allocations after the restart')
        finally:
            stop.set()
            caller.join()
        self.assertEqual([], errors)
        ours = dict(defined)
        # No port was handed to two domains.
        all_ports = [p for ports in ours.values() for p in ports]
        self.assertEqual(len(all_ports), len(set(all_ports)))
        # Pending allocations of callers that gave up go once stale
        # (3 s here), on the agent's next periodic sync (2 s).
        problems = []

        def consistent():
            problems[:] = self.inconsistencies(ours)
            return not problems
        try:
            func_fixtures.wait_for(consistent, 30, 'a consistent pool')
        except AssertionError:
            self.fail('\n'.join(problems))
        self.assertEqual(sorted(all_ports), sorted(
            a['port'] for a in self.pool().allocations()
            if a['instance_uuid'] in ours))
