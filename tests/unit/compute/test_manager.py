"""The compute agent through real RPC, on libvirt's test driver.

Real consoleauth, real port pool file, real libvirt lifecycle events from
test:///default; only the port probe is replaced, since the test driver's
guests listen on nothing.
"""

import base64
from operator import itemgetter
import os
import time
import uuid

import libvirt
import oslo_messaging as messaging

from serialproxy.compute import console_history
from serialproxy.compute import libvirt_driver
from serialproxy.compute import lifecycle
from serialproxy.compute import manager
from serialproxy.compute import port_pool
from serialproxy.compute import rpcapi
from serialproxy.compute import serial_consoles
from serialproxy.consoleauth import manager as consoleauth_manager
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy.db import api as db_api
from serialproxy.proxy import rpcapi as proxy_rpcapi
from serialproxy import exception
from serialproxy import rpc
from tests.unit import base
from tests.unit.compute.test_libvirt_driver import DOMAIN
from tests.unit.compute.test_libvirt_driver import TEST_URI
from tests.unit import rpc_fixture

HOST = 'compute-1'


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('condition not met in %ss' % timeout)
        time.sleep(0.05)


class ComputeManagerTest(base.TestCase):
    def setUp(self):
        super().setUp()
        database = db_api.Database('sqlite:///%s/ca.sqlite' % self.state_path)
        database.sync()
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        rpc.serve(consoleauth_rpcapi.TOPIC,
                  consoleauth_manager.ConsoleAuthManager(
                      database, proxy_rpcapi.ProxyAPI()))
        self.consoleauth = consoleauth_rpcapi.ConsoleAuthAPI()
        self.pool = self.make_pool('10000:10006')
        self.log_dir = os.path.join(self.state_path, 'console-log')
        driver = libvirt_driver.LibvirtDriver(TEST_URI, HOST, '127.0.0.1')
        self.manager = manager.ComputeManager(
            driver, self.consoleauth,
            serial_consoles.SerialConsoles(self.pool, '127.0.0.1',
                                           self.log_dir),
            console_output_max_bytes=4096,
            console_histories=console_history.ConsoleHistories(
                os.path.join(self.state_path, 'console-history')))
        rpc.serve(rpcapi.TOPIC, self.manager, server=HOST)
        self.compute = rpcapi.ComputeAPI()
        self.conn = libvirt.open(TEST_URI)
        self.addCleanup(self.conn.close)

    def make_pool(self, port_range, name='pool.sqlite'):
        pool = port_pool.PortPool(
            os.path.join(self.state_path, name), port_range, '127.0.0.1',
            host=HOST, probe=lambda host, port: True)
        self.addCleanup(pool.close)
        return pool

    def listen_to_events(self):
        events = lifecycle.LifecycleEvents(
            TEST_URI, self.manager.instance_changed,
            self.manager.sync_instances)
        events.start()
        self.addCleanup(events.stop)

    def define(self, devices=(), instance_uuid=None, start=True):
        instance_uuid = instance_uuid or str(uuid.uuid4())
        dom = self.conn.defineXML(DOMAIN % {
            'name': 'vm-' + instance_uuid[:8], 'uuid': instance_uuid,
            'devices': ''.join(devices)})
        if start:
            dom.create()
        self.addCleanup(self._remove, instance_uuid)
        return dom

    def _remove(self, instance_uuid):
        try:
            dom = self.conn.lookupByUUIDString(instance_uuid)
        except libvirt.libvirtError:
            return
        if dom.isActive():
            dom.destroy()
        dom.undefine()

    def allocate(self, instance_uuid, count=None):
        return self.compute.allocate_serial_ports({}, HOST, instance_uuid,
                                                  count=count)

    def confirmed(self, instance_uuid):
        return [a['port'] for a in self.pool.allocations(instance_uuid)
                if a['confirmed']]

    def registered(self, instance_uuid):
        try:
            return self.consoleauth.get_instance({}, instance_uuid)
        except exception.InstanceNotFound:
            return None

    def test_unanswered_report_gives_up_long_before_rpc_call_timeout(self):
        # A report sent before consoleauth's queue exists is dropped by the
        # broker; the agent must try again soon, not after 30 s.
        self.flags(rpc_call_timeout=60)
        self.patch(manager, 'REPORT_TIMEOUT', 0.5)
        self.patch(consoleauth_rpcapi, 'TOPIC', 'nobody-listens')
        unanswered = manager.ComputeManager(
            self.manager.driver, consoleauth_rpcapi.ConsoleAuthAPI(),
            self.manager.serial_consoles, console_output_max_bytes=4096)
        started = time.monotonic()
        self.assertRaises(messaging.MessagingTimeout,
                          unanswered.report_instances)
        self.assertLess(time.monotonic() - started, 30)

    def test_defined_domain_confirms_ports_and_is_registered(self):
        self.listen_to_events()
        instance_uuid = str(uuid.uuid4())
        result = self.allocate(instance_uuid, count='2')
        ports = [p['port'] for p in result['ports']]
        self.assertEqual([], self.confirmed(instance_uuid))
        self.define(result['devices'], instance_uuid)
        wait_for(lambda: self.confirmed(instance_uuid) == ports)
        wait_for(lambda: (self.registered(instance_uuid) or {}).get(
            'state') == 'running')
        self.assertEqual(HOST, self.registered(instance_uuid)['host'])

    def test_undefined_domain_frees_ports_and_leaves_the_registry(self):
        self.listen_to_events()
        instance_uuid = str(uuid.uuid4())
        result = self.allocate(instance_uuid)
        dom = self.define(result['devices'], instance_uuid)
        wait_for(lambda: self.registered(instance_uuid))
        dom.destroy()
        dom.undefine()
        wait_for(lambda: self.registered(instance_uuid) is None)
        self.assertEqual([], self.pool.allocations(instance_uuid))
        self.assertEqual('released',
                         self.pool.port_status(result['ports'][0]['port']))

    def test_stopped_domain_keeps_its_ports(self):
        self.listen_to_events()
        instance_uuid = str(uuid.uuid4())
        dom = self.define(self.allocate(instance_uuid)['devices'],
                          instance_uuid)
        wait_for(lambda: self.confirmed(instance_uuid))
        dom.destroy()
        wait_for(lambda: (self.registered(instance_uuid) or {}).get(
            'state') == 'shutoff')
        self.assertEqual(1, len(self.confirmed(instance_uuid)))

    def test_exhausted_range_reaches_the_caller_as_a_400(self):
        self.allocate(str(uuid.uuid4()), 3)
        self.allocate(str(uuid.uuid4()), 3)
        exc = self.assertRaises(exception.PortRangeExhausted, self.allocate,
                                str(uuid.uuid4()))
        self.assertEqual(400, exc.code)
        self.assertIn('10000:10006', str(exc))

    def test_more_ports_than_nova_allows_is_refused(self):
        self.assertRaises(exception.SerialPortNumberLimitExceeded,
                          self.allocate, str(uuid.uuid4()), 4)

    def test_first_allocation_reconciles_before_handing_out(self):
        # A stopped domain names port 10000; the pool file is new.
        stopped = self.define(
            ['<serial type="tcp"><source mode="bind" host="127.0.0.1" '
             'service="10000"/><target port="0"/></serial>'], start=False)
        result = self.allocate(str(uuid.uuid4()))
        self.assertNotEqual(10000, result['ports'][0]['port'])
        self.assertEqual([10000], self.confirmed(stopped.UUIDString()))

    def test_sync_rebuilds_a_lost_pool_from_libvirt(self):
        instance_uuid = str(uuid.uuid4())
        self.define(self.allocate(instance_uuid, 2)['devices'],
                    instance_uuid)
        ports = [a['port'] for a in self.pool.allocations(instance_uuid)]
        self.manager.serial_consoles.pool = self.make_pool('10000:10006',
                                                           'new.sqlite')
        self.manager.sync_instances()
        self.assertEqual(ports, [
            a['port'] for a in self.manager.serial_consoles.pool.allocations(
                instance_uuid) if a['confirmed']])
        self.assertEqual('running', self.registered(instance_uuid)['state'])

    def test_release_frees_only_ports_no_domain_names(self):
        never_defined = str(uuid.uuid4())
        [pending] = self.allocate(never_defined)['ports']
        self.assertEqual([pending['port']], self.compute.release_serial_ports(
            {}, HOST, never_defined))
        defined = str(uuid.uuid4())
        self.define(self.allocate(defined)['devices'], defined)
        self.assertEqual([], self.compute.release_serial_ports({}, HOST,
                                                               defined))
        self.assertEqual(1, len(self.pool.allocations(defined)))

    def test_console_output_is_the_tail_of_port_zero_log(self):
        instance_uuid = str(uuid.uuid4())
        result = self.allocate(instance_uuid)
        self.define(result['devices'], instance_uuid)
        with open(result['log_file'], 'w') as log:
            log.write('Linux version 6.1\nbusybox init\n/ # \n')
        self.assertEqual('busybox init\n/ # \n',
                         self.compute.get_console_output(
                             {}, HOST, instance_uuid, length=2))
        self.assertEqual('Linux version 6.1\nbusybox init\n/ # \n',
                         self.compute.get_console_output(
                             {}, HOST, instance_uuid))

    def test_console_outputs_answer_each_instance_alone(self):
        logged = str(uuid.uuid4())
        result = self.allocate(logged)
        self.define(result['devices'], logged)
        with open(result['log_file'], 'w') as log:
            log.write('busybox init\n/ # \n')
        answers = rpc.batch_results(self.compute.get_console_outputs(
            {}, HOST, [logged, str(uuid.uuid4())], 1))
        self.assertEqual('/ # \n', answers[0])
        self.assertIsInstance(answers[1], exception.InstanceNotFound)

    def test_console_output_without_log_is_a_named_error(self):
        dom = self.define()
        exc = self.assertRaises(exception.ConsoleLogNotFound,
                                self.compute.get_console_output, {}, HOST,
                                dom.UUIDString())
        self.assertIn('no <log file=...>', str(exc))

    def test_console_output_of_unknown_instance_is_404(self):
        exc = self.assertRaises(exception.InstanceNotFound,
                                self.compute.get_console_output, {}, HOST,
                                str(uuid.uuid4()), 10)
        self.assertEqual(404, exc.code)

    def logged_guest(self):
        instance_uuid = str(uuid.uuid4())
        result = self.allocate(instance_uuid)
        dom = self.define(result['devices'], instance_uuid)
        return dom, result['log_file']

    def history(self, instance_uuid, start, max_bytes=None):
        page = self.compute.get_console_history({}, HOST, instance_uuid,
                                                start, max_bytes)
        page['data'] = base64.b64decode(page['data'])
        return page

    def test_console_history_reads_rotated_files_by_offset(self):
        dom, log = self.logged_guest()
        for suffix, data in (('.1', b'first '), ('.0', b'second '),
                             ('', b'third')):
            with open(log + suffix, 'wb') as f:
                f.write(data)
        self.assertEqual(
            {'data': b'cond th', 'start': 8, 'next': 15,
             'first_available': 0, 'end': 18},
            self.history(dom.UUIDString(), 8, 7))

    def rotate(self, log, data):
        if os.path.exists(log + '.0'):
            os.replace(log + '.0', log + '.1')
        os.replace(log, log + '.0')
        with open(log, 'wb') as f:
            f.write(data)

    def test_the_scan_keeps_offsets_across_rotations_nobody_read(self):
        dom, log = self.logged_guest()
        with open(log, 'wb') as f:
            f.write(b'a' * 10)
        for letter in b'bcdef':
            self.manager.scan_console_logs()
            self.rotate(log, bytes([letter]) * 10)
        page = self.history(dom.UUIDString(), 0)
        self.assertEqual((30, b'd' * 10 + b'e' * 10 + b'f' * 10, 60),
                         (page['first_available'], page['data'],
                          page['next']))

    def test_the_scan_forgets_the_records_of_domains_gone(self):
        dom, log = self.logged_guest()
        with open(log, 'wb') as f:
            f.write(b'x')
        self.manager.scan_console_logs()
        records = os.path.join(self.state_path, 'console-history')
        self.assertEqual(['%s.json' % dom.UUIDString()], os.listdir(records))
        dom.destroy()
        dom.undefine()
        self.manager.scan_console_logs()
        self.assertEqual([], os.listdir(records))

    def test_a_guest_started_again_has_history_from_zero(self):
        dom, log = self.logged_guest()
        with open(log, 'wb') as f:
            f.write(b'x' * 10)
        self.rotate(log, b'y' * 10)
        self.assertEqual(20, self.history(dom.UUIDString(), 0)['next'])
        dom.destroy()
        # virtlogd's part at a start (append='off'): the old files go.
        os.unlink(log + '.0')
        with open(log, 'wb') as f:
            f.write(b'boot 2')
        dom.create()
        self.assertEqual((b'boot 2', 0), itemgetter('data', 'start')(
            self.history(dom.UUIDString(), 0)))

    def test_console_history_without_log_is_404_naming_no_path(self):
        dom = self.define()
        exc = self.assertRaises(exception.ConsoleLogNotFound,
                                self.compute.get_console_history, {}, HOST,
                                dom.UUIDString())
        self.assertNotIn('/', exc.message)

    def test_validate_console_port_answers_for_the_guest_it_names(self):
        dom = self.define(
            ['<serial type="tcp"><source mode="bind" host="127.0.0.1" '
             'service="10003"/><target port="0"/></serial>'])
        uuid_ = dom.UUIDString()
        self.assertTrue(self.compute.validate_console_port(
            {}, HOST, uuid_, 10003, 0))
        self.assertFalse(self.compute.validate_console_port(
            {}, HOST, uuid_, 10004, 0))
        self.assertFalse(self.compute.validate_console_port(
            {}, HOST, str(uuid.uuid4()), 10003, 0))

    def test_validate_console_port_without_libvirt_is_unavailable(self):
        # "Cannot ask" must not read as "no": the proxy answers 503 to
        # the first and 401 (get a new URL) to the second.
        self.manager.driver.uri = \
            'qemu+unix:///system?socket=/nonexistent/sock'
        self.manager.driver._conn = None
        self.assertRaises(exception.HypervisorUnavailable,
                          self.compute.validate_console_port, {}, HOST,
                          str(uuid.uuid4()), 10003, 0)

    def test_console_output_length_must_be_lines(self):
        dom = self.define()
        self.assertRaises(exception.Invalid, self.compute.get_console_output,
                          {}, HOST, dom.UUIDString(), -3)

    def test_port_another_domain_names_stays_taken_when_one_goes(self):
        self.listen_to_events()
        first = str(uuid.uuid4())
        devices = self.allocate(first)['devices']
        port = self.pool.allocations(first)[0]['port']
        dom = self.define(devices, first)
        wait_for(lambda: self.confirmed(first))
        second = self.define(devices, start=False).UUIDString()
        wait_for(lambda: self.confirmed(second))
        dom.destroy()  # an event for the first: it takes the port back
        wait_for(lambda: self.confirmed(first))
        dom.undefine()
        wait_for(lambda: self.registered(first) is None)
        self.assertEqual([port], self.confirmed(second))

    # Tokens die with the console they name (CVE-2013-0335), since the
    # proxy no longer asks the agent about the port on every connect.

    def authorize(self, instance_uuid, port, host=HOST, index=0):
        return self.consoleauth.authorize_console(
            {}, instance_uuid, host, '127.0.0.1', port, index=index)

    def token_live(self, token):
        try:
            self.consoleauth.check_token({}, token)
            return True
        except exception.InvalidToken:
            return False

    def running_with_token(self):
        instance_uuid = str(uuid.uuid4())
        result = self.allocate(instance_uuid)
        dom = self.define(result['devices'], instance_uuid)
        port = result['ports'][0]['port']
        return instance_uuid, dom, port, self.authorize(instance_uuid, port)

    def test_undefined_domain_revokes_its_tokens(self):
        self.listen_to_events()
        instance_uuid, dom, port, token = self.running_with_token()
        other = self.authorize(str(uuid.uuid4()), 10005)
        elsewhere = self.authorize(instance_uuid, port, host='compute-2')
        wait_for(lambda: self.registered(instance_uuid))
        self.assertTrue(self.token_live(token))
        dom.destroy()
        dom.undefine()
        wait_for(lambda: not self.token_live(token))
        # Not another instance's, nor this one's on another host (it
        # migrated there: the source's events come last).
        self.assertTrue(self.token_live(other))
        self.assertTrue(self.token_live(elsewhere))

    def test_stopped_domain_revokes_its_tokens(self):
        self.listen_to_events()
        instance_uuid, dom, port, token = self.running_with_token()
        wait_for(lambda: self.registered(instance_uuid))
        dom.destroy()
        wait_for(lambda: not self.token_live(token))

    def test_released_ports_revoke_the_tokens_that_name_them(self):
        instance_uuid = str(uuid.uuid4())
        [pending] = self.allocate(instance_uuid)['ports']
        token = self.authorize(instance_uuid, pending['port'])
        self.compute.release_serial_ports({}, HOST, instance_uuid)
        self.assertFalse(self.token_live(token))

    def test_release_that_frees_nothing_keeps_tokens(self):
        instance_uuid, _, _, token = self.running_with_token()
        self.assertEqual([], self.compute.release_serial_ports(
            {}, HOST, instance_uuid))
        self.assertTrue(self.token_live(token))

    def test_report_after_downtime_revokes_tokens_of_changed_consoles(self):
        # The agent was down (no events) while one guest was deleted and
        # its port given to a new guest, and another's port was changed.
        gone, gone_dom, port, gone_token = self.running_with_token()
        moved, moved_dom, moved_port, moved_token = self.running_with_token()
        kept, _, kept_port, kept_token = self.running_with_token()
        gone_dom.destroy()
        gone_dom.undefine()
        successor = str(uuid.uuid4())
        serial = ('<serial type="tcp"><source mode="bind" host="127.0.0.1" '
                  'service="%d"/><target port="0"/></serial>')
        self.define([serial % port], successor)
        moved_dom.destroy()
        moved_dom.undefine()
        self.define([serial % 10006], moved)
        successor_token = self.authorize(successor, port)
        self.manager.sync_instances()
        self.assertFalse(self.token_live(gone_token))
        self.assertFalse(self.token_live(moved_token))
        self.assertTrue(self.token_live(kept_token))
        self.assertTrue(self.token_live(successor_token))
