"""The serial console URL of a server, in Nova's remote-consoles shape."""

import urllib.parse

from oslo_log import log as logging

from serialproxy import conf as sp_conf
from serialproxy import exception

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

# Console protocols Nova knows; we serve one, and say so for the others.
_KNOWN_PROTOCOLS = ('vnc', 'spice', 'rdp', 'serial', 'mks')


def console_url(base_url, token):
    """base_url with the token added to its query string."""
    parts = urllib.parse.urlsplit(base_url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.append(('token', token))
    return urllib.parse.urlunsplit(
        parts._replace(query=urllib.parse.urlencode(query)))


def _validate(body):
    console = body.get('remote_console') if isinstance(body, dict) else None
    if not isinstance(console, dict):
        raise exception.Invalid(
            'Body must be {"remote_console": {"protocol": ..., '
            '"type": ...}}.')
    protocol = console.get('protocol')
    console_type = console.get('type')
    if protocol not in _KNOWN_PROTOCOLS:
        raise exception.ConsoleTypeInvalid(console_type=protocol)
    if protocol != 'serial' or console_type != 'serial':
        raise exception.ConsoleTypeUnavailable(
            console_type='%s/%s' % (protocol, console_type))


class RemoteConsolesController:
    def __init__(self, consoleauth_api, compute_api):
        self.consoleauth_api = consoleauth_api
        self.compute_api = compute_api

    def create(self, ctxt, server_id, body):
        _validate(body)
        if not CONF.serial_console.enabled:
            raise exception.ConsoleNotEnabled()
        url = self.get_serial_console_url(ctxt, server_id)
        return {'remote_console': {'protocol': 'serial', 'type': 'serial',
                                   'url': url}}

    def get_serial_console_url(self, ctxt, server_id, index=0):
        instance = self.consoleauth_api.get_instance(ctxt, server_id)
        console = self.compute_api.get_serial_console(
            ctxt, instance['host'], server_id, index)
        token = self.consoleauth_api.authorize_console(
            ctxt, server_id, instance['host'], console['host'],
            console['port'], index=index, console_type='serial')
        LOG.info('Serial console %d of server %s handed out', index,
                 server_id)
        return console_url(CONF.serial_console.base_url, token)
