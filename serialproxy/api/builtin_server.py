"""The built-in HTTP server of serialproxy-api and serialproxy-all.

A socket costs a thread only once its client has sent a whole request
head: until then it waits in the listener's selector, and a client that
does not finish its head within client_timeout is dropped. A bounded pool
of worker threads (futurist) then runs the WSGI application; every later
read or write on the socket gives up after client_timeout too, and
requests beyond the pool's backlog get 503 at once. So idle or slow
sockets can neither grow the thread count nor starve other clients.

Production hosts the same application under uwsgi (serialproxy-api-wsgi);
this server is for serialproxy-all, demos and small sites.
"""

import collections
import io
import re
import selectors
import socket
import threading
import time
import wsgiref.simple_server

import futurist
from futurist import rejection
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# The end of a request head; wsgiref accepts bare LF line ends too.
HEAD_END = re.compile(rb'\r?\n\r?\n')
# Longer heads are handed on as they are; wsgiref answers 414 or 431.
MAX_HEAD_BYTES = 64 * 1024 + 1024
# Complete requests that may wait for a worker, per worker.
BACKLOG_PER_THREAD = 4
# Connections still sending their head; beyond this the oldest is dropped.
MAX_WAITING = 4096
BUSY_RESPONSE = (b'HTTP/1.0 503 Service Unavailable\r\n'
                 b'Content-Type: text/plain\r\nContent-Length: 22\r\n'
                 b'Connection: close\r\n\r\nServer busy, try again')


class _HeadThenSocket(io.RawIOBase):
    """The bytes the listener already read, then the socket's."""

    def __init__(self, head, sock):
        self._head = head
        self._sock = sock

    def readable(self):
        return True

    def readinto(self, buffer):
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        return self._sock.recv_into(buffer)


class _ServerHandler(wsgiref.simple_server.ServerHandler):
    def log_exception(self, exc_info):
        # A client too slow to send its body is not a server fault.
        if isinstance(exc_info[1], TimeoutError):
            LOG.warning('API client %s: request body timed out',
                        self.request_handler.address_string())
        else:
            LOG.error('API request failed', exc_info=exc_info)


class RequestHandler(wsgiref.simple_server.WSGIRequestHandler):
    """wsgiref's handler, reading first what the listener buffered."""

    def __init__(self, request, client_address, server, head=b''):
        self.head = head
        super().__init__(request, client_address, server)

    def setup(self):
        super().setup()
        # Closed, or the socket stays open as long as this file does.
        self.rfile.close()
        self.rfile = io.BufferedReader(
            _HeadThenSocket(self.head, self.connection))

    def handle(self):
        # wsgiref's, with errors going to the log rather than stderr.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ''
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(self.rfile, self.wfile, self.get_stderr(),
                                 self.get_environ(), multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())


class _Waiting:
    __slots__ = ('address', 'head', 'deadline')

    def __init__(self, address, deadline):
        self.address = address
        self.head = b''
        self.deadline = deadline


class PooledWSGIServer(wsgiref.simple_server.WSGIServer):
    """wsgiref's server with a selector in front and a pool behind."""

    allow_reuse_address = True

    def __init__(self, server_address, handler_class, threads,
                 client_timeout):
        super().__init__(server_address, handler_class)
        self.client_timeout = client_timeout
        self._pool = futurist.ThreadPoolExecutor(
            max_workers=threads,
            check_and_reject=rejection.reject_when_reached(
                threads * BACKLOG_PER_THREAD))
        self._selector = selectors.DefaultSelector()
        # Socket -> _Waiting, oldest first, so oldest deadline first.
        self._waiting = collections.OrderedDict()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._serving = False
        self._stopped = threading.Event()
        self._in_flight = 0
        self._changed = threading.Condition()

    def serve_forever(self, poll_interval=None):
        self._serving = True
        self.socket.setblocking(False)
        self._selector.register(self.socket, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping:
                for key, _ in self._selector.select(self._next_expiry()):
                    if key.fileobj is self.socket:
                        self._accept()
                    elif key.fileobj is not self._wake_r:
                        self._read_head(key.fileobj)
                self._drop_expired()
        finally:
            for sock in list(self._waiting):
                self._drop(sock)
            self._selector.close()
            self._stopped.set()

    def shutdown(self):
        """Stop accepting and drop sockets that sent no whole request."""
        self._stopping = True
        self._wake_w.send(b'x')
        if self._serving:
            self._stopped.wait()

    def server_close(self):
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()
        # Workers still busy finish on their own; their sockets time out.
        self._pool.shutdown(wait=False)

    def _next_expiry(self):
        if not self._waiting:
            return None
        oldest = next(iter(self._waiting.values()))
        return max(0, oldest.deadline - time.monotonic())

    def _accept(self):
        try:
            sock, address = self.socket.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            # Out of file descriptors, most likely: make room.
            LOG.warning('API server cannot accept a connection: %s', exc)
            if self._waiting:
                self._drop(next(iter(self._waiting)))
            else:
                time.sleep(0.1)
            return
        if len(self._waiting) >= MAX_WAITING:
            self._drop(next(iter(self._waiting)))
        sock.setblocking(False)
        self._waiting[sock] = _Waiting(
            address, time.monotonic() + self.client_timeout)
        self._selector.register(sock, selectors.EVENT_READ)

    def _read_head(self, sock):
        waiting = self._waiting[sock]
        try:
            data = sock.recv(MAX_HEAD_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b''
        if not data:
            self._drop(sock)
            return
        waiting.head += data
        if HEAD_END.search(waiting.head) or \
                len(waiting.head) > MAX_HEAD_BYTES:
            self._selector.unregister(sock)
            del self._waiting[sock]
            self._dispatch(sock, waiting)

    def _drop_expired(self):
        now = time.monotonic()
        while self._waiting:
            sock, waiting = next(iter(self._waiting.items()))
            if waiting.deadline > now:
                return
            self._drop(sock)

    def _drop(self, sock):
        self._selector.unregister(sock)
        del self._waiting[sock]
        sock.close()

    def _dispatch(self, sock, waiting):
        sock.settimeout(self.client_timeout)
        with self._changed:
            self._in_flight += 1
        try:
            self._pool.submit(self._handle, sock, waiting.address,
                              waiting.head)
        except futurist.RejectedSubmission:
            self._finished()
            LOG.warning('API server busy: every worker and the backlog '
                        'are taken; answering 503')
            try:
                sock.setblocking(False)
                sock.send(BUSY_RESPONSE)
            except OSError:
                pass
            sock.close()

    def _handle(self, sock, address, head):
        try:
            self.RequestHandlerClass(sock, address, self, head)
        except Exception:
            self.handle_error(sock, address)
        finally:
            self.shutdown_request(sock)
            self._finished()

    def _finished(self):
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def wait_idle(self, timeout):
        """Wait up to timeout for requests in flight; True if none left."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight == 0,
                                          timeout)

    def handle_error(self, request, client_address):
        LOG.exception('API request from %s failed', client_address[0])


def make_server(host, port, app, handler_class, threads, client_timeout):
    """A PooledWSGIServer serving app, bound and listening."""
    server = PooledWSGIServer((host, port), handler_class, threads,
                              client_timeout)
    server.set_app(app)
    return server
