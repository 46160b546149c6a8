"""The serial consoles an instance gets: how many, which ports, which XML.

The one place the port rules meet the domain XML rules, used by the
compute agent's RPC and by serialproxy-manage alike.
"""

import os

from serialproxy.compute import domain_xml
from serialproxy import exception

# QEMU emulates four ISA serial ports. Nova keeps one back for the pty it
# once used for the console log and refuses more than three for kvm and
# qemu (nova.virt.libvirt.driver.ALLOWED_QEMU_SERIAL_PORTS); we refuse the
# same requests, so an image or flavor valid there is valid here.
QEMU_MAX_SERIAL_PORTS = 4
ALLOWED_QEMU_SERIAL_PORTS = QEMU_MAX_SERIAL_PORTS - 1

# As Nova: one serial port when the image and flavor say nothing.
DEFAULT_SERIAL_PORT_COUNT = 1


def serial_port_count(value, virt_type='qemu'):
    """The number of serial ports hw_serial_port_count asks for.

    value comes from image or flavor properties, so it may be a string;
    None means the default. Counts Nova would refuse are refused.
    """
    if value is None or value == '':
        return DEFAULT_SERIAL_PORT_COUNT
    if isinstance(value, bool):
        raise exception.SerialPortCountInvalid(count=value)
    try:
        count = int(str(value).strip())
    except ValueError:
        raise exception.SerialPortCountInvalid(count=value)
    if count < 1:
        raise exception.SerialPortCountInvalid(count=value)
    if count > ALLOWED_QEMU_SERIAL_PORTS:
        raise exception.SerialPortNumberLimitExceeded(
            allowed=ALLOWED_QEMU_SERIAL_PORTS, virt_type=virt_type)
    return count


class SerialConsoles:
    """Allocates an instance's serial ports and writes their devices."""

    def __init__(self, pool, address, log_dir):
        self.pool = pool
        self.address = address
        self.log_dir = log_dir

    def log_file(self, instance_uuid):
        """Where virtlogd writes the console output of an instance."""
        return os.path.join(os.path.abspath(self.log_dir),
                            '%s.log' % instance_uuid)

    def allocate(self, instance_uuid, count=None):
        """Ports and <serial> elements for an instance's domain definition.

        Returns {'instance_uuid', 'ports': [{'index', 'host', 'port'}],
        'devices': [XML text of each <serial>], 'log_file'}. Asking again
        for the same instance returns the same ports.
        """
        count = serial_port_count(count)
        ports = self.pool.allocate(instance_uuid, count)
        log_file = self.log_file(instance_uuid)
        # virtlogd creates the file, not the directory.
        os.makedirs(os.path.dirname(log_file), exist_ok=True)
        return {
            'instance_uuid': instance_uuid,
            'ports': [{'index': i, 'host': self.address, 'port': port}
                      for i, port in enumerate(ports)],
            'devices': domain_xml.serial_devices(ports, self.address,
                                                 log_file),
            'log_file': log_file,
        }
