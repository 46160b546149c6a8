"""Client side of the proxies' RPC API: casts to every proxy at once."""

import oslo_messaging as messaging

from serialproxy import rpc

TOPIC = 'serialproxy-proxy'

# Close codes the page knows (RFC 6455 leaves 4000-4999 to applications).
CLOSE_OPERATOR_DISCONNECT = 4001
CLOSE_TOKEN_EXPIRED = 4002
CLOSE_IDLE_TIMEOUT = 4003
CLOSE_LEASE_LOST = 4004


class ProxyAPI:
    """Fanout casts to topic serialproxy-proxy.

    1.0 - disconnect_session
    """

    VERSION_CAP = '1.0'

    def __init__(self):
        target = messaging.Target(topic=TOPIC, version='1.0')
        self.client = rpc.get_client(target, version_cap=self.VERSION_CAP)

    def disconnect_sessions(self, ctxt, session_ids,
                            code=CLOSE_OPERATOR_DISCONNECT,
                            reason='Disconnected by an operator'):
        """Whichever proxy holds one of these sessions closes it."""
        self.client.prepare(fanout=True).cast(
            ctxt, 'disconnect_session', session_ids=session_ids, code=code,
            reason=reason)
