"""Client side of the proxies' RPC API: casts to every proxy at once."""

import oslo_messaging as messaging

from serialproxy.proxy import close_codes
from serialproxy.proxy.close_codes import CloseCode
from serialproxy import rpc

TOPIC = 'serialproxy-proxy'


class ProxyAPI:
    """Fanout casts to topic serialproxy-proxy.

    1.0 - disconnect_session
    """

    VERSION_CAP = '1.0'

    def __init__(self):
        target = messaging.Target(topic=TOPIC, version='1.0')
        self.client = rpc.get_client(target, version_cap=self.VERSION_CAP)

    def disconnect_sessions(self, ctxt, session_ids,
                            code=CloseCode.OPERATOR_DISCONNECT, reason=None):
        """Whichever proxy holds one of these sessions closes it, with
        code and reason (close_codes' text for code when None)."""
        if reason is None:
            reason = close_codes.default_reason(code)
        self.client.prepare(fanout=True).cast(
            ctxt, 'disconnect_session', session_ids=session_ids,
            code=int(code), reason=reason)
