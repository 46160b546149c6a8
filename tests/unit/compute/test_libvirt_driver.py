"""The driver against libvirt's own test driver: real libvirt, no QEMU."""

import uuid

import libvirt

from serialproxy.compute import domain_xml
from serialproxy.compute import libvirt_driver
from serialproxy import exception
from tests.unit import base

TEST_URI = 'test:///default'

DOMAIN = """<domain type='test'>
  <name>%(name)s</name>
  <uuid>%(uuid)s</uuid>
  <memory>65536</memory>
  <os><type>hvm</type></os>
  <devices>%(devices)s</devices>
</domain>"""

SERIAL = """<serial type='tcp'>
  <source mode='bind' host='127.0.0.1' service='%d'/>
  <protocol type='raw'/><target port='%d'/></serial>"""


class DriverTestCase(base.TestCase):
    """A driver over test:///default and a way to define domains there."""

    def setUp(self):
        super().setUp()
        self.conn = libvirt.open(TEST_URI)
        self.addCleanup(self.conn.close)
        self.driver = libvirt_driver.LibvirtDriver(TEST_URI, 'compute-1',
                                                   '127.0.0.1')

    def define(self, devices='', start=True):
        instance_uuid = str(uuid.uuid4())
        dom = self.conn.defineXML(DOMAIN % {
            'name': 'vm-' + instance_uuid[:8], 'uuid': instance_uuid,
            'devices': devices})
        if start:
            dom.create()
        self.addCleanup(self._remove, dom)
        return instance_uuid

    @staticmethod
    def _remove(dom):
        if dom.isActive():
            dom.destroy()
        dom.undefine()


class LibvirtDriverTest(DriverTestCase):
    def test_serial_console_of_running_domain(self):
        instance_uuid = self.define(SERIAL % (10041, 0) + SERIAL % (10042, 1))
        self.assertEqual({'index': 1, 'host': '127.0.0.1', 'port': 10042},
                         self.driver.get_serial_console(instance_uuid, 1))

    def test_unknown_instance(self):
        self.assertRaises(exception.InstanceNotFound,
                          self.driver.get_serial_console,
                          str(uuid.uuid4()), 0)

    def test_stopped_instance_is_not_running(self):
        instance_uuid = self.define(SERIAL % (10043, 0), start=False)
        self.assertRaises(exception.InstanceNotRunning,
                          self.driver.get_serial_console, instance_uuid, 0)

    def test_domain_without_serial_port(self):
        instance_uuid = self.define()
        self.assertRaises(exception.SerialPortNotFound,
                          self.driver.get_serial_console, instance_uuid, 0)

    def test_missing_index(self):
        instance_uuid = self.define(SERIAL % (10044, 0))
        self.assertRaises(exception.SerialPortNotFound,
                          self.driver.get_serial_console, instance_uuid, 3)

    def test_list_instances_reports_uuid_name_state(self):
        running = self.define(SERIAL % (10045, 0))
        stopped = self.define(start=False)
        listed = {i['uuid']: i for i in self.driver.list_instances()}
        self.assertEqual('running', listed[running]['state'])
        self.assertEqual('shutoff', listed[stopped]['state'])
        self.assertEqual('compute-1', listed[running]['host'])
        self.assertEqual('vm-' + running[:8], listed[running]['name'])

    def test_unreachable_hypervisor(self):
        driver = libvirt_driver.LibvirtDriver(
            'qemu+unix:///system?socket=/nonexistent/sock', 'compute-1',
            '127.0.0.1')
        self.assertRaises(exception.HypervisorUnavailable,
                          driver.get_serial_console, str(uuid.uuid4()), 0)


