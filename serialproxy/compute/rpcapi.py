"""Client side of the compute RPC API; calls go to one named host."""

import oslo_messaging as messaging

from serialproxy import rpc

TOPIC = 'serialproxy-compute'


class ComputeAPI:
    """Calls to topic serialproxy-compute, server=<compute host>.

    1.0 - initial version
    1.1 - allocate_serial_ports, release_serial_ports, get_console_output
    1.2 - get_console_outputs
    1.3 - send_sysrq, inject_nmi
    1.4 - get_console_history
    """

    VERSION_CAP = '1.4'

    def __init__(self, retry=None):
        """retry: see serialproxy.rpc.get_client."""
        target = messaging.Target(topic=TOPIC, version='1.0')
        self.client = rpc.get_client(target, version_cap=self.VERSION_CAP,
                                     retry=retry)

    def get_serial_console(self, ctxt, host, instance_uuid, index=0,
                           timeout=None):
        """timeout: seconds to wait for the answer, rpc_call_timeout by
        default."""
        options = {} if timeout is None else {'timeout': timeout}
        return self.client.prepare(server=host, **options).call(
            ctxt, 'get_serial_console', instance_uuid=instance_uuid,
            index=index)

    def validate_console_port(self, ctxt, host, instance_uuid, port,
                              index=0):
        return self.client.prepare(server=host).call(
            ctxt, 'validate_console_port', instance_uuid=instance_uuid,
            port=port, index=index)

    def allocate_serial_ports(self, ctxt, host, instance_uuid, count=None):
        """Ports and <serial> elements for a domain about to be defined.

        count is hw_serial_port_count (None: 1, at most 3 as Nova allows).
        Returns {'instance_uuid', 'ports': [{'index', 'host', 'port'}],
        'devices': [<serial> XML text], 'log_file'}.
        """
        return self.client.prepare(server=host, version='1.1').call(
            ctxt, 'allocate_serial_ports', instance_uuid=instance_uuid,
            count=count)

    def release_serial_ports(self, ctxt, host, instance_uuid):
        """Give an instance's ports back; returns the ports released."""
        return self.client.prepare(server=host, version='1.1').call(
            ctxt, 'release_serial_ports', instance_uuid=instance_uuid)

    def get_console_output(self, ctxt, host, instance_uuid, length=None):
        """The last length lines (None: all, up to a size cap) of port 0's
        console log, as text; ConsoleLogNotFound when there is none."""
        return self.client.prepare(server=host, version='1.1').call(
            ctxt, 'get_console_output', instance_uuid=instance_uuid,
            length=length)

    def get_console_outputs(self, ctxt, host, instance_uuids, length=None):
        """get_console_output of many instances of host in one call: one
        answer each (serialproxy.rpc.batch_result)."""
        return self.client.prepare(server=host, version='1.2').call(
            ctxt, 'get_console_outputs', instance_uuids=instance_uuids,
            length=length)

    def get_console_history(self, ctxt, host, instance_uuid, start=None,
                            max_bytes=None):
        """Port 0's output from byte offset start (since boot; None or
        negative: that many bytes before the end), at most max_bytes:
        {'data': base64, 'start', 'next', 'first_available', 'end'}."""
        return self.client.prepare(server=host, version='1.4').call(
            ctxt, 'get_console_history', instance_uuid=instance_uuid,
            start=start, max_bytes=max_bytes)

    def send_sysrq(self, ctxt, host, instance_uuid, key):
        """Type Alt+SysRq+key (a key of serialproxy.sysrq.KEYS) on a
        running guest; InstanceNotRunning when it is not."""
        return self.client.prepare(server=host, version='1.3').call(
            ctxt, 'send_sysrq', instance_uuid=instance_uuid, key=key)

    def inject_nmi(self, ctxt, host, instance_uuid):
        """Raise an NMI in a running guest; InstanceNotRunning when it is
        not."""
        return self.client.prepare(server=host, version='1.3').call(
            ctxt, 'inject_nmi', instance_uuid=instance_uuid)
