"""Client side of the consoleauth RPC API; what other services import."""

from oslo_log import log as logging
import oslo_messaging as messaging

from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import rpc

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

TOPIC = 'serialproxy-consoleauth'


class ConsoleAuthAPI:
    """Calls to topic serialproxy-consoleauth.

    1.0 - initial version
    1.1 - session leases: acquire_session, renew_sessions, release_session,
          list_sessions, force_disconnect
    1.2 - instance_event
    1.3 - revoke_tokens takes compute_host; instances reported may carry
          'consoles' [{'index', 'port'}]
    1.4 - acquire_sessions, release_sessions
    1.5 - authorize_instance_console
    1.6 - join_session, take_over_session; authorize_console and
          authorize_instance_console take modes; acquire_sessions
          requests may carry relay_address
    1.7 - authorize_ssh_key, check_ssh_key, acquire_session_by_ssh_key
    1.8 - authorize_ssh_key takes modes
    1.9 - force_disconnect takes revoke_session_tokens
    1.10 - sign_in_ssh_key, acquire_session_by_ssh_claim
    1.11 - authorize_console, authorize_instance_console and
           authorize_ssh_key take watch_only
    1.12 - get_console_access, set_console_access, list_console_access
    1.13 - acquire_session_by_ssh_claim takes relay_address
    """

    VERSION_CAP = '1.13'

    def __init__(self, retry=None):
        """retry: see serialproxy.rpc.get_client."""
        target = messaging.Target(topic=TOPIC, version='1.0')
        self.client = rpc.get_client(target, version_cap=self.VERSION_CAP,
                                     retry=retry)
        self._can_authorize_instance_console = None

    def authorize_console(self, ctxt, instance_uuid, compute_host, host,
                          port, index=0, console_type='serial', modes=None,
                          watch_only=False):
        """watch_only (1.11): a token that may only watch; an older
        consoleauth cannot issue one (FeatureUnavailable)."""
        return self._with_modes(
            modes, '1.0', ctxt, 'authorize_console', watch_only=watch_only,
            instance_uuid=instance_uuid, compute_host=compute_host,
            host=host, port=port, index=index, console_type=console_type)

    def _with_modes(self, modes, version, ctxt, method,
                    modes_version='1.6', watch_only=False, **kwargs):
        """Call method with modes (from modes_version on); a consoleauth
        from before it is asked without them, at version, and issues a
        writer-only token (or key: its SSH sessions may not send SysRq).

        A watch-only token or key is asked for at 1.11 or not at all: an
        older consoleauth would issue a writer's.
        """
        if watch_only:
            return self._watch_only(ctxt, method, modes=list(modes or ()),
                                    **kwargs)
        if modes and self.client.can_send_version(modes_version):
            try:
                return self.client.prepare(version=modes_version).call(
                    ctxt, method, modes=list(modes), **kwargs)
            except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
                if not rpc.is_unsupported_method(exc):
                    raise
        return self.client.prepare(version=version).call(ctxt, method,
                                                         **kwargs)

    def _watch_only(self, ctxt, method, **kwargs):
        return self._call_at_least(
            '1.11', 'watch-only consoles', ctxt, method, watch_only=True,
            **kwargs)

    def _call_at_least(self, version, feature, ctxt, method, **kwargs):
        """Call method at version; a consoleauth from before it does not
        offer feature (FeatureUnavailable)."""
        unavailable = exception.FeatureUnavailable(service='consoleauth',
                                                   feature=feature)
        if not self.client.can_send_version(version):
            raise unavailable
        try:
            return self.client.prepare(version=version).call(
                ctxt, method, **kwargs)
        except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
            if rpc.is_unsupported_method(exc):
                raise unavailable
            raise

    def can_authorize_instance_console(self):
        """Whether authorize_instance_console may be sent (version cap).

        Asked once: the cap is fixed for the client's life, and the
        answer costs a prepare() per console URL otherwise.
        """
        if self._can_authorize_instance_console is None:
            self._can_authorize_instance_console = \
                self.client.can_send_version('1.5')
        return self._can_authorize_instance_console

    def authorize_instance_console(self, ctxt, instance_uuid, index=0,
                                   console_type='serial', project_id=None,
                                   modes=None, watch_only=False):
        """A token for an instance's console in one call: consoleauth
        finds the instance (InstanceNotFound unless it is project_id's,
        when given), asks its compute agent for the address and issues
        the token. Returns {'token', 'instance': registry entry}. An older
        consoleauth refuses it (serialproxy.rpc.is_unsupported_method)."""
        return self._with_modes(
            modes, '1.5', ctxt, 'authorize_instance_console',
            watch_only=watch_only, instance_uuid=instance_uuid, index=index,
            console_type=console_type, project_id=project_id)

    def check_token(self, ctxt, token):
        return self.client.call(ctxt, 'check_token', token=token)

    def revoke_tokens(self, ctxt, instance_uuid, compute_host=None):
        """Revoke an instance's tokens; with compute_host, only those for
        that host's consoles (a 1.2 consoleauth revokes them all)."""
        if compute_host is not None and self.client.can_send_version('1.3'):
            return self.client.prepare(version='1.3').call(
                ctxt, 'revoke_tokens', instance_uuid=instance_uuid,
                compute_host=compute_host)
        return self.client.call(ctxt, 'revoke_tokens',
                                instance_uuid=instance_uuid)

    def report_instances(self, ctxt, host, instances, timeout=None):
        """timeout: as for renew_sessions; a report is safe to repeat."""
        options = {} if timeout is None else {'timeout': timeout}
        return self.client.prepare(**options).call(
            ctxt, 'report_instances', host=host, instances=instances)

    def instance_event(self, ctxt, host, event, instance):
        """A call, not a cast: one agent's events then land in order."""
        return self.client.prepare(version='1.2').call(
            ctxt, 'instance_event', host=host, event=event,
            instance=instance)

    def get_instance(self, ctxt, instance_uuid):
        return self.client.call(ctxt, 'get_instance',
                                instance_uuid=instance_uuid)

    def list_instances(self, ctxt, host=None):
        return self.client.call(ctxt, 'list_instances', host=host)

    def acquire_session(self, ctxt, token, proxy_host, remote_address=None):
        return self.client.prepare(version='1.1').call(
            ctxt, 'acquire_session', token=token, proxy_host=proxy_host,
            remote_address=remote_address)

    def acquire_sessions(self, ctxt, proxy_host, requests):
        """Leases for many sessions: [{'token', 'remote_address'}] in, one
        answer per request out (serialproxy.rpc.batch_result)."""
        return self.client.prepare(version='1.4').call(
            ctxt, 'acquire_sessions', proxy_host=proxy_host,
            requests=requests)

    def join_session(self, ctxt, token, proxy_host, remote_address=None,
                     max_spectators=10):
        """Seat a spectator (mode=view); see the manager."""
        return self.client.prepare(version='1.6').call(
            ctxt, 'join_session', token=token, proxy_host=proxy_host,
            remote_address=remote_address, max_spectators=max_spectators)

    def take_over_session(self, ctxt, token, proxy_host, remote_address=None,
                          relay_address=None):
        """Make the session the console's writer (mode=take_over)."""
        return self.client.prepare(version='1.6').call(
            ctxt, 'take_over_session', token=token, proxy_host=proxy_host,
            remote_address=remote_address, relay_address=relay_address)

    def renew_sessions(self, ctxt, proxy_host, sessions, timeout=None):
        """timeout: seconds to wait for the answer, rpc_call_timeout by
        default; a renewal is safe to repeat, so a proxy need not wait
        long for one lost on the way (a broker restarting)."""
        options = {} if timeout is None else {'timeout': timeout}
        return self.client.prepare(version='1.1', **options).call(
            ctxt, 'renew_sessions', proxy_host=proxy_host, sessions=sessions)

    def release_session(self, ctxt, session_id):
        return self.client.prepare(version='1.1').call(
            ctxt, 'release_session', session_id=session_id)

    def release_sessions(self, ctxt, session_ids):
        return self.client.prepare(version='1.4').call(
            ctxt, 'release_sessions', session_ids=session_ids)

    def list_sessions(self, ctxt, instance_uuid=None):
        return self.client.prepare(version='1.1').call(
            ctxt, 'list_sessions', instance_uuid=instance_uuid)

    def force_disconnect(self, ctxt, instance_uuid, session_id=None,
                         revoke_tokens=False, revoke_session_tokens=True):
        """End sessions; return their ids.

        revoke_session_tokens: revoke the tokens of the sessions ended, so
        that the URL the ended page holds opens nothing (the default).
        revoke_tokens: revoke every token of the instance. A consoleauth
        from before 1.9 cannot single out the ended sessions' tokens: it
        is asked to revoke all of the instance's instead, which keeps the
        ended session out too.
        """
        kwargs = dict(instance_uuid=instance_uuid, session_id=session_id,
                      revoke_tokens=revoke_tokens)
        if revoke_session_tokens and not revoke_tokens:
            if self.client.can_send_version('1.9'):
                try:
                    return self.client.prepare(version='1.9').call(
                        ctxt, 'force_disconnect',
                        revoke_session_tokens=True, **kwargs)
                except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
                    if not rpc.is_unsupported_method(exc):
                        raise
            LOG.warning('consoleauth is older than 1.9: revoking every '
                        'console token of instance %s, not only those of '
                        'the sessions ended', instance_uuid)
            kwargs['revoke_tokens'] = True
        return self.client.prepare(version='1.1').call(
            ctxt, 'force_disconnect', **kwargs)

    # One-time SSH keys (1.7)

    def authorize_ssh_key(self, ctxt, instance_uuid, public_key, index=0,
                          project_id=None, modes=None, watch_only=False):
        """Let public_key open the instance's port index once, for
        [ssh] key_ttl; returns {'user', 'fingerprint', 'expires_at',
        'instance'}. modes (1.8): what its session may do besides
        typing ('sysrq', 'nmi'); a 1.7 consoleauth is asked without them,
        and the key's session may then only type. watch_only (1.11): a
        key that never signs in as the writer; an older consoleauth
        cannot take one (FeatureUnavailable)."""
        return self._with_modes(
            modes, '1.7', ctxt, 'authorize_ssh_key', modes_version='1.8',
            watch_only=watch_only,
            instance_uuid=instance_uuid, public_key=public_key, index=index,
            project_id=project_id)

    def check_ssh_key(self, ctxt, instance_uuid, index, fingerprint):
        return self.client.prepare(version='1.7').call(
            ctxt, 'check_ssh_key', instance_uuid=instance_uuid,
            index=index, fingerprint=fingerprint)

    def acquire_session_by_ssh_key(self, ctxt, proxy_host, instance_uuid,
                                   index, fingerprint, remote_address=None):
        """A lease for a client that signed in with a one-time key, as
        acquire_session gives for a token (SSHKeyRefused, ConsoleInUse)."""
        return self.client.prepare(version='1.7').call(
            ctxt, 'acquire_session_by_ssh_key', proxy_host=proxy_host,
            instance_uuid=instance_uuid, index=index,
            fingerprint=fingerprint, remote_address=remote_address)

    # One sign-in per key (1.10)

    def sign_in_ssh_key(self, ctxt, instance_uuid, index, fingerprint):
        """Sign a client in with a one-time key, using the key up.

        Returns the sign-in, for acquire_session_by_ssh_sign_in:
        {'claim', ...} from a 1.10 consoleauth; SSHKeyRefused when no
        live key matches. A consoleauth from before 1.10 only checks the
        key (check_ssh_key) and uses it up at the lease, as it always
        did: the sign-in is then {'claim': None, 'fingerprint', ...}.
        """
        if self.client.can_send_version('1.10'):
            try:
                return self.client.prepare(version='1.10').call(
                    ctxt, 'sign_in_ssh_key', instance_uuid=instance_uuid,
                    index=index, fingerprint=fingerprint)
            except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
                if not rpc.is_unsupported_method(exc):
                    raise
        if not self.check_ssh_key(ctxt, instance_uuid, index, fingerprint):
            raise exception.SSHKeyRefused(ttl=CONF.ssh.key_ttl)
        return {'claim': None, 'instance_uuid': instance_uuid,
                'index': index, 'fingerprint': fingerprint}

    def acquire_session_by_ssh_sign_in(self, ctxt, proxy_host, sign_in,
                                       remote_address=None,
                                       relay_address=None):
        """The lease of a connection signed in by sign_in_ssh_key, as
        acquire_session_by_ssh_key gives (SSHKeyRefused, ConsoleInUse).

        relay_address (1.13): where the proxy serves the session's
        spectators; an older consoleauth is asked without it, and its
        SSH sessions cannot be watched."""
        if sign_in.get('claim') is None:
            return self.acquire_session_by_ssh_key(
                ctxt, proxy_host, sign_in['instance_uuid'], sign_in['index'],
                sign_in['fingerprint'], remote_address)
        kwargs = dict(proxy_host=proxy_host, claim=sign_in['claim'],
                      remote_address=remote_address)
        if relay_address and self.client.can_send_version('1.13'):
            return self.client.prepare(version='1.13').call(
                ctxt, 'acquire_session_by_ssh_claim',
                relay_address=relay_address, **kwargs)
        return self.client.prepare(version='1.10').call(
            ctxt, 'acquire_session_by_ssh_claim', **kwargs)

    # Serial console access switches (1.12)

    def _access_call(self, ctxt, method, **kwargs):
        return self._call_at_least(
            '1.12', 'serial console access switches', ctxt, method,
            **kwargs)

    def get_console_access(self, ctxt, project_id=None, instance_uuid=None):
        """A project's or a server's access: {'project_id',
        ['server_id'], 'enabled', 'decided_by', 'levels'}."""
        return self._access_call(ctxt, 'get_console_access',
                                 project_id=project_id,
                                 instance_uuid=instance_uuid)

    def set_console_access(self, ctxt, project_id=None, instance_uuid=None,
                           enabled=None, source='api'):
        """Set a project's or a server's switch (enabled None unsets it);
        the sessions it turns off end. Answers as get_console_access."""
        return self._access_call(ctxt, 'set_console_access',
                                 project_id=project_id,
                                 instance_uuid=instance_uuid,
                                 enabled=enabled, source=source)

    def list_console_access(self, ctxt):
        """The projects whose switch is set."""
        return self._access_call(ctxt, 'list_console_access')