class DomainPortsTest(DriverTestCase):
    """What the port pool learns from libvirt about a domain."""

    def test_generated_devices_are_accepted_and_read_back(self):
        devices = domain_xml.serial_devices([10051, 10052], '127.0.0.1',
                                            '/var/log/sp/c.log')
        instance_uuid = self.define(''.join(devices))
        instance, ports = self.driver.instance_and_ports(instance_uuid)
        self.assertEqual({10051: 0, 10052: 1}, ports)
        self.assertEqual('running', instance['state'])
        self.assertEqual('/var/log/sp/c.log',
                         self.driver.console_log_file(instance_uuid))
        self.assertEqual({'index': 1, 'host': '127.0.0.1', 'port': 10052},
                         self.driver.get_serial_console(instance_uuid, 1))

    def test_domain_without_serial_devices_has_no_ports(self):
        instance_uuid = self.define()
        self.assertEqual({}, self.driver.instance_and_ports(
            instance_uuid)[1])
        self.assertIsNone(self.driver.console_log_file(instance_uuid))

    def test_unknown_domain_is_none(self):
        self.assertIsNone(self.driver.instance_and_ports(str(uuid.uuid4())))

    def test_next_boot_config_ports_count_while_running(self):
        instance_uuid = self.define(SERIAL % (10053, 0))
        config = self.driver.domain_config(instance_uuid)
        self.driver.define(domain_xml.with_serial_devices(
            config['xml'], domain_xml.serial_devices([10054], '127.0.0.1')))
        self.assertEqual({10053: 0, 10054: 0},
                         self.driver.instance_and_ports(instance_uuid)[1])

    def test_running_domains_come_last(self):
        running = self.define(SERIAL % (10055, 0))
        stopped = self.define(SERIAL % (10055, 0), start=False)
        order = [i['uuid'] for i, _ in self.driver.instances_and_ports()]
        self.assertLess(order.index(stopped), order.index(running))

    def test_domain_config_by_name_or_uuid(self):
        instance_uuid = self.define(start=False)
        by_name = self.driver.domain_config('vm-' + instance_uuid[:8])
        self.assertEqual(instance_uuid, by_name['uuid'])
        self.assertFalse(by_name['active'])
        self.assertEqual(by_name, self.driver.domain_config(instance_uuid))
        self.assertRaises(exception.InstanceNotFound,
                          self.driver.domain_config, 'no-such-domain')

    def test_malformed_domain_xml_is_refused_with_libvirts_reason(self):
        exc = self.assertRaises(exception.Invalid, self.driver.define,
                                '<domain type="test"><name>x</name>')
        self.assertIn('libvirt refused the domain XML', str(exc))


def libvirt_error(code):
    """A libvirtError carrying code, as libvirt-python raises them."""
    exc = libvirt.libvirtError('failed')
    exc.err = (code, libvirt.VIR_FROM_RPC, 'failed', 2, None, None, None, 0,
               0)
    return exc


class Failing:
    """A stand-in for a domain or connection whose calls raise."""

    def __init__(self, error, uuid_string='', **working):
        self.error = error
        self.uuid_string = uuid_string
        self.working = working

    def isAlive(self):
        return True

    def UUIDString(self):
        return self.uuid_string

    def __getattr__(self, name):
        if name in self.working:
            return self.working[name]

        def call(*args):
            raise self.error
        return call


class LostConnectionTest(DriverTestCase):
    """libvirtd going away mid-call is "cannot ask", never "not there":
    the proxy would answer 401 to a valid console, the agent would free
    the ports of domains it failed to read."""

    lost = libvirt.VIR_ERR_SYSTEM_ERROR

    def test_lookup_failing_is_unavailable(self):
        self.driver._conn = Failing(libvirt_error(self.lost))
        for call in (lambda u: self.driver.get_serial_console(u, 0),
                     self.driver.console_log_file,
                     self.driver.instance_and_ports):
            self.assertRaises(exception.HypervisorUnavailable, call,
                              str(uuid.uuid4()))

    def test_reading_the_domain_failing_is_unavailable(self):
        instance_uuid = self.define(SERIAL % (10061, 0))
        self.driver._conn = Failing(
            None, lookupByUUIDString=lambda u: Failing(
                libvirt_error(self.lost), u))
        self.assertRaises(exception.HypervisorUnavailable,
                          self.driver.get_serial_console, instance_uuid, 0)
        self.assertRaises(exception.HypervisorUnavailable,
                          self.driver.console_log_file, instance_uuid)

    def test_domain_gone_mid_call_is_not_found(self):
        self.driver._conn = Failing(
            None, lookupByUUIDString=lambda u: Failing(
                libvirt_error(libvirt.VIR_ERR_NO_DOMAIN), u))
        self.assertRaises(exception.InstanceNotFound,
                          self.driver.get_serial_console,
                          str(uuid.uuid4()), 0)
        self.assertIsNone(self.driver.instance_and_ports(str(uuid.uuid4())))

    def test_listing_is_never_partial(self):
        kept = self.define(SERIAL % (10062, 0))
        real = self.conn.listAllDomains()
        gone = Failing(libvirt_error(libvirt.VIR_ERR_NO_DOMAIN),
                       str(uuid.uuid4()))
        self.driver._conn = Failing(
            None, listAllDomains=lambda: real + [gone])
        listed = [i['uuid'] for i, _ in self.driver.instances_and_ports()]
        self.assertIn(kept, listed)
        self.assertNotIn(gone.uuid_string, listed)
        unreadable = Failing(libvirt_error(self.lost), str(uuid.uuid4()))
        self.driver._conn = Failing(
            None, listAllDomains=lambda: real + [unreadable])
        self.assertRaises(exception.HypervisorUnavailable,
                          self.driver.instances_and_ports)
        self.driver._conn = Failing(libvirt_error(self.lost))
        self.assertRaises(exception.HypervisorUnavailable,
                          self.driver.instances_and_ports)


