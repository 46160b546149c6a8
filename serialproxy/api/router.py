"""The one router of the REST API: routes, microversions, error mapping.

Every request that passed authentication ends here. The router picks the
controller method for (path, HTTP method, microversion), hands it the
parsed body, and turns every refusal into a Nova fault body. A 500 means
a bug of ours; bad input never produces one.
"""

import re

import oslo_messaging as messaging
from oslo_log import log as logging
import webob
import webob.dec

from serialproxy.api import api_version
from serialproxy.api import console_access
from serialproxy.api import console_auth_tokens
from serialproxy.api import console_output
from serialproxy.api import console_sessions
from serialproxy.api import faults
from serialproxy.api import remote_consoles
from serialproxy.api import serial_console_keys
from serialproxy.api import serial_console_output
from serialproxy.api import servers
from serialproxy.api import ssh_keys
from serialproxy.api import versions
from serialproxy.api import wsgi
from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import exception
from serialproxy import rpc

LOG = logging.getLogger(__name__)

_SEGMENT = r'[^/]+'
# Nova accepts an optional project id after the version (old catalogs
# carry it); it must then be the caller's own.
_V21 = r'^/v2\.1(?:/(?P<project_id>%s))??' % _SEGMENT


class Route:
    def __init__(self, pattern, methods):
        self.regex = re.compile(pattern)
        # HTTP method -> candidate controller methods, by microversion.
        self.methods = {m: fns if isinstance(fns, list) else [fns]
                        for m, fns in methods.items()}


