"""One-time SSH keys for a server's serial console: our extension.

A user pushes a public key; it may open that server's serial port over
the proxy's SSH server once, within [ssh] key_ttl. The answer says whom
to connect as, where, and which host keys to trust. Where: [ssh]
public_host (the host of [serial_console] base_url when unset) and
public_port (listen_port when unset). Which host keys: the public halves
under [ssh] host_key_dir, which the API's host shares with the proxies
(serialproxy-all has one state path; a site copies the .pub files).

What the key's session may do besides typing is decided here too, as
for a console URL: the rules of serialproxy.policies.serial_console_keys
are checked for the pusher on the server, and those that pass go with
the key to consoleauth (SysRq after ssh's break, ~B). So is the console
URL's rule (serialproxy:remote_consoles:create), which decides whether the
key may type in the console: a key pushed by someone it does not allow
(a reader, where the key rule lets readers push) is watch-only, and never
signs in as the console's writer. The proxy has no policy of its own.
"""

import datetime
import urllib.parse

from oslo_log import log as logging

from serialproxy.api import servers
from serialproxy.api import validation
from serialproxy.api import wsgi
from serialproxy.api.schemas import ssh_keys as schemas
from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import policy
from serialproxy.policies import console_modes as mode_policies
from serialproxy.policies import remote_consoles as rc_policies
from serialproxy.policies import serial_console_keys as key_policies
from serialproxy.policies import ssh_keys as ssh_key_policies
from serialproxy import rpc
from serialproxy.ssh import keys

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)


def ssh_endpoint():
    """(host, port) users connect to with ssh."""
    host = CONF.ssh.public_host
    if not host:
        host = urllib.parse.urlsplit(
            CONF.serial_console.base_url).hostname or 'localhost'
    return host, CONF.ssh.public_port or CONF.ssh.listen_port


# A key's modes and the rule of each: typing, as for a console URL,
# what its session may send besides, and watching (a .view user).
RULE_OF_KEY_MODE = dict(key_policies.RULE_OF_PERMISSION,
                        write=rc_policies.NAME, view=mode_policies.VIEW)


def key_modes(ctxt, instance):
    """What a key pushed by ctxt for instance lets its session do: the
    modes whose rule allows ctxt on the server."""
    target = servers.target(instance)
    return sorted(mode for mode, rule in RULE_OF_KEY_MODE.items()
                  if policy.allows(ctxt, rule, target))


def _timestamp(epoch):
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


class SSHKeysController:
    def __init__(self, consoleauth_api):
        self.consoleauth_api = consoleauth_api

    @wsgi.response(202)
    @validation.schema(schemas.create)
    def create(self, req, server_id, body):
        """POST /servers/{id}/serial-console/ssh-keys."""
        instance = servers.lookup(req, self.consoleauth_api, server_id)
        ctxt = req.context
        policy.authorize(ctxt, ssh_key_policies.NAME,
                         servers.target(instance))
        if not CONF.ssh.enabled:
            raise exception.SSHConsolesDisabled()
        wanted = body['ssh_key']
        # 400 with the reason before any call: the type, the encoding.
        keys.PublicKey.parse(wanted['public_key'])
        index = wanted.get('index', 0)
        modes = key_modes(ctxt, instance)
        try:
            answer = self.consoleauth_api.authorize_ssh_key(
                ctxt.to_rpc(), server_id, wanted['public_key'], index=index,
                project_id=None if ctxt.is_admin else ctxt.project_id,
                modes=modes, watch_only='write' not in modes)
        except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
            if rpc.is_unsupported_method(exc):
                raise exception.FeatureUnavailable(
                    service='consoleauth', feature='SSH consoles')
            raise
        host, port = ssh_endpoint()
        host_keys = keys.host_public_keys(CONF.ssh.host_key_dir)
        LOG.info('User %s pushed one-time SSH key %s for serial port %d '
                 'of server %s', ctxt.user_id, answer['fingerprint'], index,
                 server_id)
        return {'ssh_key': {
            'user': answer['user'], 'host': host, 'port': port,
            'fingerprint': answer['fingerprint'],
            'expires_at': _timestamp(answer['expires_at']),
            'host_key_fingerprints': [keys.fingerprint_of(k)
                                      for k in host_keys],
            # Whole public keys too: a known_hosts line needs them, and
            # a client checks them against the fingerprints.
            'host_keys': [k.export_public_key('openssh').decode().strip()
                          for k in host_keys]}}
