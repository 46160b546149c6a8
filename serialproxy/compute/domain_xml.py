"""Reading what serialproxy needs out of libvirt domain XML.

Pure functions over XML text, so they are tested without a hypervisor.
"""

import xml.etree.ElementTree as ET

from serialproxy import exception

# Nova writes the owner of an instance into this metadata namespace.
NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'
# Ours, for guests that Nova did not define.
SERIALPROXY_NS = 'http://openstack.org/xmlns/serialproxy/1.0'

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
        try:
            port = int(source.get('service'))
        except (TypeError, ValueError):
            continue
        target = serial.find('target')
        index = position
        if target is not None and target.get('port') is not None:
            try:
                index = int(target.get('port'))
            except ValueError:
                pass
        host = source.get('host') or ''
        if host in _WILDCARD_HOSTS:
            host = default_host
        ports.append({'index': index, 'host': host, 'port': port})
    return sorted(ports, key=lambda p: p['index'])


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
