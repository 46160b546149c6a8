"""The proxies' RPC endpoint: orders from consoleauth to every proxy."""

import oslo_messaging as messaging


class ProxyManager:
    """Versioned endpoint of topic serialproxy-proxy, reached by fanout.

    1.0 - disconnect_session
    """

    target = messaging.Target(version='1.0')

    def __init__(self, proxy, loop):
        self.proxy = proxy
        self.loop = loop

    def disconnect_session(self, ctxt, session_ids, code, reason):
        """Close those of the sessions this proxy holds; ignore the rest."""
        # RPC runs on a worker thread; sessions belong to the event loop.
        self.loop.call_soon_threadsafe(self.proxy.disconnect, session_ids,
                                       code, reason)
