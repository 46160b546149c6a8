"""The proxy's admin listener: metrics and health, off the public port.

Operators scrape and probe it from inside the cloud; browsers never see
it, so it carries no console and checks no token.
"""

import asyncio

from oslo_log import log as logging

from serialproxy.proxy import handshake
from serialproxy.proxy import metrics

LOG = logging.getLogger(__name__)
# Seconds a client has to send its request; the proxy passes its
# [console] handshake_timeout.
READ_TIMEOUT = 10


class AdminConnection(asyncio.Protocol):
    def __init__(self, proxy, read_timeout=READ_TIMEOUT):
        self.proxy = proxy
        self.read_timeout = read_timeout
        self.received = b''
        self._timer = None

    def connection_made(self, transport):
        self.transport = transport
        # A client that never finishes its request would hold a socket.
        self._timer = asyncio.get_running_loop().call_later(
            self.read_timeout, self._timed_out)

    def connection_lost(self, exc):
        self._timer.cancel()

    def _timed_out(self):
        self._answer(handshake.response(408, 'Request not received in '
                                             'time'))

    def data_received(self, data):
        self.received += data
        try:
            parsed = handshake.parse_request(self.received)
        except handshake.Refusal as refusal:
            self._answer(handshake.response(refusal.status, refusal.reason))
            return
        if parsed is not None:
            self._answer(self._route(parsed[0]))

    def _route(self, request):
        if request.method != 'GET':
            return handshake.response(405, 'Only GET is served here')
        if request.path == '/metrics':
            # With worker processes this sums every worker's files, so any
            # worker that accepted the scrape answers for all of them.
            # This worker's latest bytes; the others' are a second old.
            self.proxy.flush_metrics()
            try:
                body, content_type = metrics.exposition()
            except Exception:
                LOG.exception('Cannot render the metrics')
                return handshake.response(500, 'Cannot render the metrics')
            return handshake.response(
                200, headers=[('Content-Type', content_type)], body=body)
        if request.path == '/healthcheck':
            if self.proxy.serving:
                return handshake.response(200, 'OK')
            return handshake.response(503, 'Not serving')
        return handshake.response(404, 'Not found')

    def _answer(self, raw):
        self._timer.cancel()
        self.transport.write(raw)
        self.transport.close()


async def start(proxy, host, port, read_timeout=READ_TIMEOUT):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: AdminConnection(proxy, read_timeout), host, port,
        reuse_address=True)
    LOG.info('Proxy admin listener (metrics, healthcheck) on %s:%s', host,
             port)
    return server


async def start_on_socket(proxy, sock, read_timeout=READ_TIMEOUT):
    """Serve an admin socket already listening, e.g. one a worker inherits.

    Worker processes share the parent's socket: whichever accepts a
    connection answers it.
    """
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: AdminConnection(proxy, read_timeout), sock=sock)
    LOG.info('Proxy admin listener (metrics, healthcheck) on %s',
             sock.getsockname())
    return server
