"""The compute RPC endpoint: where the serial consoles of this host are."""

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy import exception

LOG = logging.getLogger(__name__)


class ComputeManager:
    """Versioned endpoint of topic serialproxy-compute, server=host.

    1.0 - get_serial_console, validate_console_port
    """

    target = messaging.Target(version='1.0')

    def __init__(self, driver, consoleauth_api):
        self.driver = driver
        self.consoleauth_api = consoleauth_api

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InstanceNotRunning,
                                   exception.SerialPortNotFound,
                                   exception.HypervisorUnavailable)
    def get_serial_console(self, ctxt, instance_uuid, index=0):
        """{'host', 'port', 'index'} of one serial port of a running guest."""
        return self.driver.get_serial_console(instance_uuid, index)

    def validate_console_port(self, ctxt, instance_uuid, port, index=0):
        """Whether the port is still that guest's serial port right now."""
        try:
            console = self.driver.get_serial_console(instance_uuid, index)
        except exception.SerialProxyException:
            return False
        return console['port'] == port

    def report_instances(self):
        """Tell consoleauth every instance this host has; not RPC."""
        instances = self.driver.list_instances()
        self.consoleauth_api.report_instances({}, self.driver.host,
                                              instances)
        LOG.debug('Reported %d instances to consoleauth', len(instances))
        return instances
