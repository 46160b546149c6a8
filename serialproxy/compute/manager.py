"""The compute RPC endpoint: the serial consoles and ports of this host."""

import os
import threading

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy.compute import console_history
from serialproxy.compute import console_log
from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import rpc

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

# Seconds to wait for consoleauth to take a report of instances. A report
# sent before consoleauth's queue existed is never answered; the next try
# comes sooner than rpc_call_timeout would allow.
REPORT_TIMEOUT = 5


class ComputeManager:
    """Versioned endpoint of topic serialproxy-compute, server=host.

    1.0 - get_serial_console, validate_console_port
    1.1 - allocate_serial_ports, release_serial_ports, get_console_output
    1.2 - get_console_outputs
    1.3 - send_sysrq, inject_nmi
    1.4 - get_console_history
    """

    target = messaging.Target(version='1.4')

    def __init__(self, driver, consoleauth_api, serial_consoles=None,
                 console_output_max_bytes=100 * 1024,
                 console_histories=None):
        self.driver = driver
        self.consoleauth_api = consoleauth_api
        self.serial_consoles = serial_consoles
        self.console_output_max_bytes = console_output_max_bytes
        # Offset records under the state path (see console_history).
        self.console_histories = console_histories or \
            console_history.ConsoleHistories(
                os.path.join(CONF.state_path, 'console-history'))
        # Until the pool has been reconciled with libvirt once, it may not
        # know the ports of stopped domains: allocating would hand them out.
        self._synced = threading.Event()

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InstanceNotRunning,
                                   exception.SerialPortNotFound,
                                   exception.HypervisorUnavailable)
    def get_serial_console(self, ctxt, instance_uuid, index=0):
        """{'host', 'port', 'index'} of one serial port of a running guest."""
        return self.driver.get_serial_console(instance_uuid, index)

    @messaging.expected_exceptions(exception.HypervisorUnavailable)
    def validate_console_port(self, ctxt, instance_uuid, port, index=0):
        """Whether the port is still that guest's serial port right now.

        A hypervisor that cannot be asked is not a "no": it raises, so the
        user hears 503 (try again) rather than 401 (fetch a new URL).
        """
        try:
            console = self.driver.get_serial_console(instance_uuid, index)
        except exception.HypervisorUnavailable:
            raise
        except exception.SerialProxyException:
            return False
        return console['port'] == port

    @messaging.expected_exceptions(exception.Invalid,
                                   exception.PortRangeExhausted,
                                   exception.PortPoolUnavailable,
                                   exception.HypervisorUnavailable)
    def allocate_serial_ports(self, ctxt, instance_uuid, count=None):
        """Serial ports and <serial> elements for a domain to be defined.

        count is the hw_serial_port_count property (None: 1). Returns
        {'instance_uuid', 'ports': [{'index', 'host', 'port'}],
        'devices': [<serial> XML text], 'log_file'}; the same again when
        asked again for the same instance. Ports no domain names within
        [compute] pending_allocation_timeout go back to the pool.
        """
        if not self._synced.is_set():
            self.reconcile_pool()
        return self.serial_consoles.allocate(instance_uuid, count)

    @messaging.expected_exceptions(exception.PortPoolUnavailable,
                                   exception.HypervisorUnavailable)
    def release_serial_ports(self, ctxt, instance_uuid):
        """Give back an instance's ports; returns the ports released.

        Ports the instance's domain still names stay allocated: libvirt
        would start QEMU on them, so handing them out again would be a
        duplicate.
        """
        found = self.driver.instance_and_ports(instance_uuid)
        keep = found[1] if found else {}
        released = self.serial_consoles.pool.release(instance_uuid,
                                                     keep=keep)
        if released:
            # Still in the pool's release delay, so no other guest has
            # them yet; if this fails, the next report revokes instead.
            self._revoke_tokens(instance_uuid, 'released ports %s'
                                % released)
        return released

    @messaging.expected_exceptions(exception.Invalid,
                                   exception.InstanceNotFound,
                                   exception.ConsoleLogNotFound,
                                   exception.HypervisorUnavailable)
    def get_console_output(self, ctxt, instance_uuid, length=None):
        """The last length lines (None: all) of serial port 0's log.

        Never more than [compute] console_output_max_bytes from the end.
        ConsoleLogNotFound when the domain writes no log or it is missing.
        """
        return self._console_output(instance_uuid, length)

    def _console_output(self, instance_uuid, length):
        # Undecorated: expected_exceptions wraps what it lets through.
        length = console_log.validate_length(length)
        path = self.driver.console_log_file(instance_uuid)
        if path is None:
            raise exception.ConsoleLogNotFound(
                instance_uuid=instance_uuid,
                reason='its serial port 0 has no <log file=...>')
        return console_log.tail(path, length, self.console_output_max_bytes,
                                instance_uuid)

    @messaging.expected_exceptions(exception.Invalid,
                                   exception.InstanceNotFound,
                                   exception.ConsoleLogNotFound,
                                   exception.ConsoleHistoryUnavailable,
                                   exception.HypervisorUnavailable)
    def get_console_history(self, ctxt, instance_uuid, start=None,
                            max_bytes=None):
        """A page of serial port 0's output by offset since boot.

        {'data': base64, 'start', 'next', 'first_available', 'end'}; see
        serialproxy.compute.console_history. ConsoleLogNotFound, with a
        reason that names no path, when there is no log.
        """
        path, boot = self.driver.console_log(instance_uuid)
        if path is None:
            raise exception.ConsoleLogNotFound(
                instance_uuid=instance_uuid,
                reason='its serial port 0 writes no log')
        return self.console_histories.read(instance_uuid, path, start,
                                           max_bytes, boot)

    def get_console_outputs(self, ctxt, instance_uuids, length=None):
        """get_console_output of many instances: one answer each
        (serialproxy.rpc.batch_result), for proxies replaying history
        to many new sessions at once."""
        answers = []
        for instance_uuid in instance_uuids:
            try:
                answers.append(rpc.batch_value(self._console_output(
                    instance_uuid, length)))
            except exception.SerialProxyException as exc:
                answers.append(rpc.batch_error(exc))
        return answers

    @messaging.expected_exceptions(exception.SysRqKeyInvalid,
                                   exception.InstanceNotFound,
                                   exception.InstanceNotRunning,
                                   exception.HypervisorUnavailable)
    def send_sysrq(self, ctxt, instance_uuid, key):
        """Type Alt+SysRq+key on a running guest's keyboard."""
        self.driver.send_sysrq(instance_uuid, key)
        LOG.info('Sent SysRq %s to instance %s', key, instance_uuid)

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.InstanceNotRunning,
                                   exception.HypervisorUnavailable)
    def inject_nmi(self, ctxt, instance_uuid):
        """Raise a non-maskable interrupt in a running guest."""
        self.driver.inject_nmi(instance_uuid)
        LOG.info('Injected an NMI into instance %s', instance_uuid)

    # Not RPC: start-up, periodic and event-driven upkeep.

    def sync_instances(self):
        """Reconcile the port pool with libvirt, then report to consoleauth.

        Periodically and after a lost libvirt connection.
        """
        return self.report_instances(self.reconcile_pool())

    def scan_console_logs(self):
        """Look at the console log of every running guest, so that its
        history offsets survive rotations nobody read through; forget
        those of domains that are gone."""
        instances = self.driver.list_instances()
        self.console_histories.forget_others(i['uuid'] for i in instances)
        for instance in instances:
            if instance.get('state') != 'running':
                continue
            try:
                path, boot = self.driver.console_log(instance['uuid'])
                if path is not None:
                    self.console_histories.observe(instance['uuid'], path,
                                                   boot)
            except exception.InstanceNotFound:
                continue

    def report_instances(self, found=None):
        """Tell consoleauth every instance this host has.

        found is what reconcile_pool() returned, to save reading libvirt
        twice; without it the instances are listed afresh.
        """
        if found is None:
            found = self.driver.instances_and_ports()
        instances = [_with_consoles(instance, ports)
                     for instance, ports in found]
        # consoleauth revokes the tokens this contradicts: of instances
        # gone from here, or naming ports they no longer have.
        self.consoleauth_api.report_instances(
            {}, self.driver.host, instances,
            timeout=min(REPORT_TIMEOUT, CONF.rpc_call_timeout))
        LOG.debug('Reported %d instances to consoleauth', len(instances))
        return instances

    def reconcile_pool(self):
        """Make the port pool agree with every domain; returns them."""
        found = self.driver.instances_and_ports()
        if self.serial_consoles is not None:
            released = self.serial_consoles.pool.reconcile(
                {instance['uuid']: ports for instance, ports in found})
            for instance_uuid, ports in released.items():
                LOG.info('Reconciliation freed ports %s of instance %s, '
                         'whose domain no longer names them', ports,
                         instance_uuid)
            self._synced.set()
            for instance_uuid, ports in released.items():
                try:
                    self._revoke_tokens(instance_uuid,
                                        'released ports %s' % ports)
                except Exception as exc:
                    # The report that follows a reconciliation revokes
                    # them too.
                    LOG.warning('Revoking the tokens of instance %s '
                                'failed: %s', instance_uuid, exc)
        return found

    def instance_changed(self, instance_uuid, event):
        """A libvirt lifecycle event: sync the instance's ports, report it.
        """
        found = self.driver.instance_and_ports(instance_uuid)
        if found is None:
            instance, ports = {'uuid': instance_uuid}, None
            event = 'undefined'
        else:
            instance, ports = found
            instance = _with_consoles(instance, ports)
        if self.serial_consoles is not None:
            released = self.serial_consoles.pool.sync_instance(instance_uuid,
                                                               ports)
            if released:
                # Another domain may name a port this one gave up (a
                # misconfiguration libvirt allows): let it claim the port
                # now, before the release delay ends, not at the next sync.
                self.reconcile_pool()
        LOG.debug('Instance %s %s', instance_uuid, event)
        # consoleauth revokes the instance's tokens for this host when it
        # was undefined, stopped or crashed, and those naming ports it no
        # longer has otherwise.
        self.consoleauth_api.instance_event({}, self.driver.host, event,
                                            instance)

    def _revoke_tokens(self, instance_uuid, why):
        count = self.consoleauth_api.revoke_tokens(
            {}, instance_uuid, compute_host=self.driver.host)
        LOG.info('Revoked %s console tokens of instance %s: %s', count,
                 instance_uuid, why)


def _with_consoles(instance, ports):
    """A registry entry with the serial ports ({port: index}) it has."""
    return dict(instance, consoles=[
        {'index': index, 'port': port}
        for port, index in sorted(ports.items())])
