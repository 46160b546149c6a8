"""Live serial console sessions of a server: our extension to Nova's API.

Nova cannot say who holds a serial console, nor take it away; here a
project sees its console sessions and an operator ends them. The tokens
the ended sessions were opened with are revoked too, so that the ended
page cannot simply reconnect (revoke_tokens=false keeps them;
revoke_tokens=true revokes every console token of the server, so nobody
reconnects with a URL handed out earlier). consoleauth owns the sessions
(its leases); this controller only asks it.
"""

import datetime

from oslo_log import log as logging
from oslo_utils import strutils

from serialproxy.api import servers
from serialproxy.api import validation
from serialproxy.api import wsgi
from serialproxy.api.schemas import console_sessions as schemas
from serialproxy import exception
from serialproxy import notifications
from serialproxy import policy
from serialproxy.policies import console_sessions as cs_policies
from serialproxy import rpc

LOG = logging.getLogger(__name__)

_FIELDS = ('id', 'instance_uuid', 'index', 'user_id', 'project_id',
           'remote_address', 'proxy_host', 'bytes_to_guest',
           'bytes_to_client', 'transport', 'mode')


def _timestamp(epoch):
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def session_view(session, ctxt=None):
    """A session as ctxt may see it: a caller who is not an admin sees
    no proxy host (the deployment's insides) and no other user's
    address (null in their place); without ctxt, everything."""
    view = {field: session.get(field) for field in _FIELDS}
    # Sessions of a consoleauth from before spectators are all writers.
    view['mode'] = view['mode'] or 'write'
    view['started_at'] = _timestamp(session.get('started_at'))
    if ctxt is not None and not ctxt.is_admin:
        view['proxy_host'] = None
        if ctxt.user_id is None or view['user_id'] != ctxt.user_id:
            view['remote_address'] = None
    return view


def _unavailable():
    return exception.FeatureUnavailable(service='consoleauth',
                                        feature='console sessions')


class ConsoleSessionsController:
    def __init__(self, consoleauth_api):
        self.consoleauth_api = consoleauth_api

    def _call(self, method, *args, **kwargs):
        """Call consoleauth; one without sessions support means 501."""
        fn = getattr(self.consoleauth_api, method, None)
        if fn is None:
            raise _unavailable()
        try:
            return fn(*args, **kwargs)
        except rpc.UNSUPPORTED_METHOD_ERRORS as exc:
            if rpc.is_unsupported_method(exc):
                raise _unavailable()
            raise

    @validation.query_schema(schemas.index_query)
    def index(self, req, server_id):
        """GET /servers/{id}/serial-console/sessions."""
        instance = servers.lookup(req, self.consoleauth_api, server_id)
        policy.authorize(req.context, cs_policies.PREFIX % 'index',
                         servers.target(instance))
        sessions = self._call('list_sessions', req.context.to_rpc(),
                              instance_uuid=server_id)
        return {'sessions': [session_view(s, req.context)
                             for s in sessions]}

    def _disconnect(self, req, server_id, session_id):
        instance = servers.lookup(req, self.consoleauth_api, server_id)
        ctxt = req.context
        policy.authorize(ctxt, cs_policies.PREFIX % 'delete',
                         servers.target(instance))
        # Absent: the ended sessions' tokens; true: all of the server's;
        # false: none.
        asked = req.GET.get('revoke_tokens')
        revoke = asked is not None and strutils.bool_from_string(
            asked, strict=True)
        keep = asked is not None and not revoke
        ended = self._call('force_disconnect', ctxt.to_rpc(), server_id,
                           session_id=session_id, revoke_tokens=revoke,
                           revoke_session_tokens=not keep)
        revoked = ('' if keep else ', tokens revoked' if revoke else
                   ', its token revoked')
        # consoleauth answers with the ids of the sessions it ended.
        for ended_id in ended:
            notifications.emit(
                notifications.FORCE_DISCONNECTED, notifications.payload(
                    instance_uuid=server_id, session_id=ended_id,
                    user_id=ctxt.user_id, project_id=ctxt.project_id,
                    remote_address=req.remote_addr,
                    reason='force-disconnected by user %s%s' % (
                        ctxt.user_id, revoked)))
        LOG.info('User %s force-disconnected %d console sessions of '
                 'server %s%s', ctxt.user_id, len(ended), server_id,
                 revoked)

    @wsgi.response(204)
    @validation.query_schema(schemas.delete_query)
    def delete_all(self, req, server_id):
        """DELETE /servers/{id}/serial-console/sessions."""
        self._disconnect(req, server_id, None)

    @wsgi.response(204)
    @validation.query_schema(schemas.delete_query)
    def delete(self, req, server_id, session_id):
        """DELETE /servers/{id}/serial-console/sessions/{session_id}."""
        self._disconnect(req, server_id, session_id)
