"""The PROXY protocol header (v1 text, v2 binary) a load balancer sends
first on a TCP connection it passes through, without sockets.

HAProxy's "send-proxy" and "send-proxy-v2" tell the SSH listener, which
sees only the balancer's address, who the client is. The header is read
only from [console] trusted_proxies (see forwarded.py): anyone else could
name any address. Specification:
https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
"""

import dataclasses
import ipaddress
import struct

V1_PREFIX = b'PROXY '
# The longest v1 line, CRLF included (section 2.1).
V1_MAX_BYTES = 107
V2_SIGNATURE = b'\r\n\r\n\x00\r\nQUIT\n'
V2_HEADER_BYTES = 16
# Addresses take at most 216 bytes (AF_UNIX); TLVs beyond a small bound
# are refused rather than waited for.
V2_MAX_BYTES = V2_HEADER_BYTES + 512
_V2_FAMILIES = {0x11: (4, 'IPv4'), 0x21: (16, 'IPv6')}


class InvalidHeader(ValueError):
    """Not a PROXY protocol header, or a malformed or oversized one."""


@dataclasses.dataclass(frozen=True)
class Source:
    """The client the balancer names; None of a header means the
    balancer's own connection (v1 UNKNOWN, v2 LOCAL or another family)."""
    host: str
    port: int


def parse(data):
    """(Source or None, bytes consumed) once the header is complete, None
    while more bytes may complete it; InvalidHeader otherwise."""
    if data[:len(V2_SIGNATURE)] == V2_SIGNATURE[:len(data)]:
        return _parse_v2(data)
    if data[:len(V1_PREFIX)] == V1_PREFIX[:len(data)]:
        return _parse_v1(data)
    raise InvalidHeader('not a PROXY protocol header')


def wanted(data):
    """How many bytes may be read next without reading past the header
    (of which data is the start): what a v2 header's length announces,
    else one, since a v1 line ends where its CRLF is."""
    if len(data) >= V2_HEADER_BYTES and data.startswith(V2_SIGNATURE):
        length, = struct.unpack_from('!H', data, 14)
        return max(1, min(V2_HEADER_BYTES + length, V2_MAX_BYTES) -
                   len(data))
    return 1


def _parse_v1(data):
    end = data.find(b'\r\n', 0, V1_MAX_BYTES)
    if end < 0:
        if len(data) >= V1_MAX_BYTES:
            raise InvalidHeader('PROXY v1 line longer than %d bytes'
                                % V1_MAX_BYTES)
        return None
    try:
        fields = data[:end].decode('ascii').split(' ')
    except UnicodeDecodeError:
        raise InvalidHeader('PROXY v1 line is not ASCII')
    consumed = end + 2
    if len(fields) >= 2 and fields[1] == 'UNKNOWN':
        return None, consumed
    if len(fields) != 6 or fields[1] not in ('TCP4', 'TCP6'):
        raise InvalidHeader('malformed PROXY v1 line')
    _, family, source, destination, source_port, destination_port = fields
    version = 4 if family == 'TCP4' else 6
    for address in (source, destination):
        try:
            if ipaddress.ip_address(address).version != version:
                raise ValueError(address)
        except ValueError:
            raise InvalidHeader('malformed PROXY v1 address')
    return Source(source, _port(source_port)), consumed


def _port(text):
    if not text.isdigit() or (len(text) > 1 and text[0] == '0') or \
            int(text) > 65535:
        raise InvalidHeader('malformed PROXY v1 port')
    return int(text)


def _parse_v2(data):
    if len(data) < V2_HEADER_BYTES:
        return None
    version_command, family, length = struct.unpack_from('!BBH', data, 12)
    if version_command >> 4 != 2:
        raise InvalidHeader('unknown PROXY protocol version')
    command = version_command & 0x0f
    if command not in (0, 1):
        raise InvalidHeader('unknown PROXY v2 command')
    consumed = V2_HEADER_BYTES + length
    if consumed > V2_MAX_BYTES:
        raise InvalidHeader('PROXY v2 header longer than %d bytes'
                            % V2_MAX_BYTES)
    if len(data) < consumed:
        return None
    if command == 0 or family not in _V2_FAMILIES:
        # LOCAL (the balancer's own health check), or not TCP over IP:
        # the connection is the balancer's.
        return None, consumed
    size, _ = _V2_FAMILIES[family]
    if length < 2 * size + 4:
        raise InvalidHeader('PROXY v2 addresses cut short')
    body = data[V2_HEADER_BYTES:consumed]
    source = ipaddress.ip_address(bytes(body[:size]))
    source_port, = struct.unpack_from('!H', body, 2 * size)
    return Source(str(source), source_port), consumed
