"""Who is calling: the request context of the API and what RPC carries."""

from oslo_context import context


class RequestContext(context.RequestContext):
    """oslo.context's context, plus the dict other services receive."""

    def to_rpc(self):
        """The context dict passed as ctxt to every RPC call.

        Small and JSON-able on purpose: consoleauth records who asked for
        a console from it; nothing else crosses the wire (no tokens, no
        service catalog).
        """
        return {'request_id': self.request_id,
                'user_id': self.user_id,
                'project_id': self.project_id,
                'roles': list(self.roles),
                'is_admin': bool(self.is_admin)}
