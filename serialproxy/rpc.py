"""Messaging plumbing shared by every service.

Callers never build targets themselves: each service's rpcapi module asks
here for a client, and each service's command asks here for a server.
"""

from oslo_log import log as logging
import oslo_messaging as messaging
from oslo_messaging import opts as messaging_opts

from serialproxy import conf as sp_conf
from serialproxy import exception
from serialproxy import rpc_inprocess

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

# Exceptions from these modules are re-raised as themselves on the caller's
# side; anything else arrives as oslo_messaging.RemoteError.
ALLOWED_EXMODS = ['serialproxy.exception']

# serialproxy-all runs every service in one process on this driver:
# serialproxy.rpc_inprocess, messages through memory as over a broker.
IN_PROCESS_TRANSPORT_URL = rpc_inprocess.URL

_TRANSPORT = None
_TRANSPORT_SCHEME = None

# Reconnection attempts of a call a user waits on (the API's, and the
# proxy's at connect time) before it fails: oslo.messaging would retry
# forever while the broker is down, and the user would wait until it is
# back instead of being told 503 within seconds.
USER_FACING_RETRY = 1


# Pool sizes that agree. Threads answering RPC (oslo.messaging's
# executor_thread_pool_size) and threads making calls (the proxy's
# [console] rpc_workers) each take a broker connection from the pool
# while they send, and consoleauth's threads each a database connection:
# the connection pool holds both kinds of thread at once, so none waits
# for a connection or warns that the pool overflowed. Batched lease calls
# need far fewer threads than one call per session did.
RPC_SERVER_THREADS = 16
RPC_CONNECTIONS = 48


def set_pool_defaults(conf):
    """serialproxy's defaults for oslo.messaging's pools; an operator's
    settings still win. (The sample config lists oslo.messaging's own.)"""
    for group, opts in messaging_opts.list_opts():
        conf.register_opts(opts, group=group)
    conf.set_default('executor_thread_pool_size', RPC_SERVER_THREADS)
    conf.set_default('rpc_conn_pool_size', RPC_CONNECTIONS,
                     group='oslo_messaging_rabbit')


def check_pool_size(conf, calling_threads):
    """Warn at start when a process's threads that send at once outnumber
    its broker connections: under load they would overflow the pool."""
    if _TRANSPORT is None or _TRANSPORT_SCHEME != 'rabbit':
        return
    pool = conf.oslo_messaging_rabbit.rpc_conn_pool_size
    threads = conf.executor_thread_pool_size + calling_threads
    if threads > pool:
        LOG.warning('%d threads may send RPC at once (executor_thread_pool_'
                    'size %d and %d more) but [oslo_messaging_rabbit] '
                    'rpc_conn_pool_size is %d: raise it to %d', threads,
                    conf.executor_thread_pool_size, calling_threads, pool,
                    threads)


def init(conf, transport_url=None):
    """Create the process's transport; transport_url overrides config."""
    global _TRANSPORT, _TRANSPORT_SCHEME
    set_pool_defaults(conf)
    _TRANSPORT_SCHEME = messaging.TransportURL.parse(
        conf, transport_url).transport
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


def summary(exc):
    """What an RPC failure says, for a log line: its first line.

    An exception raised in the called service arrives with that
    service's traceback after its message (oslo.messaging appends it);
    the service logged it already, and a caller that only warns must not
    print it again as if it were its own.
    """
    text = str(exc)
    return text.split('\n', 1)[0] if text else type(exc).__name__


def is_unsupported_method(exc):
    """Whether exc says the remote service lacks the method called."""
    if isinstance(exc, messaging.RemoteError):
        return exc.exc_type in ('NoSuchMethod', 'UnsupportedVersion')
    return isinstance(exc, UNSUPPORTED_METHOD_ERRORS)


# Answers of batch calls: one entry per request, each a value or the
# serialproxy.exception its request alone failed with, by name and keyword
# arguments as whole-call failures travel.

def batch_value(value):
    return {'value': value}


def batch_error(exc):
    return {'error': type(exc).__name__, 'kwargs': exc.kwargs}


def batch_results(answers):
    """Each answer of a batch call as its value or its exception."""
    return [batch_result(answer) for answer in answers]


def batch_result(answer):
    """The value of one batch answer, or the exception to raise for it."""
    if 'error' not in answer:
        return answer['value']
    cls = getattr(exception, answer['error'], None)
    if not (isinstance(cls, type) and
            issubclass(cls, exception.SerialProxyException)):
        return messaging.RemoteError(answer['error'], 'in a batch answer')
    return cls(**answer.get('kwargs', {}))
