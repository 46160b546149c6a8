"""The serial console URL of a server, in each shape Nova has used.

* ``POST /servers/{id}/remote-consoles`` (2.6 and later),
* the ``os-getSerialConsole`` server action (2.1 to 2.5),
* the serial-ports blueprint's
  ``POST /v2/{tenant_id}/servers/{id}/get-serial-console``.

All three hand out the same thing: a URL of the websocket proxy carrying a
fresh token for the server's first serial port. The first may also ask
for a watch-only URL ("mode": "view"), whose token cannot type in the
console or take it over whatever its query says; the view rule, not the
URL rule, decides who may get one, so a project's readers may.
"""

import urllib.parse

from oslo_log import log as logging

from serialproxy.api import api_version
from serialproxy.api import servers
from serialproxy.api import validation
from serialproxy.api import wsgi
from serialproxy.api.schemas import remote_consoles as schemas
from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import notifications
from serialproxy import policy
from serialproxy.policies import console_modes
from serialproxy.policies import remote_consoles as rc_policies
from serialproxy.policies import serial_console_keys as key_policies
from serialproxy import rpc

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)


def console_url(base_url, token):
    """base_url with the token added to its query string."""
    parts = urllib.parse.urlsplit(base_url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query.append(('token', token))
    return urllib.parse.urlunsplit(
        parts._replace(query=urllib.parse.urlencode(query)))


# token mode -> the rule that must allow the requester for the token to
# carry it: connection modes (mode=view, mode=take_over) and what the
# console page's SysRq menu may send.
RULE_OF_TOKEN_MODE = dict(console_modes.RULE_OF_MODE,
                          **key_policies.RULE_OF_PERMISSION)


# What a watch-only token may carry, and the rule for each.
RULE_OF_WATCH_ONLY_MODE = {'view': console_modes.VIEW}


def token_modes(allows, rule_of_mode=RULE_OF_TOKEN_MODE):
    """The modes a new token carries: those whose rule allows(rule)."""
    return sorted(mode for mode, rule in rule_of_mode.items()
                  if allows(rule))


def rules_of(watch_only):
    """(the rule that lets a user get the URL, the rule of each mode its
    token may carry): a writer's URL, or a watch-only one."""
    if watch_only:
        return console_modes.VIEW, RULE_OF_WATCH_ONLY_MODE
    return rc_policies.NAME, RULE_OF_TOKEN_MODE


class RemoteConsolesController:
    def __init__(self, consoleauth_api, compute_api):
        self.consoleauth_api = consoleauth_api
        self.compute_api = compute_api

    def serial_console_url(self, req, server_id, index=0, watch_only=False):
        """Authorize the caller, locate the port, issue a token: the URL.

        watch_only: a URL whose token may only watch (view), for whom
        the view rule allows.
        """
        ctxt = req.context
        modes = None
        if CONF.serial_console.enabled and \
                self.consoleauth_api.can_authorize_instance_console():
            modes = self._modes_before_lookup(ctxt, *rules_of(watch_only))
        if modes is not None:
            try:
                token = self._token_in_one_call(ctxt, server_id, index,
                                                modes, watch_only)
            except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
                if not rpc.is_unsupported_method(exc):
                    raise
                token = self._token_in_three_calls(req, server_id, index,
                                                   watch_only)
        else:
            token = self._token_in_three_calls(req, server_id, index,
                                               watch_only)
        # At debug level: the request's own log line says who (its
        # context) got what (its path), and consoleauth logs the token.
        LOG.debug('Serial console %d of server %s handed out to user %s',
                  index, server_id, ctxt.user_id)
        notifications.emit(notifications.URL_ISSUED, notifications.payload(
            instance_uuid=server_id, index=index, user_id=ctxt.user_id,
            project_id=ctxt.project_id, remote_address=req.remote_addr))
        return console_url(CONF.serial_console.base_url, token)

    @staticmethod
    def _modes_before_lookup(ctxt, url_rule, rule_of_mode):
        """The token's modes, when every policy answer (the URL's, each
        mode's) is known before the server's owner is: consoleauth may
        then find the server, ask its agent and issue the token in one
        call. None when an answer waits for the owner."""
        project_id = None if ctxt.is_admin else ctxt.project_id
        if not policy.authorized_for_any_owner(ctxt, url_rule, project_id):
            return None
        modes = []
        for mode, rule in sorted(rule_of_mode.items()):
            if policy.authorized_for_any_owner(ctxt, rule, project_id):
                modes.append(mode)
            elif policy.reads_unknown_owner(rule, project_id):
                return None
        return modes

    def _token_in_one_call(self, ctxt, server_id, index, modes,
                           watch_only):
        """consoleauth finds the server, asks its agent, issues the token.

        The policy passed whoever owns the server; another project's
        server is InstanceNotFound (404) for a non-admin, as
        servers.lookup has it.
        """
        return self.consoleauth_api.authorize_instance_console(
            ctxt.to_rpc(), server_id, index=index, console_type='serial',
            project_id=None if ctxt.is_admin else ctxt.project_id,
            modes=modes, watch_only=watch_only)['token']

    def _token_in_three_calls(self, req, server_id, index, watch_only):
        """Registry, policy, agent, token, one call after the other: when
        a policy answer (the URL's, a token mode's) depends on who owns
        the server, for disabled consoles
        (404 and 403 come before 501) and for an older consoleauth."""
        instance = servers.lookup(req, self.consoleauth_api, server_id)
        ctxt = req.context
        url_rule, rule_of_mode = rules_of(watch_only)
        policy.authorize(ctxt, url_rule, servers.target(instance))
        if not CONF.serial_console.enabled:
            raise exception.ConsoleNotEnabled()
        rpc_ctxt = ctxt.to_rpc()
        console = self.compute_api.get_serial_console(
            rpc_ctxt, instance['host'], server_id, index)
        modes = token_modes(lambda rule: policy.allows(
            ctxt, rule, servers.target(instance)), rule_of_mode)
        return self.consoleauth_api.authorize_console(
            rpc_ctxt, server_id, instance['host'], console['host'],
            console['port'], index=index, console_type='serial',
            modes=modes, watch_only=watch_only)

    @api_version.versioned('2.6')
    @validation.schema(schemas.create_v26, '2.6', '2.7')
    @validation.schema(schemas.create_v28, '2.8')
    def create(self, req, server_id, body):
        """POST /servers/{id}/remote-consoles."""
        console = body['remote_console']
        if (console['protocol'], console['type']) != ('serial', 'serial'):
            raise exception.ConsoleTypeUnavailable(
                console_type='%s/%s' % (console['protocol'],
                                        console['type']))
        watch_only = console.get('mode') == 'view'
        url = self.serial_console_url(req, server_id, watch_only=watch_only)
        answer = {'protocol': 'serial', 'type': 'serial', 'url': url}
        if watch_only:
            answer['mode'] = 'view'
        return {'remote_console': answer}

    @api_version.versioned('2.1', '2.5')
    @wsgi.action('os-getSerialConsole')
    @validation.schema(schemas.get_serial_console)
    def get_serial_console(self, req, server_id, body):
        """The server action of 2.1 to 2.5."""
        url = self.serial_console_url(req, server_id)
        return {'console': {'type': 'serial', 'url': url}}

    @api_version.versioned('2.1', '2.5')
    @wsgi.action('os-getVNCConsole', 'os-getSPICEConsole', 'os-getRDPConsole')
    @validation.schema(schemas.other_console_actions)
    def get_other_console(self, req, server_id, body):
        """Nova's other console actions: valid, but we serve serial only."""
        (name, options), = body.items()
        raise exception.ConsoleTypeUnavailable(console_type=options['type'])

    @validation.schema(schemas.blueprint_get_serial_console)
    def blueprint_get_serial_console(self, req, server_id, body):
        """The serial-ports blueprint's call, under /v2/{tenant_id}."""
        url = self.serial_console_url(req, server_id)
        return {'serial_console': {'url': url}}
