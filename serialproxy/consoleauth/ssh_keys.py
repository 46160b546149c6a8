"""The consoleauth side of SSH consoles: one-time keys and their leases.

A key pushed through the API may open one console port (an instance and
a serial index), once, within [ssh] key_ttl. The proxy signs a client in
here with the key it offers, which uses the key up (one sign-in per
key), then leases the console with the claim that sign-in gave through
the same lease path a websocket token takes: one writer per console,
whichever way they came.

What a key's session may do besides typing (SysRq after a break) is
what the API's policy allowed its pusher when the key was pushed: the
key keeps those modes, and the console its lease answers with carries
them to the proxy, as a console token's do. A key pushed without them
(an API from before 1.8) opens a console that may only be typed in. A
key pushed watch_only (1.11: its pusher may not type in the console)
never leases the console's writer's seat: it watches (a .view user)
through join_session with its sign-in's claim, which is a token for the
console and carries the key's modes ('view' among them when the API's
policy let its pusher watch). An SSH writer's lease names its proxy's
relay (1.13), so that spectators, websocket or SSH, watch it too.
"""

import uuid

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy import conf as sp_conf
from serialproxy.consoleauth import tokens
from serialproxy import exception
from serialproxy.ssh import keys as ssh_keys

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

TRANSPORT_SSH = 'ssh'
# What a key may carry: the page's permissions (SysRq after a break) and
# watching (a .view user's seat); never take_over.
KEY_MODES = tokens.PAGE_PERMISSIONS | tokens.WATCH_ONLY_MODES