class APIRouter:
    """The REST API behind the auth filters (see api-paste.ini)."""

    def __init__(self, consoleauth_api=None, compute_api=None):
        if consoleauth_api is None:
            consoleauth_api = consoleauth_rpcapi.ConsoleAuthAPI(
                retry=rpc.USER_FACING_RETRY)
        if compute_api is None:
            compute_api = compute_rpcapi.ComputeAPI(
                retry=rpc.USER_FACING_RETRY)
        server_list = servers.ServersController(consoleauth_api)
        consoles = remote_consoles.RemoteConsolesController(
            consoleauth_api, compute_api)
        output = console_output.ConsoleOutputController(
            consoleauth_api, compute_api)
        history = serial_console_output.SerialConsoleOutputController(
            consoleauth_api, compute_api)
        tokens = console_auth_tokens.ConsoleAuthTokensController(
            consoleauth_api)
        sessions = console_sessions.ConsoleSessionsController(
            consoleauth_api)
        keys = serial_console_keys.SerialConsoleKeysController(
            consoleauth_api, compute_api)
        one_time_keys = ssh_keys.SSHKeysController(consoleauth_api)
        access = console_access.ConsoleAccessController(consoleauth_api)
        self.actions = self._collect_actions(consoles, output)
        server = _V21 + r'/servers/(?P<server_id>%s)' % _SEGMENT
        self.routes = [
            Route(_V21 + r'/servers$', {'GET': server_list.index}),
            Route(_V21 + r'/servers/detail$', {'GET': server_list.detail}),
            Route(server + r'$', {'GET': server_list.show}),
            Route(server + r'/action$', {'POST': self.server_action}),
            Route(server + r'/remote-consoles$', {'POST': consoles.create}),
            Route(server + r'/serial-console/sessions$',
                  {'GET': sessions.index, 'DELETE': sessions.delete_all}),
            Route(server + r'/serial-console/sessions/(?P<session_id>%s)$'
                  % _SEGMENT, {'DELETE': sessions.delete}),
            Route(server + r'/serial-console/output$',
                  {'GET': history.show}),
            Route(server + r'/serial-console/sysrq$',
                  {'POST': keys.send_sysrq}),
            Route(server + r'/serial-console/nmi$',
                  {'POST': keys.inject_nmi}),
            Route(server + r'/serial-console/ssh-keys$',
                  {'POST': one_time_keys.create}),
            Route(server + r'/serial-console/access$',
                  {'GET': access.show_server, 'PUT': access.update_server,
                   'DELETE': access.delete_server}),
            Route(_V21 + r'/os-serial-console-access$',
                  {'GET': access.index}),
            Route(_V21 + r'/os-serial-console-access/'
                  r'(?P<access_project_id>%s)$' % _SEGMENT,
                  {'GET': access.show_project,
                   'PUT': access.update_project,
                   'DELETE': access.delete_project}),
            Route(_V21 + r'/os-console-auth-tokens/(?P<token>%s)$'
                  % _SEGMENT, {'GET': [tokens.show, tokens.show_v21]}),
            # The serial-ports blueprint's legacy v2 call.
            Route(r'^/v2/(?P<project_id>%s)/servers/(?P<server_id>%s)'
                  r'/get-serial-console$' % (_SEGMENT, _SEGMENT),
                  {'POST': consoles.blueprint_get_serial_console}),
            # Last, so that /v2.1/servers is never read as a project id.
            Route(r'^/v2\.1/?$', {'GET': self.version}),
        ]

    @classmethod
    def factory(cls, global_conf, **local_conf):
        """paste.app_factory of api-paste.ini."""
        return cls()

    @staticmethod
    def _collect_actions(*controllers):
        """Server actions by name: {name: [controller methods]}."""
        actions = {}
        for controller in controllers:
            for name in dir(controller):
                fn = getattr(controller, name)
                for action in getattr(fn, 'wsgi_actions', ()):
                    actions.setdefault(action, []).append(fn)
        return actions

    def version(self, req):
        return versions.version(req.application_url)

    def server_action(self, req, server_id, body):
        """POST /servers/{id}/action: the body's one key names the action."""
        if not isinstance(body, dict) or len(body) != 1:
            raise exception.Invalid(
                'Malformed request body: a server action is an object '
                'with one key, the action name.')
        name = next(iter(body))
        candidates = self.actions.get(name)
        if not candidates:
            raise exception.ServerActionNotFound(action=name[:64])
        fn = self._pick(candidates, req.api_version)
        return fn(req, server_id=server_id, body=body)

    @staticmethod
    def _pick(candidates, version):
        for fn in candidates:
            if api_version.method_matches(fn, version):
                return fn
        # As Nova: the method does not exist at this version.
        raise exception.NotFound('The resource could not be found.')

    @webob.dec.wsgify(RequestClass=wsgi.Request)
    def __call__(self, req):
        refused = faults.undecodable_request(req.environ)
        if refused is not None:
            return refused
        version = None
        try:
            version = api_version.negotiate(req.headers)
            req.api_version = version
            resp = self._dispatch(req)
        except exception.SerialProxyException as exc:
            resp = faults.from_exception(exc, admin=self._is_admin(req))
        except messaging.MessagingTimeout:
            resp = faults.fault(503, 'A backend service did not answer in '
                                     'time; try again.')
        except messaging.MessageDeliveryFailure:
            # The broker is down: its calls give up rather than wait.
            resp = faults.fault(503, 'The message broker of the console '
                                     'service cannot be reached; try '
                                     'again later.')
        except Exception:
            LOG.exception('Unexpected error serving %s %s', req.method,
                          wsgi.redact_path(req.path_info))
            resp = faults.fault(500, 'Unexpected API error. The server '
                                     'log has details.')
        if version is not None:
            resp.headers.update(api_version.response_headers(version))
        return resp

    @staticmethod
    def _is_admin(req):
        """Whether the caller is an admin; nobody is, before auth."""
        ctxt = req.environ.get(wsgi.CONTEXT_KEY)
        return bool(ctxt is not None and ctxt.is_admin)

    def _dispatch(self, req):
        for route in self.routes:
            match = route.regex.match(req.path_info)
            if not match:
                continue
            candidates = route.methods.get(req.method)
            if candidates is None:
                resp = faults.fault(405, 'Method %s not allowed here.'
                                    % req.method[:16])
                resp.allow = sorted(route.methods)
                return resp
            kwargs = match.groupdict()
            self._check_project(req, kwargs.pop('project_id', None))
            fn = self._pick(candidates, req.api_version)
            if req.method in ('POST', 'PUT'):
                kwargs['body'] = req.json_body_or_none()
            result = fn(req, **kwargs)
            status = getattr(fn, 'status_code', 200)
            if result is None:
                return webob.Response(status=status)
            return webob.Response(json_body=result, charset='utf-8',
                                  status=status)
        return faults.fault(404, 'The resource could not be found.')

    @staticmethod
    def _check_project(req, project_id):
        if project_id is not None and project_id != req.context.project_id:
            raise exception.Invalid(
                "Malformed request URL: URL's project_id '%s' doesn't "
                "match Context's project_id '%s'"
                % (project_id[:64], req.context.project_id))
