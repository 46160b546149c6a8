"""Serial console access: one switch at three levels, kept by consoleauth.

The cloud's [console] access_default, a project's switch and a server's
switch (the project and server ones in consoleauth's database, so every
API and proxy sees the same). The most specific level that is set
decides, except that the cloud's forced_off wins over everything
(decide()).

Enforced where every front door passes: issuing a console URL or a
one-time SSH key, and leasing a console (websocket writer, spectator,
take-over, SSH) refuse with ConsoleAccessDisabled (403, naming the
level). A lease is checked after it is taken: a switch turned off
meanwhile either sees the lease (and ends it) or the lease sees the
switch (and goes back), so none outlives it. Turning a switch off ends
the live sessions it turns off, on whichever proxy (close code 4009),
and drops their servers' one-time SSH keys.
"""

import collections

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy import conf as sp_conf
from serialproxy.conf import console_access as opts
from serialproxy import exception
from serialproxy import notifications
from serialproxy.proxy.close_codes import CloseCode

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

ENABLED = opts.ENABLED
DISABLED = opts.DISABLED
FORCED_OFF = opts.FORCED_OFF

CLOUD = 'cloud'
PROJECT = 'project'
SERVER = 'server'
# The cloud level's row in the database: the access_default last applied.
CLOUD_TARGET = ''

Decision = collections.namedtuple('Decision', 'enabled decided_by')


def decide(cloud, project=None, server=None):
    """The access of one server: cloud is access_default, project and
    server the switches set for its project and itself (None: unset)."""
    if cloud == FORCED_OFF:
        return Decision(False, CLOUD)
    if server is not None:
        return Decision(server == ENABLED, SERVER)
    if project is not None:
        return Decision(project == ENABLED, PROJECT)
    return Decision(cloud == ENABLED, CLOUD)


def value_of(enabled):
    """A switch's stored value from the API's enabled (None: unset)."""
    if enabled is None:
        return None
    return ENABLED if enabled else DISABLED


def refusal(decision):
    return exception.ConsoleAccessDisabled(level=decision.decided_by)


