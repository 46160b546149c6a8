"""A server's serial console history by byte offset: our extension.

GET /servers/{id}/serial-console/output?start=N&max_bytes=M pages through
what the guest printed since boot, as GCP's serial port output does:
offsets count bytes since the console log began, start omitted or
negative reads from that many bytes before the end, and start=next reads
on with no gap and no repeat. The compute agent reads the log (see
serialproxy.compute.console_history); no console seat is taken.
"""

from serialproxy.api import servers
from serialproxy.api import validation
from serialproxy.api.schemas import serial_console_output as schemas
from serialproxy.compute import console_history
from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import policy
from serialproxy.policies import serial_console_output as sco_policies
from serialproxy import rpc

CONF = sp_conf.CONF

_FIELDS = ('data', 'start', 'next', 'first_available')


class SerialConsoleOutputController:
    def __init__(self, consoleauth_api, compute_api):
        self.consoleauth_api = consoleauth_api
        self.compute_api = compute_api

    @validation.query_schema(schemas.show_query)
    def show(self, req, server_id):
        """GET /servers/{id}/serial-console/output."""
        start, max_bytes = console_history.validate_page(
            req.GET.get('start'), req.GET.get('max_bytes'))
        cap = CONF.api.console_history_max_bytes
        max_bytes = cap if max_bytes is None else min(max_bytes, cap)
        instance = servers.lookup(req, self.consoleauth_api, server_id)
        policy.authorize(req.context, sco_policies.NAME,
                         servers.target(instance))
        try:
            page = self.compute_api.get_console_history(
                req.context.to_rpc(), instance['host'], server_id,
                start=start, max_bytes=max_bytes)
        except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
            if rpc.is_unsupported_method(exc):
                raise exception.ConsoleOutputUnavailable(
                    host=instance['host'], instance_uuid=server_id)
            raise
        return {'serial_console_output': {f: page[f] for f in _FIELDS}}
