"""The hypervisor side of the compute agent, over libvirt-python."""

import threading

import libvirt
from oslo_log import log as logging

from serialproxy.compute import domain_xml
from serialproxy import exception

LOG = logging.getLogger(__name__)

# libvirt prints every error to stderr by default; we log the ones that
# matter ourselves.
libvirt.registerErrorHandler(lambda ctxt, error: None, None)

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: 'nostate',
    libvirt.VIR_DOMAIN_RUNNING: 'running',
    libvirt.VIR_DOMAIN_BLOCKED: 'running',
    libvirt.VIR_DOMAIN_PAUSED: 'paused',
    libvirt.VIR_DOMAIN_SHUTDOWN: 'shutdown',
    libvirt.VIR_DOMAIN_SHUTOFF: 'shutoff',
    libvirt.VIR_DOMAIN_CRASHED: 'crashed',
    libvirt.VIR_DOMAIN_PMSUSPENDED: 'suspended',
}


class LibvirtDriver:
    def __init__(self, uri, host, proxyclient_address):
        self.uri = uri
        self.host = host
        self.proxyclient_address = proxyclient_address
        self._conn = None
        self._lock = threading.Lock()

    def _connection(self):
        with self._lock:
            if self._conn is None or not self._conn.isAlive():
                try:
                    self._conn = libvirt.open(self.uri)
                except libvirt.libvirtError as exc:
                    LOG.error('Cannot connect to libvirt at %s: %s',
                              self.uri, exc)
                    raise exception.HypervisorUnavailable(host=self.host)
            return self._conn

    def _domain(self, instance_uuid):
        try:
            return self._connection().lookupByUUIDString(instance_uuid)
        except (libvirt.libvirtError, ValueError):
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)

    def list_instances(self):
        """Every defined domain, as an instance registry entry."""
        instances = []
        for dom in self._connection().listAllDomains():
            try:
                xml_text = dom.XMLDesc(0)
                state = _STATES.get(dom.state()[0], 'unknown')
            except libvirt.libvirtError:
                continue  # undefined while we were looking
            project_id, user_id = domain_xml.owner(xml_text)
            instances.append({'uuid': dom.UUIDString(), 'name': dom.name(),
                              'state': state, 'host': self.host,
                              'project_id': project_id, 'user_id': user_id})
        return instances

    def serial_ports(self, instance_uuid):
        """TCP serial ports of a running instance, from its live XML."""
        dom = self._domain(instance_uuid)
        try:
            active = dom.isActive()
            xml_text = dom.XMLDesc(0)
        except libvirt.libvirtError:
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        if not active:
            raise exception.InstanceNotRunning(instance_uuid=instance_uuid)
        return domain_xml.tcp_serial_ports(xml_text,
                                           self.proxyclient_address)

    def get_serial_console(self, instance_uuid, index):
        for port in self.serial_ports(instance_uuid):
            if port['index'] == index:
                return port
        raise exception.SerialPortNotFound(instance_uuid=instance_uuid,
                                           index=index)