class AccessEndpoints:
    """RPC 1.12 methods of ConsoleAuthManager (a mixin of it), and the
    checks its other methods make."""

    @staticmethod
    def _cloud_access():
        return CONF.console.access_default

    def _decisions(self, instance_uuids=None, project_id=None):
        """{uuid: Decision} of registered instances (see
        Database.access_of_instances)."""
        cloud = self._cloud_access()
        return {row.uuid: decide(cloud, row.project_value, row.server_value)
                for row in self.db.access_of_instances(
                    instance_uuids=instance_uuids, project_id=project_id)}

    def check_access(self, instance_uuid):
        """ConsoleAccessDisabled unless the instance's console is open
        (an instance not registered is left to the caller's own 404)."""
        decision = self._decisions([instance_uuid]).get(instance_uuid)
        if decision is not None and not decision.enabled:
            raise refusal(decision)

    def refused_leases(self, leased):
        """The leases of {session id: instance uuid} that the switch
        refuses, given back: {session id: ConsoleAccessDisabled}."""
        if not leased:
            return {}
        decisions = self._decisions(set(leased.values()))
        refused = {session_id: refusal(decisions[uuid])
                   for session_id, uuid in leased.items()
                   if uuid in decisions and not decisions[uuid].enabled}
        if refused:
            self.db.delete_sessions(session_ids=list(refused))
            LOG.info('Refused %d console leases: serial console access is '
                     'off', len(refused))
        return refused

    # RPC 1.12 -------------------------------------------------------------

    def _answer(self, project_id, instance_uuid=None):
        """What get_console_access says of a project, or of a server
        (with its project)."""
        cloud = self._cloud_access()
        project = self.db.get_access(PROJECT, project_id) \
            if project_id is not None else None
        levels = {CLOUD: cloud, PROJECT: project}
        answer = {'project_id': project_id}
        if instance_uuid is not None:
            levels[SERVER] = self.db.get_access(SERVER, instance_uuid)
            answer['server_id'] = instance_uuid
        decision = decide(cloud, project, levels.get(SERVER))
        answer.update(enabled=decision.enabled,
                      decided_by=decision.decided_by, levels=levels)
        return answer

    def _registered(self, instance_uuid):
        row = self.db.get_instance(instance_uuid)
        if row is None:
            raise exception.InstanceNotFound(instance_uuid=instance_uuid)
        return row

    @messaging.expected_exceptions(exception.InstanceNotFound)
    def get_console_access(self, ctxt, project_id=None, instance_uuid=None):
        """A project's access (that of its servers without a switch of
        their own), or a server's: {'project_id', ['server_id'],
        'enabled', 'decided_by', 'levels': {level: value or None}}.
        A project id is taken as given; an unknown server is
        InstanceNotFound."""
        if instance_uuid is not None:
            project_id = self._registered(instance_uuid).project_id
        return self._answer(project_id, instance_uuid)

    def list_console_access(self, ctxt):
        """The projects whose switch is set, as get_console_access
        answers for each."""
        return [self._answer(row.target)
                for row in self.db.list_access(PROJECT)]

    @messaging.expected_exceptions(exception.InstanceNotFound,
                                   exception.Invalid)
    def set_console_access(self, ctxt, project_id=None, instance_uuid=None,
                           enabled=None, source='api'):
        """Set a project's or a server's switch (enabled None: unset it,
        back to the next level out); answer as get_console_access.

        The live sessions it turns off end now, on every proxy, and
        their servers' one-time SSH keys are dropped; a notification
        says who changed what, from what to what.
        """
        if (project_id is None) == (instance_uuid is None):
            raise exception.Invalid('Name a project or a server.')
        if instance_uuid is not None:
            project_id = self._registered(instance_uuid).project_id
            level, target = SERVER, instance_uuid
        else:
            level, target = PROJECT, project_id
        new = value_of(enabled)
        old = self.db.set_access(level, target, new, self.clock(),
                                 updated_by=ctxt.get('user_id'))
        if level == SERVER:
            ended, dropped = self.enforce_access(instance_uuids=[target])
        else:
            ended, dropped = self.enforce_access(project_id=target)
        answer = self._answer(project_id, instance_uuid)
        LOG.info('Serial console access of %s %s set from %s to %s by '
                 'user %s (%s): %d sessions ended, %d SSH keys dropped',
                 level, target, old or 'unset', new or 'unset',
                 ctxt.get('user_id'), source, ended, dropped)
        self._announce(ctxt, level, project_id, instance_uuid, old, new,
                       answer, ended, source)
        return answer

    def enforce_access(self, instance_uuids=None, project_id=None):
        """End the live sessions and drop the SSH keys of the instances
        in scope whose access is off; return (sessions ended, keys
        dropped)."""
        off = collections.defaultdict(list)
        for uuid, decision in self._decisions(instance_uuids,
                                              project_id).items():
            if not decision.enabled:
                off[decision.decided_by].append(uuid)
        ended = dropped = 0
        for level, uuids in off.items():
            ids, keys = self.db.end_console_access(uuids)
            if ids:
                self.proxy_api.disconnect_sessions(
                    {}, ids, code=CloseCode.ACCESS_DISABLED,
                    reason=exception.ConsoleAccessDisabled(
                        level=level).message)
            ended += len(ids)
            dropped += keys
        return ended, dropped

    def apply_cloud_access(self):
        """At start: when [console] access_default changed since it was
        last applied, record and announce it, and end what it turns
        off. Returns the sessions ended."""
        new = self._cloud_access()
        old = self.db.set_access(CLOUD, CLOUD_TARGET, new, self.clock())
        if old == new:
            return 0
        ended, dropped = self.enforce_access()
        LOG.info('Serial console access of the cloud ([console] '
                 'access_default) changed from %s to %s: %d sessions '
                 'ended, %d SSH keys dropped', old or 'unrecorded', new,
                 ended, dropped)
        if old is not None:
            self._announce({}, CLOUD, None, None, old, new, {
                'enabled': new == ENABLED, 'decided_by': CLOUD}, ended,
                'config')
        return ended

    @staticmethod
    def _announce(ctxt, level, project_id, instance_uuid, old, new, answer,
                  ended, source):
        notifications.emit(
            notifications.ACCESS_CHANGED, notifications.access_payload(
                level=level, project_id=project_id,
                instance_uuid=instance_uuid, old=old, new=new,
                enabled=answer['enabled'],
                decided_by=answer['decided_by'], sessions_ended=ended,
                changed_by_user_id=ctxt.get('user_id'),
                changed_by_project_id=ctxt.get('project_id'),
                source=source))
