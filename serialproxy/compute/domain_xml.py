"""Reading and writing what serialproxy needs in libvirt domain XML.

Pure functions over XML text, so they are tested without a hypervisor.
"""

import xml.etree.ElementTree as ET

from serialproxy import exception

# Nova writes the owner of an instance into this metadata namespace.
NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'
# Ours, for guests that Nova did not define.
SERIALPROXY_NS = 'http://openstack.org/xmlns/serialproxy/1.0'

# Keep the prefixes readable when a domain is written back.
ET.register_namespace('nova', NOVA_NS)
ET.register_namespace('serialproxy', SERIALPROXY_NS)

# Addresses that mean "every address": a client must use a real one.
_WILDCARD_HOSTS = ('', '0.0.0.0', '::', '[::]')


# Kept here for callers of the skeleton; it lives in serialproxy.exception
# so that it crosses RPC by name like every other error.
DomainXMLInvalid = exception.DomainXMLInvalid


def _parse(xml_text):
    try:
        return ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise DomainXMLInvalid(reason=str(exc))


def tcp_serial_ports(xml_text, default_host):
    """The TCP listening serial ports of a domain, in target-port order.

    Each is {'index': target port, 'host': address, 'port': TCP port}.
    Only <serial type='tcp'> devices in bind mode count: those are the ones
    a proxy can connect to. A wildcard bind address is replaced by
    default_host, the address the proxy should use instead.
    """
    root = _parse(xml_text)
    ports = []
    for position, serial in enumerate(root.findall('./devices/serial')):
        if serial.get('type') != 'tcp':
            continue
        source = serial.find('source')
        if source is None or source.get('mode', 'connect') != 'bind':
            continue
        port = _number(source.get('service'), 1, 65535)
        if port is None:
            continue
        target = serial.find('target')
        index = _number(target.get('port') if target is not None else None,
                        0, 65535)
        if index is None:
            index = position
        host = source.get('host') or ''
        if host in _WILDCARD_HOSTS:
            host = default_host
        ports.append({'index': index, 'host': host, 'port': port})
    return sorted(ports, key=lambda p: p['index'])


def _number(text, lowest, highest):
    """text as an int within [lowest, highest], or None.

    Only ASCII digits: int() would also take '+7', ' 7' and other
    scripts' digits, which libvirt would not have written.
    """
    if text is None or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if lowest <= value <= highest else None


def owner(xml_text):
    """(project_id, user_id) from Nova's or our domain metadata, or Nones."""
    root = _parse(xml_text)
    for ns in (NOVA_NS, SERIALPROXY_NS):
        found = root.find('./metadata/{%s}instance/{%s}owner' % (ns, ns))
        if found is None:
            found = root.find('./metadata/{%s}owner' % ns)
        if found is not None:
            project = found.find('{%s}project' % ns)
            user = found.find('{%s}user' % ns)
            return (project.get('uuid') if project is not None else None,
                    user.get('uuid') if user is not None else None)
    return None, None


def serial_devices(ports, host, log_file=None):
    """<serial type='tcp'> elements, as XML text, for ports 0..n-1.

    Each binds on host (the proxyclient address) with the raw protocol, so
    the proxy reaches the guest's ttyS<i>. Port 0 also gets a <log> so
    virtlogd keeps the console output, truncated at each start
    (append='off') and bounded by virtlogd's max_size.
    """
    devices = []
    for index, port in enumerate(ports):
        serial = ET.Element('serial', type='tcp')
        ET.SubElement(serial, 'source', mode='bind', host=host,
                      service=str(port))
        if index == 0 and log_file:
            ET.SubElement(serial, 'log', file=log_file, append='off')
        ET.SubElement(serial, 'protocol', type='raw')
        ET.SubElement(serial, 'target', port=str(index))
        devices.append(ET.tostring(serial, encoding='unicode'))
    return devices


def with_serial_devices(xml_text, devices):
    """The domain with its serial and console devices replaced by devices.

    Every existing <serial> and <console> goes: the new port 0 must be the
    guest's ttyS0, and libvirt derives the <console> from it again.
    """
    root = _parse(xml_text)
    parent = root.find('devices')
    if parent is None:
        parent = ET.SubElement(root, 'devices')
    for tag in ('serial', 'console'):
        for old in parent.findall(tag):
            parent.remove(old)
    for device in devices:
        parent.append(_parse(device))
    return ET.tostring(root, encoding='unicode')


def console_log_file(xml_text):
    """The <log file> of serial port 0, where the console output goes."""
    root = _parse(xml_text)
    for position, serial in enumerate(root.findall('./devices/serial')):
        target = serial.find('target')
        index = target.get('port') if target is not None else None
        if index is None:
            index = str(position)
        log = serial.find('log')
        if index == '0' and log is not None and log.get('file'):
            return log.get('file')
    return None
