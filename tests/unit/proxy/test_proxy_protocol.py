import ipaddress
import struct

from serialproxy.proxy import proxy_protocol as pp
from tests.unit import base

SSH = b'SSH-2.0-OpenSSH_9.2\r\n'


def v2(command=1, family=0x11, source='198.51.100.7', port=4711,
       destination='10.0.0.21', tlvs=b'', length=None):
    if family in (0x11, 0x21):
        body = (ipaddress.ip_address(source).packed +
                ipaddress.ip_address(destination).packed +
                struct.pack('!HH', port, 2222))
    else:
        body = b''
    body += tlvs
    return pp.V2_SIGNATURE + struct.pack(
        '!BBH', 0x20 | command, family,
        len(body) if length is None else length) + body


class V1Test(base.TestCase):
    def test_tcp4_and_tcp6_name_the_source(self):
        line = b'PROXY TCP4 198.51.100.7 10.0.0.21 4711 2222\r\n'
        self.assertEqual((pp.Source('198.51.100.7', 4711), len(line)),
                         pp.parse(line + SSH))
        line = b'PROXY TCP6 2001:db8::7 2001:db8::21 4711 2222\r\n'
        self.assertEqual((pp.Source('2001:db8::7', 4711), len(line)),
                         pp.parse(line + SSH))

    def test_unknown_is_the_balancer_s_own_connection(self):
        line = b'PROXY UNKNOWN\r\n'
        self.assertEqual((None, len(line)), pp.parse(line + SSH))

    def test_partial_line_waits_for_more(self):
        line = b'PROXY TCP4 198.51.100.7 10.0.0.21 4711 2222\r\n'
        for end in range(len(line)):
            self.assertIsNone(pp.parse(line[:end]), end)

    def test_malformed_lines_are_refused(self):
        for line in (b'PROXY TCP4 198.51.100.7 10.0.0.21 4711\r\n',
                     b'PROXY TCP5 198.51.100.7 10.0.0.21 4711 2222\r\n',
                     b'PROXY TCP4 2001:db8::7 10.0.0.21 4711 2222\r\n',
                     b'PROXY TCP4 198.51.100.777 10.0.0.21 4711 2222\r\n',
                     b'PROXY TCP4 198.51.100.7 10.0.0.21 65536 2222\r\n',
                     b'PROXY TCP4 198.51.100.7 10.0.0.21 04711 2222\r\n',
                     b'PROXY TCP4 198.51.100.7 10.0.0.21 -1 2222\r\n',
                     b'PROXY TCP4 \xff 10.0.0.21 4711 2222\r\n'):
            self.assertRaises(pp.InvalidHeader, pp.parse, line)

    def test_oversized_line_is_refused_without_waiting(self):
        self.assertRaises(pp.InvalidHeader, pp.parse,
                          b'PROXY TCP4 ' + b'1' * 200)


class V2Test(base.TestCase):
    def test_tcp4_and_tcp6_name_the_source(self):
        header = v2()
        self.assertEqual((pp.Source('198.51.100.7', 4711), len(header)),
                         pp.parse(header + SSH))
        header = v2(family=0x21, source='2001:db8::7',
                    destination='2001:db8::21')
        self.assertEqual((pp.Source('2001:db8::7', 4711), len(header)),
                         pp.parse(header + SSH))

    def test_tlvs_are_skipped(self):
        header = v2(tlvs=b'\x05\x00\x04abcd')
        self.assertEqual((pp.Source('198.51.100.7', 4711), len(header)),
                         pp.parse(header + SSH))

    def test_local_and_other_families_are_the_balancer_s_own(self):
        unix = v2(family=0x31, tlvs=b'x' * 216)
        for header in (v2(command=0), v2(family=0x00), unix):
            self.assertEqual((None, len(header)), pp.parse(header + SSH))

    def test_partial_header_waits_for_more(self):
        header = v2(tlvs=b'\x05\x00\x04abcd')
        for end in range(len(header)):
            self.assertIsNone(pp.parse(header[:end]), end)

    def test_malformed_headers_are_refused(self):
        bad_version = bytearray(v2())
        bad_version[12] = 0x11
        for header in (bytes(bad_version), v2(command=2),
                       v2(length=4)):
            self.assertRaises(pp.InvalidHeader, pp.parse, header + SSH)

    def test_oversized_header_is_refused_before_it_arrives(self):
        header = v2(length=pp.V2_MAX_BYTES)
        self.assertRaises(pp.InvalidHeader, pp.parse, header[:16])


class NotProxyTest(base.TestCase):
    def test_anything_else_is_refused_at_its_first_bytes(self):
        for data in (SSH, b'GET / HTTP/1.1\r\n', b'\x00', b'PROXX'):
            self.assertRaises(pp.InvalidHeader, pp.parse, data)
