"""Who may start connecting: limits per client address, per token and per
process.

A connection counts against its address from accept, before it sends a
byte: silent sockets cannot pile up under the cap. Peers in [console]
trusted_proxies (a load balancer) are not capped at accept, since every
client comes through them; once a request names its client
(X-Forwarded-For, see forwarded.py) the connection is counted, and capped,
under that client's address instead. Tokens and the process's capacity are
counted once a request asks for a console or a check of one.
"""

import collections
import hashlib
import mmap
import resource

from serialproxy.proxy import forwarded
from serialproxy.proxy.refusals import Refusal

# Descriptors kept back from sessions: listeners, RPC connections, logs.
RESERVED_FILES = 64
# Connections a full process still accepts, to refuse them with 503 when
# every worker is full; well within RESERVED_FILES.
REFUSAL_SLACK = 16


def session_capacity():
    """Sessions this process's descriptor table allows: two sockets each."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1, (soft - RESERVED_FILES) // 2)


class WorkerLoad:
    """Open connections of each worker, in memory the workers share.

    Made in the supervising parent before it forks, so every worker sees
    every other's count and a full worker leaves new connections on the
    shared listening socket to the others.
    """

    def __init__(self, workers):
        self._memory = mmap.mmap(-1, 8 * workers)
        self._counts = memoryview(self._memory).cast('q')
        self.index = 0

    def set(self, count):
        self._counts[self.index] = count

    def everyone_full(self, capacity):
        return all(count >= capacity for count in self._counts)


class Admission:
    """Counts connections in set-up or open against their limits."""

    def __init__(self, max_per_address, max_per_token,
                 capacity=None, load=None,
                 trusted_proxies=forwarded.TrustedProxies()):
        self.max_per_address = max_per_address
        self.trusted_proxies = trusted_proxies
        self.max_per_token = max_per_token
        self.capacity = capacity or session_capacity()
        self.load = load
        self.open_connections = 0
        self.admitted = 0
        self._per_address = collections.Counter()
        self._per_token = collections.Counter()

    def has_room(self, starting):
        """Whether to accept another connection from the listening socket.

        starting: connections accepted but not yet counted as open.
        """
        if self.open_connections + starting < self.capacity:
            return True
        # Full here: accept a few more only when every worker is full, to
        # answer them 503 rather than leave them waiting in the backlog.
        everyone_full = self.load is None or \
            self.load.everyone_full(self.capacity)
        return everyone_full and self.open_connections + starting < \
            self.capacity + REFUSAL_SLACK

    def connection_opened(self):
        self.open_connections += 1
        self._publish()

    def connection_closed(self):
        self.open_connections -= 1
        self._publish()

    def _publish(self):
        if self.load is not None:
            self.load.set(self.open_connections)

    def arrive(self, peer_host):
        """Count a connection just accepted from peer_host; returns the
        address it is counted under (None for a trusted proxy), or raises
        Refusal (429) past the cap."""
        if peer_host in self.trusted_proxies:
            return None
        self._count(peer_host)
        return peer_host

    def recount(self, counted, client_host):
        """Count a connection under client_host, its client once a trusted
        proxy named it, rather than under counted; returns client_host,
        or raises Refusal (429) past the cap (still counted as before)."""
        if counted == client_host:
            return counted
        self._count(client_host)
        self.leave(counted)
        return client_host

    def leave(self, counted):
        """Undo arrive() or recount(); None is ignored."""
        if counted is None:
            return
        self._per_address[counted] -= 1
        if self._per_address[counted] <= 0:
            del self._per_address[counted]

    def _count(self, address):
        if self._per_address[address] >= self.max_per_address:
            raise Refusal(429, 'Too many connections from this address')
        self._per_address[address] += 1

    def admit(self, token):
        """A ticket for the token's and the process's limits, or Refusal
        (429, 503); for a lease and for a check alike."""
        token_key = hashlib.sha256(token.encode()).hexdigest() \
            if token else None
        if token_key and self._per_token[token_key] >= self.max_per_token:
            raise Refusal(429, 'Too many sessions for this token')
        if self.admitted >= self.capacity:
            # Refuse before taking a lease, rather than fail to reach the
            # guest for want of a descriptor.
            raise Refusal(503, 'Console proxy at capacity', kind='capacity')
        self.admitted += 1
        if token_key:
            self._per_token[token_key] += 1
        return token_key or ''

    def discharge(self, ticket):
        """Undo admit(); a ticket of None is ignored."""
        if ticket is None:
            return
        self.admitted -= 1
        if ticket:
            self._per_token[ticket] -= 1
            if self._per_token[ticket] <= 0:
                del self._per_token[ticket]