class SSHKeyEndpoints:
    """RPC 1.7 to 1.11 methods of ConsoleAuthManager (a mixin of it)."""

    @messaging.expected_exceptions(exception.SerialProxyException)
    def authorize_ssh_key(self, ctxt, instance_uuid, public_key, index=0,
                          project_id=None, modes=None, watch_only=False):
        """Let public_key open the instance's serial port index once.

        The instance is found and its host's agent asked for the port as
        for a console token (InstanceNotFound unless it is project_id's,
        when given; the agent's errors as they are). modes (1.8): what
        the API's policy allows the pusher besides typing, 'sysrq' and
        'nmi', and 'view' (its user may watch as a .view user); others
        are dropped (take_over too). The key may write unless
        watch_only (1.11). Returns {'user', 'fingerprint', 'expires_at',
        'instance', 'modes'}.
        """
        key = ssh_keys.PublicKey.parse(public_key)
        instance = self._visible_instance(instance_uuid, project_id)
        self.check_access(instance_uuid)
        console = self._serial_console(ctxt, instance['host'],
                                       instance_uuid, index)
        now = self.clock()
        expires_at = now + CONF.ssh.key_ttl
        stored_modes = tokens.modes_column(
            modes, KEY_MODES, write=not watch_only)
        self.db.add_ssh_key(
            id=str(uuid.uuid4()), fingerprint=key.fingerprint,
            public_key=key.openssh(), instance_uuid=instance_uuid,
            serial_index=index, compute_host=instance['host'],
            host=console['host'], port=console['port'],
            user_id=ctxt.get('user_id'), project_id=ctxt.get('project_id'),
            modes=stored_modes, created_at=now, expires_at=expires_at)
        LOG.info('Accepted a one-time %s key %s for instance %s index %d, '
                 'valid %ds', key.algorithm, key.fingerprint, instance_uuid,
                 index, CONF.ssh.key_ttl)
        return {'user': ssh_keys.console_user(instance_uuid, index),
                'fingerprint': key.fingerprint, 'expires_at': expires_at,
                'instance': instance, 'modes': tokens.modes_of(stored_modes)}

    def check_ssh_key(self, ctxt, instance_uuid, index, fingerprint):
        """Whether a live key with that fingerprint opens that console
        port (the proxy's answer to a client offering the key)."""
        return self.db.find_ssh_key(instance_uuid, index, fingerprint,
                                    self.clock()) is not None

    @messaging.expected_exceptions(exception.SSHKeyRefused)
    def sign_in_ssh_key(self, ctxt, instance_uuid, index, fingerprint):
        """Use a live key up as its client signs in (1.10).

        One sign-in per key: the key is deleted and its console kept in
        a claim, a token only the signing-in connection's proxy holds,
        in one transaction that exactly one of two racing sign-ins wins.
        The connection then leases the console with the claim
        (acquire_session_by_ssh_claim). Returns {'claim', 'expires_at'};
        SSHKeyRefused when no live key matches.
        """
        claim = tokens.new_token()
        key = self.db.claim_ssh_key(instance_uuid, index, fingerprint,
                                    self.clock(), tokens.hash_token(claim))
        if key is None:
            raise exception.SSHKeyRefused(ttl=CONF.ssh.key_ttl)
        LOG.info('Key %s signed in for console %s index %d, and is used '
                 'up', fingerprint, instance_uuid, index)
        return {'claim': claim, 'expires_at': key.expires_at}

    @messaging.expected_exceptions(exception.SSHKeyRefused,
                                   exception.ConsoleInUse,
                                   exception.ModeNotAllowed,
                                   exception.ConsoleAccessDisabled)
    def acquire_session_by_ssh_claim(self, ctxt, proxy_host, claim,
                                     remote_address=None,
                                     relay_address=None):
        """The lease of a connection that signed in (1.10): as
        acquire_session_by_ssh_key, with the claim sign_in_ssh_key gave.
        A claim is good for one try (the connection's one console
        channel), lease or not. relay_address (1.13): where the proxy
        serves the session's spectators; the answer carries the relay
        key they present there."""
        if not claim or not isinstance(claim, str):
            raise exception.SSHKeyRefused(ttl=CONF.ssh.key_ttl)
        now = self.clock()
        self._bridge_silence(now)
        token_hash = tokens.hash_token(claim)
        try:
            row, lease = self._lease_over_ssh(token_hash, proxy_host,
                                              remote_address, now,
                                              relay_address)
        finally:
            self.db.delete_token(token_hash)
        return self._ssh_console(row, lease)

    @messaging.expected_exceptions(exception.SSHKeyRefused,
                                   exception.ConsoleInUse,
                                   exception.ModeNotAllowed,
                                   exception.ConsoleAccessDisabled)
    def acquire_session_by_ssh_key(self, ctxt, proxy_host, instance_uuid,
                                   index, fingerprint, remote_address=None):
        """acquire_session for a client that signed in with a one-time key
        (1.7; a proxy from before 1.10, whose sign-in left the key live).

        The console is leased exactly as for a token (ConsoleInUse when
        someone holds it, by websocket or SSH), through a token made for
        this one lease and dropped at once; the key is used up when the
        lease is taken, and kept for another try when it is not. That
        token carries the key's modes, so the console answered has them
        as a token's console has its own.
        """
        now = self.clock()
        self._bridge_silence(now)
        key = self.db.find_ssh_key(instance_uuid, index, fingerprint, now)
        if key is None:
            raise exception.SSHKeyRefused(ttl=CONF.ssh.key_ttl)
        if tokens.is_watch_only(key.modes):
            raise exception.ModeNotAllowed(mode=tokens.WRITE,
                                           watch_only=True)
        token_hash = tokens.hash_token(tokens.new_token())
        self.db.add_token(
            token_hash=token_hash, instance_uuid=key.instance_uuid,
            console_type='serial', compute_host=key.compute_host,
            host=key.host, port=key.port, serial_index=key.serial_index,
            created_at=now, user_id=key.user_id,
            project_id=key.project_id, modes=key.modes,
            expires_at=key.expires_at)
        try:
            row, lease = self._lease_over_ssh(token_hash, proxy_host,
                                              remote_address, now)
        finally:
            self.db.delete_token(token_hash)
        if not self.db.delete_ssh_key(key.id):
            # Another session signed in with the same key a moment
            # before: it is used up, and this lease goes back.
            self.db.delete_sessions(session_ids=[lease['id']])
            raise exception.SSHKeyRefused(ttl=CONF.ssh.key_ttl)
        return self._ssh_console(row, lease)

    def _lease_over_ssh(self, token_hash, proxy_host, remote_address, now,
                        relay_address=None):
        """(token row, lease) of a new SSH lease through token_hash;
        SSHKeyRefused, ModeNotAllowed or ConsoleInUse otherwise."""
        lease = dict(self._new_lease(proxy_host, {
            'remote_address': remote_address,
            'relay_address': relay_address}, now), transport=TRANSPORT_SSH)
        (row, acquired, holder), = self.db.lease_consoles(
            [(token_hash, lease)], now)
        if row is None:
            raise exception.SSHKeyRefused(ttl=CONF.ssh.key_ttl)
        if tokens.is_watch_only(row.modes):
            # The lease transaction never seats a watch-only key.
            raise exception.ModeNotAllowed(mode=tokens.WRITE,
                                           watch_only=True)
        if not acquired:
            raise exception.ConsoleInUse.since_epoch(
                now if holder is None else holder)
        refused = self.refused_leases({lease['id']: row.instance_uuid})
        if refused:
            raise refused[lease['id']]
        return row, lease

    def _ssh_console(self, row, lease):
        LOG.info('Session %s leased console %s index %d to proxy %s over '
                 'SSH', lease['id'], row.instance_uuid, row.serial_index,
                 lease['proxy_host'])
        return dict(self._console(row), session_id=lease['id'],
                    lease_ttl=CONF.consoleauth.session_lease_ttl,
                    transport=TRANSPORT_SSH,
                    relay_key=lease['relay_key'] if lease['relay_address']
                    else None)
