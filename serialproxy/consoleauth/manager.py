"""The consoleauth RPC endpoint: tokens and the instance registry."""

import threading
import time
import uuid

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy import conf as sp_conf
from serialproxy.consoleauth import access
from serialproxy.consoleauth import ssh_keys
from serialproxy.consoleauth import tokens
from serialproxy.db import api as db_api
from serialproxy import exception
from serialproxy.proxy import close_codes
from serialproxy import rpc

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)


def max_agent_calls():
    """Compute agent calls (authorize_instance_console) one consoleauth
    process waits on at once: half its RPC threads. An agent that does not
    answer holds a thread for half rpc_call_timeout; the other half of
    the threads stay free for the proxies' lease calls."""
    return max(1, CONF.executor_thread_pool_size // 2)


# Lifecycle events after which an instance's console tokens are revoked.
REVOKING_EVENTS = ('undefined', 'stopped', 'crashed')
# Seconds an expired lease is kept before the purge drops it. Until then
# its proxy may still renew it, unless another session took the console:
# a broker or consoleauth outage longer than the lease TTL must not end
# live sessions (their proxy could not renew), while a console of a proxy
# that died is free to others at expiry all the same.
EXPIRED_LEASE_GRACE = 3600
# The modes a token may carry (serialproxy.consoleauth.tokens).
TOKEN_MODES = tokens.TOKEN_MODES


class ConsoleAuthManager(ssh_keys.SSHKeyEndpoints, access.AccessEndpoints):
    """Versioned endpoint of topic serialproxy-consoleauth.

    1.0 - authorize_console, check_token, revoke_tokens,
          report_instances, get_instance, list_instances
    1.1 - acquire_session, renew_sessions, release_session,
          list_sessions, force_disconnect; tokens record their requester
    1.2 - instance_event
    1.3 - revoke_tokens takes compute_host; the instances of
          report_instances and instance_event may carry 'consoles', and
          tokens those contradict are revoked
    1.4 - acquire_sessions, release_sessions: many leases per call
    1.5 - authorize_instance_console
    1.6 - join_session, take_over_session; authorize_console and
          authorize_instance_console take modes; acquire_sessions
          requests may carry relay_address and answer relay_key
    1.7 - authorize_ssh_key, check_ssh_key, acquire_session_by_ssh_key
          (serialproxy.consoleauth.ssh_keys)
    1.8 - authorize_ssh_key takes modes ('sysrq', 'nmi'), which the
          console of acquire_session_by_ssh_key carries
    1.9 - force_disconnect takes revoke_session_tokens
    1.10 - sign_in_ssh_key (uses a key up at sign-in),
           acquire_session_by_ssh_claim
    1.11 - authorize_console, authorize_instance_console and
           authorize_ssh_key take watch_only; consoles name 'write' among
           their modes and carry 'watch_only'
    1.12 - get_console_access, set_console_access, list_console_access
           (serialproxy.consoleauth.access); URLs, keys and leases of a
           console whose access is off are ConsoleAccessDisabled
    1.13 - acquire_session_by_ssh_claim takes relay_address and answers
           relay_key: an SSH writer's spectators watch through its relay
    """

    target = messaging.Target(version='1.13')

    def __init__(self, database, proxy_api, clock=time.time,
                 compute_api=None):
        self.db = database
        self.proxy_api = proxy_api
        self.clock = clock
        self._compute_api = compute_api
        # When a lease call last reached this process (see _bridge_silence).
        self._last_heard = clock()

    @messaging.expected_exceptions(exception.ConsoleAccessDisabled)
    def authorize_console(self, ctxt, instance_uuid, compute_host, host,
                          port, index=0, console_type='serial', modes=None,
                          watch_only=False):
        """Issue a token for one console; return it once, keep its hash.

        modes: the connection modes beyond the writer's ('view',
        'take_over') and the console page's permissions ('sysrq',
        'nmi') that the API's policy allowed the requester; the token
        carries them, so the proxy needs no policy of its own. Others
        are dropped. The token may write (take the writer's seat) unless
        watch_only (1.11): then it carries 'view' alone, if given.
        ConsoleAccessDisabled while the console's access is off (1.12).
        """
        self.check_access(instance_uuid)
        return self._issue_token(
            ctxt, instance_uuid, compute_host, host, port, index,
            console_type, modes, watch_only)

    def _issue_token(self, ctxt, instance_uuid, compute_host, host, port,
                     index, console_type, modes, watch_only):
        token = tokens.new_token()
        now = self.clock()
        self.db.add_token(
            token_hash=tokens.hash_token(token),
            instance_uuid=instance_uuid, console_type=console_type,
            compute_host=compute_host, host=host, port=port,
            serial_index=index, created_at=now,
            user_id=ctxt.get('user_id'), project_id=ctxt.get('project_id'),
            modes=tokens.modes_column(modes, write=not watch_only),
            expires_at=now + CONF.consoleauth.token_ttl)
        LOG.info('Issued a %s console token for instance %s index %d, '
                 'valid %ds', console_type, instance_uuid, index,
                 CONF.consoleauth.token_ttl)
        return token

    @messaging.expected_exceptions(exception.SerialProxyException)
    def authorize_instance_console(self, ctxt, instance_uuid, index=0,
                                   console_type='serial', project_id=None,
                                   modes=None, watch_only=False):
        """authorize_console for an instance named by its id alone.

        What the API did in three calls (get_instance, the agent's
        get_serial_console, authorize_console), in one: the API's users
        wait for one reply, not three in a row. The instance is looked up
        in the registry; with project_id it must be that project's, else
        it is InstanceNotFound as an unknown one is (a non-admin must not
        learn that another project's server exists). Its host's agent is
        asked for the console's address, and its errors (not running,
        no such port, hypervisor unavailable) reach the caller as they
        are. Returns {'token', 'instance'}: the registry entry too (its
        host and owner), which the caller would otherwise ask for.
        """
        instance = self._visible_instance(instance_uuid, project_id)
        self.check_access(instance_uuid)
        console = self._serial_console(ctxt, instance['host'],
                                       instance_uuid, index)
        token = self._issue_token(
            ctxt, instance_uuid, instance['host'], console['host'],
            console['port'], index, console_type, modes, watch_only)
        return {'token': token, 'instance': instance}

    def _visible_instance(self, instance_uuid, project_id=None):
        """The registry entry, as a dict; InstanceNotFound when unknown
        or, with project_id, another project's."""
        row = self.db.get_instance(instance_uuid)
        if row is None or (project_id is not None and
                           row.project_id != project_id):
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        return db_api.instance_to_dict(row)

    def _serial_console(self, ctxt, host, instance_uuid, index):
        """The agent's get_serial_console, within half the caller's wait:
        an agent that does not answer is then a 503 naming it, not a
        timeout of the caller's own with an orphaned reply behind it."""
        if self._compute_api is None:
            self._compute_api = compute_rpcapi.ComputeAPI(
                retry=rpc.USER_FACING_RETRY)
            self._agent_calls = threading.BoundedSemaphore(
                max_agent_calls())
        wait = CONF.rpc_call_timeout / 2.0
        started = time.monotonic()
        if not self._agent_calls.acquire(timeout=wait):
            LOG.warning('%d compute agent calls in flight: refused the '
                        'console of instance %s', max_agent_calls(),
                        instance_uuid)
            raise exception.ServiceUnavailable(service='compute')
        try:
            return self._compute_api.get_serial_console(
                ctxt, host, instance_uuid, index,
                timeout=max(0.1, wait - (time.monotonic() - started)))
        except (messaging.MessagingTimeout,
                messaging.MessageDeliveryFailure) as exc:
            LOG.warning('Compute host %s did not answer for the console '
                        'of instance %s: %s', host, instance_uuid,
                        type(exc).__name__)
            raise exception.ServiceUnavailable(service='compute')
        finally:
            self._agent_calls.release()

    def _live_token(self, token):
        if not token or not isinstance(token, str):
            raise exception.InvalidToken()
        row = self.db.get_token(tokens.hash_token(token))
        if row is None or row.expires_at <= self.clock():
            raise exception.InvalidToken()
        return row

    @staticmethod
    def _console(row):
        return {'instance_uuid': row.instance_uuid,
                'console_type': row.console_type,
                'compute_host': row.compute_host,
                'host': row.host,
                'port': row.port,
                'index': row.serial_index,
                'expires_at': row.expires_at,
                # Who the URL was issued to, for the proxy's audit events.
                'user_id': row.user_id,
                'project_id': row.project_id,
                'modes': tokens.modes_of(row.modes),
                # (1.11) A proxy cannot tell an older consoleauth's
                # modes (never 'write') from a watch-only token's.
                'watch_only': tokens.is_watch_only(row.modes)}

    @messaging.expected_exceptions(exception.InvalidToken)
    def check_token(self, ctxt, token):
        """Return the console a live token opens, or raise InvalidToken."""
        return self._console(self._live_token(token))

    # Session leases: one user per console.

    def _bridge_silence(self, now):
        """Keep leases that expired while this process heard nothing.

        Proxies renew their leases every third of the TTL; when no lease
        call at all arrived for half a TTL, the broker (or this process)
        was most likely cut off, and the leases that expired meanwhile
        belong to proxies that could not renew them. They get a TTL
        more, so their proxies renew them before a second user can take
        the console. A proxy that really died is then noticed one TTL
        later, and only when nothing else spoke to consoleauth meanwhile.
        """
        ttl = CONF.consoleauth.session_lease_ttl
        last, self._last_heard = self._last_heard, now
        if now - last <= ttl / 2.0:
            return
        count = self.db.extend_leases_expired_between(last, now, now + ttl)
        if count:
            LOG.warning('Nothing reached consoleauth for %.0f s: kept %d '
                        'session leases that expired meanwhile for their '
                        'proxies to renew', now - last, count)

    @messaging.expected_exceptions(exception.InvalidToken,
                                   exception.ConsoleInUse,
                                   exception.ConsoleAccessDisabled)
    def acquire_session(self, ctxt, token, proxy_host, remote_address=None):
        """Lease a live token's console for one session, or ConsoleInUse.

        Returns what check_token does plus 'session_id' and 'lease_ttl', so
        a proxy needs one call, not two, to go from token to lease.
        """
        answer, = self.acquire_sessions(ctxt, proxy_host, [
            {'token': token, 'remote_address': remote_address}])
        result = rpc.batch_result(answer)
        if isinstance(result, Exception):
            raise result
        return result

    def acquire_sessions(self, ctxt, proxy_host, requests):
        """acquire_session for many sessions of one proxy at once.

        requests is a list of {'token', 'remote_address'}; the answer has
        one entry per request (see rpc.batch_result): the console, or
        InvalidToken or ConsoleInUse for that request alone. The token
        checks (with the check that the token's host and port are still
        its instance's in the registry: a port reused while a revoke was
        lost is InvalidToken), the take-over of expired leases and the
        new leases are one database transaction; the unique (instance,
        index) constraint decides between racing acquirers.
        """
        now = self.clock()
        self._bridge_silence(now)
        ttl = CONF.consoleauth.session_lease_ttl
        asked = [(number, request) for number, request in enumerate(requests)
                 if request.get('token') and
                 isinstance(request['token'], str)]
        leases = [(tokens.hash_token(request['token']),
                   self._new_lease(proxy_host, request, now))
                  for _, request in asked]
        leased = self.db.lease_consoles(leases, now) if leases else []
        refused = self.refused_leases({
            lease['id']: row.instance_uuid
            for (_, lease), (row, acquired, _) in zip(leases, leased)
            if acquired})
        answers = [rpc.batch_error(exception.InvalidToken())] * len(requests)
        for (number, _), (_, lease), (row, acquired, holder) in zip(
                asked, leases, leased):
            session_id = lease['id']
            if row is None:
                continue
            if session_id in refused:
                answers[number] = rpc.batch_error(refused[session_id])
                continue
            if tokens.is_watch_only(row.modes):
                answers[number] = rpc.batch_error(exception.ModeNotAllowed(
                    mode=tokens.WRITE, watch_only=True))
                continue
            if not acquired:
                answers[number] = rpc.batch_error(
                    exception.ConsoleInUse.since_epoch(
                        now if holder is None else holder))
                continue
            LOG.info('Session %s leased console %s index %d to proxy %s',
                     session_id, row.instance_uuid, row.serial_index,
                     proxy_host)
            answers[number] = rpc.batch_value(dict(
                self._console(row), session_id=session_id, lease_ttl=ttl,
                relay_key=lease['relay_key']))
        return answers

    @staticmethod
    def _new_lease(proxy_host, request, now):
        """A new session's own lease columns; a writer's relay key lets
        spectators on other proxies reach its output (proxy/relay.py)."""
        return {'id': str(uuid.uuid4()),
                'remote_address': request.get('remote_address'),
                'relay_address': request.get('relay_address'),
                'relay_key': tokens.new_token(),
                'proxy_host': proxy_host, 'started_at': now,
                'expires_at': now + CONF.consoleauth.session_lease_ttl}

    @messaging.expected_exceptions(exception.InvalidToken,
                                   exception.ConsoleNotInUse,
                                   exception.ModeNotAllowed,
                                   exception.TooManySpectators,
                                   exception.ConsoleAccessDisabled)
    def join_session(self, ctxt, token, proxy_host, remote_address=None,
                     max_spectators=10):
        """Seat a read-only spectator (mode=view) beside a console's writer.

        The spectator's lease is a session row of its own (mode 'view'):
        it is renewed, listed, released and force-disconnected like the
        writer's. Returns what acquire_session does plus 'writer': the
        writer's session id, proxy host, relay address and relay key,
        from which the spectator's proxy takes the output.
        """
        self._check_token_access(token)
        now = self.clock()
        self._bridge_silence(now)
        lease = self._new_lease(proxy_host, {'remote_address':
                                             remote_address}, now)
        lease['relay_key'] = None
        row, writer = self.db.add_spectator(
            tokens.hash_token(self._token_string(token)), lease, now,
            max_spectators)
        if row is None:
            raise exception.InvalidToken()
        refused = self.refused_leases({lease['id']: row.instance_uuid})
        if refused:
            raise refused[lease['id']]
        LOG.info('Session %s watches console %s index %d on proxy %s',
                 lease['id'], row.instance_uuid, row.serial_index,
                 proxy_host)
        return dict(self._console(row), session_id=lease['id'],
                    lease_ttl=CONF.consoleauth.session_lease_ttl,
                    writer={'session_id': writer.id,
                            'proxy_host': writer.proxy_host,
                            'relay_address': writer.relay_address,
                            'relay_key': writer.relay_key})

    @messaging.expected_exceptions(exception.InvalidToken,
                                   exception.ConsoleInUse,
                                   exception.ModeNotAllowed,
                                   exception.ConsoleAccessDisabled)
    def take_over_session(self, ctxt, token, proxy_host, remote_address=None,
                          relay_address=None):
        """Make this session the console's writer, whoever held it.

        The hand-over is one database transaction (no window for a third
        session); the replaced writer is then closed with close code
        4006 by whichever proxy holds it. Returns what acquire_session
        does plus 'replaced': the replaced session's id, or None.
        """
        self._check_token_access(token)
        now = self.clock()
        self._bridge_silence(now)
        lease = self._new_lease(proxy_host, {
            'remote_address': remote_address,
            'relay_address': relay_address}, now)
        row, replaced = self.db.take_over_console(
            tokens.hash_token(self._token_string(token)), lease, now)
        if row is None:
            raise exception.InvalidToken()
        refused = self.refused_leases({lease['id']: row.instance_uuid})
        if refused:
            # Access went off as the console changed hands: the replaced
            # writer ends for that reason, not for a take-over.
            if replaced is not None:
                self.proxy_api.disconnect_sessions(
                    ctxt, [replaced.id],
                    code=close_codes.CloseCode.ACCESS_DISABLED,
                    reason=refused[lease['id']].message)
            raise refused[lease['id']]
        if replaced is not None:
            self.proxy_api.disconnect_sessions(
                ctxt, [replaced.id], code=close_codes.CloseCode.TAKEN_OVER,
                reason=close_codes.default_reason(
                    close_codes.CloseCode.TAKEN_OVER))
        LOG.info('Session %s took console %s index %d over%s on proxy %s',
                 lease['id'], row.instance_uuid, row.serial_index,
                 ' from session %s' % replaced.id if replaced else '',
                 proxy_host)
        return dict(self._console(row), session_id=lease['id'],
                    lease_ttl=CONF.consoleauth.session_lease_ttl,
                    relay_key=lease['relay_key'],
                    replaced=replaced.id if replaced else None)

    def _check_token_access(self, token):
        """ConsoleAccessDisabled before a spectator's or take-over's
        lease when the token's console is off: nothing to watch, and no
        writer to replace, is not the reason then."""
        row = self.db.get_token(tokens.hash_token(self._token_string(token)))
        if row is not None:
            self.check_access(row.instance_uuid)

    @staticmethod
    def _token_string(token):
        if not token or not isinstance(token, str):
            raise exception.InvalidToken()
        return token

    def renew_sessions(self, ctxt, proxy_host, sessions):
        """Extend a proxy's leases in one batch; return the ids it lost.

        sessions is a list of {'id', 'bytes_to_guest', 'bytes_to_client'};
        a lost id was force-disconnected or expired, and the proxy must end
        it even if it missed the disconnect cast.
        """
        now = self.clock()
        self._bridge_silence(now)
        return self.db.renew_sessions(
            proxy_host, sessions, now + CONF.consoleauth.session_lease_ttl)

    def release_session(self, ctxt, session_id):
        self.release_sessions(ctxt, [session_id])

    def release_sessions(self, ctxt, session_ids):
        """End the leases of sessions that closed, many in one call."""
        self.db.delete_sessions(session_ids=session_ids)

    def list_sessions(self, ctxt, instance_uuid=None):
        return [db_api.session_to_dict(row) for row in
                self.db.list_sessions(self.clock(), instance_uuid)]

    @messaging.expected_exceptions(exception.SessionNotFound)
    def force_disconnect(self, ctxt, instance_uuid, session_id=None,
                         revoke_tokens=False, revoke_session_tokens=False):
        """End sessions of an instance at once; the consoles are free now.

        revoke_session_tokens (1.9): revoke the tokens the ended sessions
        were opened with, so that their pages cannot open them again
        (callers from before 1.9 did not ask, and keep them).
        revoke_tokens: revoke every token of the instance.
        """
        ids = self.db.delete_sessions(
            instance_uuid=instance_uuid,
            session_ids=None if session_id is None else [session_id],
            with_tokens=revoke_session_tokens)
        if session_id is not None and not ids:
            raise exception.SessionNotFound(session_id=session_id)
        if revoke_tokens:
            self.revoke_tokens(ctxt, instance_uuid)
        if ids:
            self.proxy_api.disconnect_sessions(ctxt, ids)
        LOG.info('Force-disconnected %d sessions of instance %s%s',
                 len(ids), instance_uuid,
                 ' and revoked its tokens' if revoke_tokens else
                 ' and revoked their tokens' if revoke_session_tokens else '')
        return ids

    def revoke_tokens(self, ctxt, instance_uuid, compute_host=None):
        """Revoke an instance's tokens (only those for compute_host's
        consoles, when given: a migrated instance keeps its new ones)."""
        count = self.db.delete_tokens(instance_uuid, compute_host)
        LOG.info('Revoked %d console tokens of instance %s',
                 count, instance_uuid)
        return count

    @staticmethod
    def _reported_consoles(instance):
        """{(index, port)} an instance dict reports, None if it does not."""
        if instance.get('consoles') is None:
            return None
        return {(c['index'], c['port']) for c in instance['consoles']}

    def _revoke_contradicted(self, host, consoles, instance_uuid=None):
        count = self.db.delete_contradicted_tokens(host, consoles,
                                                   instance_uuid)
        if count:
            LOG.info('Revoked %d console tokens of host %s%s whose console '
                     'is gone', count, host,
                     ' instance %s' % instance_uuid if instance_uuid
                     else '')
        return count

    def purge_expired(self):
        """Housekeeping, not RPC: drop expired tokens and leases."""
        now = self.clock()
        tokens_purged = self.db.delete_expired_tokens(now)
        leases_purged = self.db.delete_expired_sessions(
            now - EXPIRED_LEASE_GRACE)
        if tokens_purged or leases_purged:
            LOG.debug('Purged %d expired tokens and %d expired leases',
                      tokens_purged, leases_purged)
        return tokens_purged, leases_purged

    def report_instances(self, ctxt, host, instances):
        """A compute agent's full list of its instances replaces its last.

        The list is the truth about the host's consoles too: a token for
        an instance it no longer has, or for a port an instance no longer
        has, is revoked. This repairs what an agent missed while it was
        down (a guest deleted, its port given to another) or an event
        lost on the way.
        """
        self.db.replace_host_instances(host, instances, self.clock())
        self._revoke_contradicted(host, {
            i['uuid']: self._reported_consoles(i) for i in instances})
        LOG.debug('Host %s reported %d instances', host, len(instances))

    def instance_event(self, ctxt, host, event, instance):
        """One instance of a compute host changed (a libvirt lifecycle event).

        'undefined' removes the instance; anything else records it as the
        host now reports it. The host's periodic full report still runs, so
        an event lost on the way is repaired within one interval.

        Tokens of the instance for this host's consoles are revoked when
        it was undefined, stopped or crashed (its ports may go to another
        guest), and those naming ports it no longer reports otherwise.
        """
        uuid_ = instance['uuid']
        if event == 'undefined':
            self.db.delete_host_instance(host, uuid_)
        else:
            self.db.update_host_instance(host, instance, self.clock())
        if event in REVOKING_EVENTS:
            count = self.db.delete_tokens(uuid_, host)
            if count:
                LOG.info('Revoked %d console tokens of instance %s: %s',
                         count, uuid_, event)
        elif self._reported_consoles(instance) is not None:
            self._revoke_contradicted(
                host, {uuid_: self._reported_consoles(instance)}, uuid_)
        LOG.debug('Host %s: instance %s %s', host, instance['uuid'], event)

    @messaging.expected_exceptions(exception.InstanceNotFound)
    def get_instance(self, ctxt, instance_uuid):
        row = self.db.get_instance(instance_uuid)
        if row is None:
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        return db_api.instance_to_dict(row)

    def list_instances(self, ctxt, host=None):
        return [db_api.instance_to_dict(row)
                for row in self.db.list_instances(host)]
