"""The os-getConsoleOutput server action: the tail of a server's console
log, which the compute agent keeps (virtlogd) for the first serial port."""

import re

from serialproxy.api import servers
from serialproxy.api import validation
from serialproxy.api import wsgi
from serialproxy.api.schemas import console_output as schemas
from serialproxy import exception
from serialproxy import policy
from serialproxy.policies import console_output as co_policies
from serialproxy import rpc

# As Nova: control characters other than \t, \n and \r become "?", so
# the JSON stays printable whatever the guest wrote.
_CONTROL = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


class ConsoleOutputController:
    def __init__(self, consoleauth_api, compute_api):
        self.consoleauth_api = consoleauth_api
        self.compute_api = compute_api

    @wsgi.action('os-getConsoleOutput')
    @validation.schema(schemas.get_console_output)
    def get_console_output(self, req, server_id, body):
        instance = servers.lookup(req, self.consoleauth_api, server_id)
        policy.authorize(req.context, co_policies.NAME,
                         servers.target(instance))
        length = body['os-getConsoleOutput'].get('length')
        length = None if length is None or int(length) == -1 \
            else int(length)
        try:
            output = self.compute_api.get_console_output(
                req.context.to_rpc(), instance['host'], server_id,
                length=length)
        except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
            if rpc.is_unsupported_method(exc):
                raise exception.ConsoleOutputUnavailable(
                    host=instance['host'], instance_uuid=server_id)
            raise
        return {'output': _CONTROL.sub('?', output)}
