"""GET /os-console-auth-tokens/{token}: what a console token opens.

For operators debugging a console. The token arrives in the path, so it
must not reach a log line or an error body: see the access log filter in
serialproxy.service and the messages below, which never include it.
"""

from serialproxy.api import api_version
from serialproxy import exception
from serialproxy import policy
from serialproxy.policies import console_auth_tokens as cat_policies


class ConsoleAuthTokensController:
    def __init__(self, consoleauth_api):
        self.consoleauth_api = consoleauth_api

    def _show(self, req, token, rdp_only):
        ctxt = req.context
        policy.authorize(ctxt, cat_policies.NAME,
                         {'project_id': ctxt.project_id})
        try:
            console = self.consoleauth_api.check_token(ctxt.to_rpc(), token)
        except exception.InvalidToken:
            raise exception.NotFound('Token not found.')
        if rdp_only and console['console_type'] != 'rdp-html5':
            # Nova before 2.31 describes RDP tokens only.
            raise exception.Unauthorized(
                'The requested console type details are not accessible.')
        return {'console': {'instance_uuid': console['instance_uuid'],
                            'host': console['host'],
                            'port': console['port'],
                            'internal_access_path': None}}

    @api_version.versioned('2.1', '2.30')
    def show_v21(self, req, token):
        return self._show(req, token, rdp_only=True)

    @api_version.versioned('2.31')
    def show(self, req, token):
        return self._show(req, token, rdp_only=False)
