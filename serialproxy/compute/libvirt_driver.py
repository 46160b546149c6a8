"""The hypervisor side of the compute agent, over libvirt-python."""

import threading

import libvirt
from oslo_log import log as logging

from serialproxy.compute import domain_xml
from serialproxy import exception
from serialproxy import sysrq

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

# How long (ms) virDomainSendKey holds Alt+SysRq+key down: long enough
# for the guest's keyboard driver to see the chord.
SYSRQ_HOLD_MS = 100

# Errors by which libvirt says a domain is not there (or never could be).
_DOMAIN_GONE = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_INVALID_ARG)


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
        except ValueError:
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        except libvirt.libvirtError as exc:
            raise self._error(exc, instance_uuid)

    def _error(self, exc, instance_uuid):
        """What a libvirt error about one domain means to our callers.

        Only libvirt saying the domain is not there is InstanceNotFound;
        anything else (libvirtd stopped mid-call) is HypervisorUnavailable,
        for a "not found" would refuse a valid console with 401, or free
        the ports of a domain that still has them.
        """
        if exc.get_error_code() in _DOMAIN_GONE:
            return exception.InstanceNotFound(instance_uuid=instance_uuid)
        LOG.warning('libvirt failed a call about instance %s: %s',
                    instance_uuid, exc)
        return exception.HypervisorUnavailable(host=self.host)

    def list_instances(self):
        """Every defined domain, as an instance registry entry."""
        return [instance for instance, _ in self.instances_and_ports()]

    def instances_and_ports(self):
        """(registry entry, {port: serial index}) of every domain.

        Running domains come last, so that when two domains name the same
        port the port pool gives it to the one that uses it now.
        """
        found = []
        try:
            domains = self._connection().listAllDomains()
        except libvirt.libvirtError as exc:
            LOG.warning('libvirt failed to list domains: %s', exc)
            raise exception.HypervisorUnavailable(host=self.host)
        for dom in domains:
            try:
                found.append(self._instance_and_ports(dom))
            except libvirt.libvirtError as exc:
                # A domain undefined while we were looking is skipped; a
                # partial list otherwise would free the others' ports.
                error = self._error(exc, dom.UUIDString())
                if not isinstance(error, exception.InstanceNotFound):
                    raise error
        return sorted(found, key=lambda item: item[0]['state'] == 'running')

    def instance_and_ports(self, instance_uuid):
        """(registry entry, {port: serial index}) of one domain, or None."""
        try:
            dom = self._connection().lookupByUUIDString(instance_uuid)
            return self._instance_and_ports(dom)
        except libvirt.libvirtError as exc:
            error = self._error(exc, instance_uuid)
            if isinstance(error, exception.InstanceNotFound):
                return None
            raise error

    def _instance_and_ports(self, dom):
        state = _STATES.get(dom.state()[0], 'unknown')
        xml_text = dom.XMLDesc(0)
        xml_texts = [xml_text]
        if dom.isActive() and dom.isPersistent():
            # The next boot's config may already name other ports (say
            # serialproxy-manage added consoles): those are taken too.
            xml_texts.append(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        ports = {}
        try:
            for text in xml_texts:
                for serial in domain_xml.tcp_serial_ports(
                        text, self.proxyclient_address):
                    ports.setdefault(serial['port'], serial['index'])
            project_id, user_id = domain_xml.owner(xml_text)
        except exception.DomainXMLInvalid as exc:
            LOG.warning('Domain %s: %s', dom.UUIDString(), exc)
            project_id = user_id = None
        instance = {'uuid': dom.UUIDString(), 'name': dom.name(),
                    'state': state, 'host': self.host,
                    'project_id': project_id, 'user_id': user_id}
        return instance, ports

    def console_log_file(self, instance_uuid):
        """The console log path serial port 0 of a domain writes to."""
        return self.console_log(instance_uuid)[0]

    def console_log(self, instance_uuid):
        """(path serial port 0 logs to or None, boot) of a domain; boot
        tells one run of the domain from the next (its libvirt id), None
        while it is not running."""
        dom = self._domain(instance_uuid)
        try:
            xml_text = dom.XMLDesc(0)
            boot = dom.ID() if dom.isActive() else None
        except libvirt.libvirtError as exc:
            raise self._error(exc, instance_uuid)
        return domain_xml.console_log_file(xml_text), boot

    def domain_config(self, name_or_uuid):
        """{'uuid', 'name', 'xml' (the persistent config), 'active'} of a
        domain named by UUID or name, for operator commands."""
        conn = self._connection()
        for lookup in (conn.lookupByUUIDString, conn.lookupByName):
            try:
                dom = lookup(name_or_uuid)
                return {'uuid': dom.UUIDString(), 'name': dom.name(),
                        'xml': dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE),
                        'active': bool(dom.isActive())}
            except (libvirt.libvirtError, ValueError):
                continue
        raise exception.InstanceNotFound(instance_uuid=name_or_uuid)

    def define(self, xml_text):
        """Define (or redefine) a persistent domain from XML."""
        try:
            return self._connection().defineXML(xml_text)
        except libvirt.libvirtError as exc:
            raise exception.Invalid('libvirt refused the domain XML: %s'
                                    % exc.get_error_message())

    def serial_ports(self, instance_uuid):
        """TCP serial ports of a running instance, from its live XML."""
        dom = self._domain(instance_uuid)
        try:
            active = dom.isActive()
            xml_text = dom.XMLDesc(0)
        except libvirt.libvirtError as exc:
            raise self._error(exc, instance_uuid)
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

    def _running_domain(self, instance_uuid):
        dom = self._domain(instance_uuid)
        try:
            active = dom.isActive()
        except libvirt.libvirtError as exc:
            raise self._error(exc, instance_uuid)
        if not active:
            raise exception.InstanceNotRunning(instance_uuid=instance_uuid)
        return dom

    def _domain_call(self, instance_uuid, call):
        """call(dom) on a running domain; a domain that stopped meanwhile
        is InstanceNotRunning, as libvirt says with OPERATION_INVALID."""
        dom = self._running_domain(instance_uuid)
        try:
            call(dom)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID:
                raise exception.InstanceNotRunning(
                    instance_uuid=instance_uuid)
            raise self._error(exc, instance_uuid)

    def send_sysrq(self, instance_uuid, key):
        """Type Alt+SysRq+key on the guest's keyboard."""
        if key not in sysrq.KEYCODES:
            raise exception.SysRqKeyInvalid(key=key, keys=sysrq.KEYS)
        codes = sysrq.keycodes(key)
        self._domain_call(instance_uuid, lambda dom: dom.sendKey(
            libvirt.VIR_KEYCODE_SET_LINUX, SYSRQ_HOLD_MS, codes,
            len(codes), 0))

    def inject_nmi(self, instance_uuid):
        """Raise a non-maskable interrupt in the guest."""
        self._domain_call(instance_uuid, lambda dom: dom.injectNMI(0))