class RecordingDomain:
    """A running libvirt domain whose sendKey/injectNMI calls are kept.

    test:///default accepts both calls but keeps no trace of them, so the
    keys pressed are checked here, at libvirt's edge.
    """

    def __init__(self, dom, error=None):
        self.dom = dom
        self.error = error
        self.calls = []

    def isActive(self):
        return self.dom.isActive()

    def sendKey(self, *args):
        self.calls.append(('sendKey',) + args)
        if self.error:
            raise self.error
        return self.dom.sendKey(*args)

    def injectNMI(self, flags):
        self.calls.append(('injectNMI', flags))
        if self.error:
            raise self.error
        return self.dom.injectNMI(flags)


class SysRqAndNMITest(DriverTestCase):
    def recording(self, instance_uuid, error=None):
        recorder = RecordingDomain(
            self.conn.lookupByUUIDString(instance_uuid), error)
        real = self.driver._domain
        self.driver._domain = lambda uuid_: (
            recorder if uuid_ == instance_uuid else real(uuid_))
        return recorder

    def test_sysrq_presses_alt_sysrq_and_the_keys_linux_code(self):
        instance_uuid = self.define()
        recorder = self.recording(instance_uuid)
        self.driver.send_sysrq(instance_uuid, 'h')
        self.driver.send_sysrq(instance_uuid, '9')
        self.assertEqual(
            [('sendKey', libvirt.VIR_KEYCODE_SET_LINUX,
              libvirt_driver.SYSRQ_HOLD_MS, [56, 99, 35], 3, 0),
             ('sendKey', libvirt.VIR_KEYCODE_SET_LINUX,
              libvirt_driver.SYSRQ_HOLD_MS, [56, 99, 10], 3, 0)],
            recorder.calls)

    def test_sysrq_and_nmi_reach_real_libvirt(self):
        instance_uuid = self.define()
        self.driver.send_sysrq(instance_uuid, 's')
        self.driver.inject_nmi(instance_uuid)

    def test_key_outside_the_set_is_refused_before_libvirt(self):
        instance_uuid = self.define()
        recorder = self.recording(instance_uuid)
        for key in ('a', 'H', 'alt', ''):
            self.assertRaises(exception.SysRqKeyInvalid,
                              self.driver.send_sysrq, instance_uuid, key)
        self.assertEqual([], recorder.calls)

    def test_stopped_domain_is_not_running(self):
        instance_uuid = self.define(start=False)
        self.assertRaises(exception.InstanceNotRunning,
                          self.driver.send_sysrq, instance_uuid, 'h')
        self.assertRaises(exception.InstanceNotRunning,
                          self.driver.inject_nmi, instance_uuid)

    def test_unknown_domain_is_not_found(self):
        self.assertRaises(exception.InstanceNotFound,
                          self.driver.inject_nmi, str(uuid.uuid4()))

    def failing_domain(self, code):
        instance_uuid = self.define()
        error = libvirt.libvirtError('failed')
        error.err = (code, 0, '', 0)
        self.recording(instance_uuid, error)
        return instance_uuid

    def test_domain_stopping_meanwhile_is_not_running(self):
        self.assertRaises(
            exception.InstanceNotRunning, self.driver.inject_nmi,
            self.failing_domain(libvirt.VIR_ERR_OPERATION_INVALID))

    def test_other_libvirt_failure_is_hypervisor_unavailable(self):
        self.assertRaises(
            exception.HypervisorUnavailable, self.driver.send_sysrq,
            self.failing_domain(libvirt.VIR_ERR_INTERNAL_ERROR), 'h')
