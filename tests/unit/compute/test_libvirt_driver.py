"""The driver against libvirt's own test driver: real libvirt, no QEMU."""

import uuid

import libvirt

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


class LibvirtDriverTest(base.TestCase):
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
