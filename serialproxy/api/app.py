"""The API's WSGI application: routing, body parsing, error mapping."""

import json
import re

import oslo_messaging as messaging
from oslo_log import log as logging
import webob
import webob.dec

from serialproxy.api import faults
from serialproxy.api import remote_consoles
from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import exception

LOG = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

_UUIDISH = r'[^/]+'


class APIRouter:
    """Maps (method, path) to controller actions; everything else is 404."""

    def __init__(self, consoleauth_api=None, compute_api=None):
        if consoleauth_api is None:
            consoleauth_api = consoleauth_rpcapi.ConsoleAuthAPI()
        if compute_api is None:
            compute_api = compute_rpcapi.ComputeAPI()
        consoles = remote_consoles.RemoteConsolesController(
            consoleauth_api, compute_api)
        self.routes = [
            (re.compile(r'^/v2\.1/servers/(?P<server_id>%s)/remote-consoles$'
                        % _UUIDISH), {'POST': consoles.create}),
            (re.compile(r'^/?$'), {'GET': self.versions}),
        ]

    def versions(self, ctxt):
        return {'versions': [{'id': 'v2.1', 'status': 'CURRENT',
                              'version': '2.6', 'min_version': '2.1'}]}

    @webob.dec.wsgify
    def __call__(self, req):
        try:
            return self._dispatch(req)
        except exception.SerialProxyException as exc:
            return faults.from_exception(exc)
        except messaging.MessagingTimeout:
            return faults.fault(503, 'A backend service did not answer in '
                                     'time; try again.')
        except Exception:
            LOG.exception('Unexpected error serving %s %s', req.method,
                          req.path)
            return faults.fault(500, 'Unexpected API error. The server log '
                                     'has details.')

    def _dispatch(self, req):
        for pattern, methods in self.routes:
            match = pattern.match(req.path_info)
            if not match:
                continue
            action = methods.get(req.method)
            if action is None:
                resp = faults.fault(405, 'Method %s not allowed here.'
                                    % req.method)
                resp.allow = sorted(methods)
                return resp
            kwargs = match.groupdict()
            if req.method in ('POST', 'PUT'):
                kwargs['body'] = self._json_body(req)
            result = action(req.environ.get('serialproxy.context', {}),
                            **kwargs)
            return webob.Response(json_body=result, charset='utf-8',
                                  status=200)
        return faults.fault(404, 'The resource could not be found.')

    @staticmethod
    def _json_body(req):
        if req.content_length is not None and \
                req.content_length > MAX_BODY_BYTES:
            raise exception.Invalid('Request body is larger than %d bytes.'
                                    % MAX_BODY_BYTES)
        raw = req.body_file.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise exception.Invalid('Request body is larger than %d bytes.'
                                    % MAX_BODY_BYTES)
        try:
            return json.loads(raw or b'null')
        except ValueError:
            raise exception.Invalid('Request body is not valid JSON.')
