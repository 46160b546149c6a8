"""Who the caller is: the request context built behind each auth strategy.

keystone: keystonemiddleware's auth_token validates the token and sets
the X-User-Id / X-Project-Id / X-Roles headers; KeystoneContext turns
them into a RequestContext. noauth (development only): the caller says
who they are, as Nova's noauth2 lets them.
"""

import webob
import webob.dec

from serialproxy.api import faults
from serialproxy.api import wsgi
from serialproxy import context
from serialproxy import policy


class _Filter:
    def __init__(self, application):
        self.application = application

    @classmethod
    def factory(cls, global_conf, **local_conf):
        return cls

    def _attach(self, req, ctxt):
        ctxt.is_admin = policy.check_is_admin(ctxt)
        req.environ[wsgi.CONTEXT_KEY] = ctxt


class KeystoneContext(_Filter):
    """Builds the context from auth_token's headers; 401 without them."""

    @webob.dec.wsgify
    def __call__(self, req):
        if req.headers.get('X-Identity-Status') != 'Confirmed' or \
                not req.headers.get('X-User-Id'):
            # auth_token lets nothing unauthenticated through unless
            # delay_auth_decision is set; then this is where it stops.
            return faults.fault(401, 'Authentication required.')
        ctxt = context.RequestContext.from_environ(req.environ)
        self._attach(req, ctxt)
        return self.application


class NoAuthContext(_Filter):
    """Development only: X-Auth-Token "user_id:project_id" says who calls.

    No token means user "admin" of project "admin". As in Nova's noauth2,
    user "admin" has the admin role; everyone gets member and reader in the
    project they name. Nothing is verified: never expose this.
    """

    @webob.dec.wsgify
    def __call__(self, req):
        token = req.headers.get('X-Auth-Token', 'admin:admin')
        user_id, _sep, project_id = token.partition(':')
        user_id = user_id or 'admin'
        project_id = project_id or user_id
        roles = ['member', 'reader']
        if user_id == 'admin':
            roles.insert(0, 'admin')
        ctxt = context.RequestContext(
            user_id=user_id, project_id=project_id, roles=roles,
            request_id=req.environ.get('openstack.request_id'))
        self._attach(req, ctxt)
        return self.application
