from serialproxy.compute import domain_xml
from tests.unit import base

DOMAIN = """<domain type='qemu'>
  <name>vm</name>
  <metadata>%(metadata)s</metadata>
  <devices>
    %(devices)s
  </devices>
</domain>"""

TCP_SERIAL = """<serial type='tcp'>
  <source mode='bind' host='%s' service='%d'/>
  <protocol type='raw'/>
  <target port='%d'/>
</serial>"""


def domain(devices='', metadata=''):
    return DOMAIN % {'devices': devices, 'metadata': metadata}


class TcpSerialPortsTest(base.TestCase):
    def test_bind_ports_in_target_order(self):
        xml = domain(TCP_SERIAL % ('10.0.0.5', 10002, 1) +
                     TCP_SERIAL % ('10.0.0.5', 10001, 0))
        self.assertEqual(
            [{'index': 0, 'host': '10.0.0.5', 'port': 10001},
             {'index': 1, 'host': '10.0.0.5', 'port': 10002}],
            domain_xml.tcp_serial_ports(xml, '192.0.2.1'))

    def test_wildcard_bind_address_becomes_the_default_host(self):
        xml = domain(TCP_SERIAL % ('0.0.0.0', 10001, 0) +
                     TCP_SERIAL % ('::', 10002, 1))
        self.assertEqual(['192.0.2.1', '192.0.2.1'],
                         [p['host'] for p in domain_xml.tcp_serial_ports(
                             xml, '192.0.2.1')])

    def test_non_tcp_and_connect_mode_serials_are_ignored(self):
        xml = domain("""<serial type='pty'><target port='0'/></serial>
            <serial type='tcp'><source mode='connect' host='h'
              service='9'/><target port='1'/></serial>
            <serial type='tcp'><source mode='bind' host='h'
              service='x'/><target port='2'/></serial>""")
        self.assertEqual([], domain_xml.tcp_serial_ports(xml, 'h'))

    def test_domain_without_serial_devices_has_no_ports(self):
        self.assertEqual([], domain_xml.tcp_serial_ports(domain(), 'h'))

    def test_malformed_xml_is_a_clear_error(self):
        exc = self.assertRaises(domain_xml.DomainXMLInvalid,
                                domain_xml.tcp_serial_ports,
                                '<domain><devices>', 'h')
        self.assertIn('cannot be parsed', str(exc))
        self.assertEqual(400, exc.code)


class OwnerTest(base.TestCase):
    def test_nova_metadata_gives_project_and_user(self):
        metadata = """<nova:instance
              xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'>
            <nova:owner>
              <nova:user uuid='u-1'>alice</nova:user>
              <nova:project uuid='p-1'>demo</nova:project>
            </nova:owner></nova:instance>"""
        self.assertEqual(('p-1', 'u-1'),
                         domain_xml.owner(domain(metadata=metadata)))

    def test_serialproxy_metadata_gives_project_and_user(self):
        metadata = """<sp:owner
              xmlns:sp='http://openstack.org/xmlns/serialproxy/1.0'>
            <sp:project uuid='p-2'/><sp:user uuid='u-2'/></sp:owner>"""
        self.assertEqual(('p-2', 'u-2'),
                         domain_xml.owner(domain(metadata=metadata)))

    def test_no_metadata_means_no_owner(self):
        self.assertEqual((None, None), domain_xml.owner(domain()))


class SerialDevicesTest(base.TestCase):
    def test_tcp_bind_raw_devices_with_log_on_port_zero_only(self):
        devices = domain_xml.serial_devices([10001, 10002], '192.0.2.7',
                                            '/var/log/c/u.log')
        self.assertEqual(
            "<serial type=\"tcp\"><source mode=\"bind\" host=\"192.0.2.7\" "
            "service=\"10001\" /><log file=\"/var/log/c/u.log\" "
            "append=\"off\" /><protocol type=\"raw\" /><target port=\"0\" />"
            "</serial>", devices[0])
        self.assertNotIn('<log', devices[1])
        self.assertIn('<target port="1" />', devices[1])

    def test_generated_devices_read_back_as_ports(self):
        xml = domain(''.join(domain_xml.serial_devices(
            [10005, 10006], '192.0.2.7', '/l/u.log')))
        self.assertEqual(
            [{'index': 0, 'host': '192.0.2.7', 'port': 10005},
             {'index': 1, 'host': '192.0.2.7', 'port': 10006}],
            domain_xml.tcp_serial_ports(xml, 'h'))
        self.assertEqual('/l/u.log', domain_xml.console_log_file(xml))

    def test_log_path_is_escaped(self):
        [device] = domain_xml.serial_devices([1], 'h', "/l/a'b&<c>.log")
        xml = domain(device)
        self.assertEqual("/l/a'b&<c>.log", domain_xml.console_log_file(xml))


class WithSerialDevicesTest(base.TestCase):
    def test_existing_serial_and_console_devices_are_replaced(self):
        xml = domain("""<serial type='pty'><target port='0'/></serial>
            <console type='pty'><target type='serial' port='0'/></console>
            <memballoon model='none'/>""")
        new = domain_xml.with_serial_devices(
            xml, domain_xml.serial_devices([10009], 'h'))
        self.assertEqual([{'index': 0, 'host': 'h', 'port': 10009}],
                         domain_xml.tcp_serial_ports(new, 'h'))
        self.assertNotIn('pty', new)
        self.assertNotIn('<console', new)
        self.assertIn('memballoon', new)

    def test_domain_without_devices_gets_them(self):
        new = domain_xml.with_serial_devices(
            '<domain><name>x</name></domain>',
            domain_xml.serial_devices([10010], 'h'))
        self.assertEqual(10010,
                         domain_xml.tcp_serial_ports(new, 'h')[0]['port'])

    def test_nova_metadata_keeps_its_prefix(self):
        xml = domain(metadata="<nova:instance xmlns:nova="
                     "'http://openstack.org/xmlns/libvirt/nova/1.1'/>")
        new = domain_xml.with_serial_devices(xml, [])
        self.assertIn('<nova:instance', new)

    def test_malformed_xml_is_a_clear_error(self):
        self.assertRaises(domain_xml.DomainXMLInvalid,
                          domain_xml.with_serial_devices, '<domain>', [])


class ConsoleLogFileTest(base.TestCase):
    def test_only_port_zero_log_counts(self):
        xml = domain("""<serial type='tcp'><source mode='bind' host='h'
              service='1'/><log file='/l/one.log'/><target port='1'/>
            </serial>""")
        self.assertIsNone(domain_xml.console_log_file(xml))

    def test_serial_without_target_is_port_zero_by_position(self):
        xml = domain("<serial type='pty'><log file='/l/zero.log'/></serial>")
        self.assertEqual('/l/zero.log', domain_xml.console_log_file(xml))

    def test_no_serial_devices_means_no_log(self):
        self.assertIsNone(domain_xml.console_log_file(domain()))

    def test_malformed_xml_is_a_clear_error(self):
        self.assertRaises(domain_xml.DomainXMLInvalid,
                          domain_xml.console_log_file, '<domain')
