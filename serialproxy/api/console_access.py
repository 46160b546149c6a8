"""Serial console access switches of projects and servers: our extension.

* ``GET/PUT/DELETE /v2.1/os-serial-console-access/{project_id}``
* ``GET /v2.1/os-serial-console-access``: the projects whose switch is set
* ``GET/PUT/DELETE /v2.1/servers/{server_id}/serial-console/access``

PUT takes exactly ``{"serial_console_access": {"enabled": true|false}}``;
DELETE unsets the level, which then follows the next one out. Every
answer is the access that results and the level that decided it
(``decided_by``), with each level's own value. consoleauth keeps the
switches, ends the sessions a switch turns off and announces the change
(serialproxy/consoleauth/access.py); this controller checks the policy
and asks it.
"""

from oslo_log import log as logging

from serialproxy.api import servers
from serialproxy.api import validation
from serialproxy.api.schemas import console_access as schemas
from serialproxy import exception
from serialproxy import policy
from serialproxy.policies import console_access as access_policies

LOG = logging.getLogger(__name__)

# What the database keeps of a project id (Keystone's are 32 or 64).
MAX_PROJECT_ID = 255


def access_view(answer):
    """consoleauth's answer as the API shows it."""
    view = {'project_id': answer['project_id']}
    if 'server_id' in answer:
        view['server_id'] = answer['server_id']
    view.update(enabled=answer['enabled'], decided_by=answer['decided_by'],
                levels=answer['levels'])
    return view


class ConsoleAccessController:
    def __init__(self, consoleauth_api):
        self.consoleauth_api = consoleauth_api

    def _show(self, req, rule, target, **which):
        """The access of which (project_id= or instance_uuid=), once
        rule allows the caller on target."""
        ctxt = req.context
        policy.authorize(ctxt, rule, target)
        return {'serial_console_access': access_view(
            self.consoleauth_api.get_console_access(ctxt.to_rpc(),
                                                    **which))}

    def _set(self, req, rule, target, enabled, **which):
        """Set (enabled None: unset) which's switch, once rule allows."""
        ctxt = req.context
        policy.authorize(ctxt, rule, target)
        answer = self.consoleauth_api.set_console_access(
            ctxt.to_rpc(), enabled=enabled, **which)
        LOG.info('User %s set serial console access of %s to %s',
                 ctxt.user_id, which, 'unset' if enabled is None
                 else enabled)
        return {'serial_console_access': access_view(answer)}

    # A project's switch: the project id is taken as given, so the switch
    # may be set before the project has servers.

    @staticmethod
    def _project_target(project_id):
        return {'project_id': project_id, 'user_id': None}

    @validation.query_schema(schemas.no_query)
    def index(self, req):
        """GET /os-serial-console-access."""
        ctxt = req.context
        policy.authorize(ctxt, access_policies.PROJECT_INDEX,
                         self._project_target(ctxt.project_id))
        answers = self.consoleauth_api.list_console_access(ctxt.to_rpc())
        return {'projects': [access_view(a) for a in answers]}

    @validation.query_schema(schemas.no_query)
    def show_project(self, req, access_project_id):
        """GET /os-serial-console-access/{project_id}."""
        return self._show(req, access_policies.PROJECT_SHOW,
                          self._project_target(access_project_id),
                          project_id=access_project_id)

    @validation.schema(schemas.update)
    def update_project(self, req, access_project_id, body):
        """PUT /os-serial-console-access/{project_id}."""
        return self._set_project(
            req, access_project_id, body['serial_console_access']['enabled'])

    @validation.query_schema(schemas.no_query)
    def delete_project(self, req, access_project_id):
        """DELETE /os-serial-console-access/{project_id}."""
        return self._set_project(req, access_project_id, None)

    def _set_project(self, req, project_id, enabled):
        if len(project_id) > MAX_PROJECT_ID:
            raise exception.Invalid(
                'Malformed project id: longer than %d characters.'
                % MAX_PROJECT_ID)
        return self._set(req, access_policies.PROJECT_UPDATE,
                         self._project_target(project_id), enabled,
                         project_id=project_id)

    # A server's switch: a server the caller cannot see is 404.

    def _server_target(self, req, server_id):
        return servers.target(servers.lookup(req, self.consoleauth_api,
                                             server_id))

    @validation.query_schema(schemas.no_query)
    def show_server(self, req, server_id):
        """GET /servers/{server_id}/serial-console/access."""
        return self._show(req, access_policies.SERVER_SHOW,
                          self._server_target(req, server_id),
                          instance_uuid=server_id)

    @validation.schema(schemas.update)
    def update_server(self, req, server_id, body):
        """PUT /servers/{server_id}/serial-console/access."""
        return self._set_server(req, server_id,
                                body['serial_console_access']['enabled'])

    @validation.query_schema(schemas.no_query)
    def delete_server(self, req, server_id):
        """DELETE /servers/{server_id}/serial-console/access."""
        return self._set_server(req, server_id, None)

    def _set_server(self, req, server_id, enabled):
        return self._set(req, access_policies.SERVER_UPDATE,
                         self._server_target(req, server_id), enabled,
                         instance_uuid=server_id)
