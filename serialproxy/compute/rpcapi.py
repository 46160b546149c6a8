"""Client side of the compute RPC API; calls go to one named host."""

import oslo_messaging as messaging

from serialproxy import rpc

TOPIC = 'serialproxy-compute'


class ComputeAPI:
    """Calls to topic serialproxy-compute, server=<compute host>.

    1.0 - initial version
    """

    VERSION_CAP = '1.0'

    def __init__(self):
        target = messaging.Target(topic=TOPIC, version='1.0')
        self.client = rpc.get_client(target, version_cap=self.VERSION_CAP)

    def get_serial_console(self, ctxt, host, instance_uuid, index=0):
        return self.client.prepare(server=host).call(
            ctxt, 'get_serial_console', instance_uuid=instance_uuid,
            index=index)

    def validate_console_port(self, ctxt, host, instance_uuid, port,
                              index=0):
        return self.client.prepare(server=host).call(
            ctxt, 'validate_console_port', instance_uuid=instance_uuid,
            port=port, index=index)

    def get_console_output(self, ctxt, host, instance_uuid, length=None):
        """The last length lines (all when None) of the console log."""
        return self.client.prepare(server=host).call(
            ctxt, 'get_console_output', instance_uuid=instance_uuid,
            length=length)
