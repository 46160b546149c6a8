"""The consoleauth RPC endpoint: tokens and the instance registry."""

import time

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy import conf as sp_conf
from serialproxy.consoleauth import tokens
from serialproxy.db import api as db_api
from serialproxy import exception

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)


class ConsoleAuthManager:
    """Versioned endpoint of topic serialproxy-consoleauth.

    1.0 - authorize_console, check_token, revoke_tokens,
          report_instances, get_instance, list_instances
    1.1 - instance_event
    """

    target = messaging.Target(version='1.1')

    def __init__(self, database, clock=time.time):
        self.db = database
        self.clock = clock

    def authorize_console(self, ctxt, instance_uuid, compute_host, host,
                          port, index=0, console_type='serial'):
        """Issue a token for one console; return it once, keep its hash."""
        token = tokens.new_token()
        now = self.clock()
        self.db.add_token(
            token_hash=tokens.hash_token(token),
            instance_uuid=instance_uuid, console_type=console_type,
            compute_host=compute_host, host=host, port=port,
            serial_index=index, created_at=now,
            expires_at=now + CONF.consoleauth.token_ttl)
        LOG.info('Issued a %s console token for instance %s index %d, '
                 'valid %ds', console_type, instance_uuid, index,
                 CONF.consoleauth.token_ttl)
        return token

    @messaging.expected_exceptions(exception.InvalidToken)
    def check_token(self, ctxt, token):
        """Return the console a live token opens, or raise InvalidToken."""
        if not token or not isinstance(token, str):
            raise exception.InvalidToken()
        row = self.db.get_token(tokens.hash_token(token))
        if row is None or row.expires_at <= self.clock():
            raise exception.InvalidToken()
        return {'instance_uuid': row.instance_uuid,
                'console_type': row.console_type,
                'compute_host': row.compute_host,
                'host': row.host,
                'port': row.port,
                'index': row.serial_index,
                'expires_at': row.expires_at}

    def revoke_tokens(self, ctxt, instance_uuid):
        count = self.db.delete_tokens(instance_uuid)
        LOG.info('Revoked %d console tokens of instance %s',
                 count, instance_uuid)
        return count

    def purge_expired_tokens(self):
        """Housekeeping, not RPC: drop tokens that can no longer open."""
        count = self.db.delete_expired_tokens(self.clock())
        if count:
            LOG.debug('Purged %d expired console tokens', count)
        return count

    def report_instances(self, ctxt, host, instances):
        """A compute agent's full list of its instances replaces its last."""
        self.db.replace_host_instances(host, instances, self.clock())
        LOG.debug('Host %s reported %d instances', host, len(instances))

    def instance_event(self, ctxt, host, event, instance):
        """One instance of a compute host changed (a libvirt lifecycle event).

        'undefined' removes the instance; anything else records it as the
        host now reports it. The host's periodic full report still runs, so
        an event lost on the way is repaired within one interval.
        """
        if event == 'undefined':
            self.db.delete_host_instance(host, instance['uuid'])
        else:
            self.db.update_host_instance(host, instance, self.clock())
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
