import os

from serialproxy.compute import domain_xml
from serialproxy.compute import port_pool
from serialproxy.compute import serial_consoles
from serialproxy import exception
from tests.unit import base

UUID = '44444444-4444-4444-8444-444444444444'


class SerialPortCountTest(base.TestCase):
    def test_default_is_one_as_in_nova(self):
        self.assertEqual(1, serial_consoles.serial_port_count(None))
        self.assertEqual(1, serial_consoles.serial_port_count(''))

    def test_image_property_strings_are_read(self):
        self.assertEqual(2, serial_consoles.serial_port_count('2'))
        self.assertEqual(3, serial_consoles.serial_port_count(3))

    def test_more_than_nova_allows_for_qemu_is_refused(self):
        exc = self.assertRaises(exception.SerialPortNumberLimitExceeded,
                                serial_consoles.serial_port_count, '4')
        self.assertEqual(400, exc.code)
        self.assertIn('exceeds 3 for qemu', str(exc))

    def test_counts_that_are_not_positive_integers_are_refused(self):
        for bad in ('0', -1, 'two', True, '1.5'):
            exc = self.assertRaises(exception.SerialPortCountInvalid,
                                    serial_consoles.serial_port_count, bad)
            self.assertEqual(400, exc.code)


class SerialConsolesTest(base.TestCase):
    def setUp(self):
        super().setUp()
        pool = port_pool.PortPool(
            os.path.join(self.state_path, 'pool.sqlite'), '10000:10010',
            '192.0.2.9', probe=lambda host, port: True)
        self.addCleanup(pool.close)
        self.log_dir = os.path.join(self.state_path, 'logs')
        self.consoles = serial_consoles.SerialConsoles(pool, '192.0.2.9',
                                                       self.log_dir)

    def test_allocation_gives_ports_devices_and_log(self):
        result = self.consoles.allocate(UUID, '2')
        self.assertEqual([0, 1], [p['index'] for p in result['ports']])
        self.assertEqual({'192.0.2.9'}, {p['host'] for p in result['ports']})
        log_file = os.path.join(self.log_dir, UUID + '.log')
        self.assertEqual(log_file, result['log_file'])
        self.assertTrue(os.path.isdir(self.log_dir))
        xml = '<domain><devices>%s</devices></domain>' % ''.join(
            result['devices'])
        self.assertEqual(result['ports'],
                         domain_xml.tcp_serial_ports(xml, 'unused'))
        self.assertEqual(log_file, domain_xml.console_log_file(xml))

    def test_refused_count_allocates_nothing(self):
        self.assertRaises(exception.SerialPortNumberLimitExceeded,
                          self.consoles.allocate, UUID, 4)
        self.assertEqual([], self.consoles.pool.allocations())
