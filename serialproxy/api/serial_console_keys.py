"""SysRq keys and NMIs for a hung server: our extension to Nova's API.

The API checks the key and the policy, finds the server's compute host in
consoleauth's registry, and has that host's agent press the keys through
libvirt. 202: the guest's answer (if any) shows on its serial console.
"""

from oslo_log import log as logging

from serialproxy.api import servers
from serialproxy.api import validation
from serialproxy.api import wsgi
from serialproxy.api.schemas import serial_console_keys as schemas
from serialproxy import exception
from serialproxy import notifications
from serialproxy import policy
from serialproxy.policies import serial_console_keys as key_policies
from serialproxy import rpc

LOG = logging.getLogger(__name__)


class SerialConsoleKeysController:
    def __init__(self, consoleauth_api, compute_api):
        self.consoleauth_api = consoleauth_api
        self.compute_api = compute_api

    def _instance(self, req, server_id, rule):
        instance = servers.lookup(req, self.consoleauth_api, server_id)
        policy.authorize(req.context, rule, servers.target(instance))
        if not instance.get('host'):
            raise exception.InstanceNotRunning(instance_uuid=server_id)
        return instance

    def _call(self, feature, method, *args, **kwargs):
        """Call compute; an agent older than RPC 1.3 means 501."""
        try:
            return method(*args, **kwargs)
        except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
            if rpc.is_unsupported_method(exc):
                raise exception.FeatureUnavailable(service='compute',
                                                   feature=feature)
            raise

    @wsgi.response(202)
    @validation.schema(schemas.send_sysrq)
    def send_sysrq(self, req, server_id, body):
        """POST /servers/{id}/serial-console/sysrq."""
        key = body['sysrq']['key']
        instance = self._instance(req, server_id, key_policies.SYSRQ)
        ctxt = req.context
        self._call('SysRq', self.compute_api.send_sysrq, ctxt.to_rpc(),
                   instance['host'], server_id, key)
        LOG.info('User %s sent SysRq %s to server %s', ctxt.user_id, key,
                 server_id)
        notifications.emit(notifications.SYSRQ_SENT, notifications.payload(
            instance_uuid=server_id, user_id=ctxt.user_id,
            project_id=ctxt.project_id, remote_address=req.remote_addr,
            sysrq_key=key))

    @wsgi.response(202)
    @validation.schema(schemas.inject_nmi)
    def inject_nmi(self, req, server_id, body):
        """POST /servers/{id}/serial-console/nmi."""
        instance = self._instance(req, server_id, key_policies.NMI)
        ctxt = req.context
        self._call('NMI', self.compute_api.inject_nmi, ctxt.to_rpc(),
                   instance['host'], server_id)
        LOG.info('User %s injected an NMI into server %s', ctxt.user_id,
                 server_id)
        notifications.emit(notifications.NMI_SENT, notifications.payload(
            instance_uuid=server_id, user_id=ctxt.user_id,
            project_id=ctxt.project_id, remote_address=req.remote_addr))
