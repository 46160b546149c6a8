"""Messaging plumbing shared by every service.

Callers never build targets themselves: each service's rpcapi module asks
here for a client, and each service's command asks here for a server.
"""

import oslo_messaging as messaging

from serialproxy import conf as sp_conf
from serialproxy import rpc_inprocess

CONF = sp_conf.CONF

# Exceptions from these modules are re-raised as themselves on the caller's
# side; anything else arrives as oslo_messaging.RemoteError.
ALLOWED_EXMODS = ['serialproxy.exception']

# serialproxy-all runs every service in one process on this driver:
# serialproxy.rpc_inprocess, messages through memory as over a broker.
IN_PROCESS_TRANSPORT_URL = rpc_inprocess.URL

_TRANSPORT = None

# Reconnection attempts of a call a user waits on (the API's, and the
# proxy's at connect time) before it fails: oslo.messaging would retry
# forever while the broker is down, and the user would wait until it is
# back instead of being told 503 within seconds.
USER_FACING_RETRY = 1


def init(conf, transport_url=None):
    """Create the process's transport; transport_url overrides config."""
    global _TRANSPORT
    if transport_url == IN_PROCESS_TRANSPORT_URL:
        # Built here rather than through the oslo.messaging.drivers entry
        # point, which only exists once the package is (re)installed: a
        # checkout updated in place must still start serialproxy-all.
        _TRANSPORT = rpc_inprocess.get_rpc_transport(
            conf, allowed_remote_exmods=ALLOWED_EXMODS)
        return
    _TRANSPORT = messaging.get_rpc_transport(
        conf, url=transport_url, allowed_remote_exmods=ALLOWED_EXMODS)


def cleanup():
    global _TRANSPORT
    if _TRANSPORT is not None:
        _TRANSPORT.cleanup()
        _TRANSPORT = None


def _transport():
    if _TRANSPORT is None:
        raise RuntimeError('serialproxy.rpc.init() was not called')
    return _TRANSPORT


def get_client(target, version_cap=None, retry=None):
    """An RPC client; retry None sends until the broker takes the
    message, N gives up after N reconnection attempts."""
    return messaging.get_rpc_client(_transport(), target,
                                    version_cap=version_cap,
                                    timeout=CONF.rpc_call_timeout,
                                    retry=retry)


def get_server(target, endpoints):
    return messaging.get_rpc_server(
        _transport(), target, endpoints, executor='threading',
        access_policy=messaging.DefaultRPCAccessPolicy)


# What a caller sees when the remote endpoint predates the method: a
# RemoteError naming the exception, over a broker and in process alike;
# the exceptions themselves from drivers that do not serialize failures
# (oslo.messaging's fake driver).
UNSUPPORTED_METHOD_ERRORS = (messaging.NoSuchMethod,
                             messaging.UnsupportedVersion,
                             messaging.RemoteError)


def is_unsupported_method(exc):
    """Whether exc says the remote service lacks the method called."""
    if isinstance(exc, messaging.RemoteError):
        return exc.exc_type in ('NoSuchMethod', 'UnsupportedVersion')
    return isinstance(exc, UNSUPPORTED_METHOD_ERRORS)
