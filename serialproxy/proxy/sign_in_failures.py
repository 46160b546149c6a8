"""Failed SSH sign-ins per client address, shared by a proxy's workers.

The workers share one listening port and the kernel spreads connections
over them: a limit each kept alone would let an address fail `workers`
times as often. So the count lives in memory the supervising parent maps
before it forks, as admission.WorkerLoad does. Not in consoleauth's
database: a stranger's failures must not cost a database write each, and
one host's workers are what share the port.

Per address the table keeps the times of its last `limit` failures (a
ring, the oldest overwritten): the address is blocked while all of them
are within the last RATE_WINDOW seconds, which is exactly "limit
failures in a sliding minute". Addresses are hashed with a key made at
start, so that nobody outside can choose addresses that share a slot.
"""

import hashlib
import mmap
import multiprocessing
import os
import time

RATE_WINDOW = 60.0
# Addresses tracked at once; past it the stalest entry of a few slots
# is reused (an attacker with that many addresses is past a per-address
# limit anyway).
SLOTS = 4096
PROBES = 8


class SignInFailures:
    """Failed sign-ins per address in a sliding minute, for every process
    forked after it was made."""

    def __init__(self, limit, slots=SLOTS, clock=time.monotonic):
        self.limit = limit
        self.clock = clock
        self._slots = slots
        self._salt = os.urandom(16)
        self._lock = multiprocessing.Lock()
        self._key_memory = mmap.mmap(-1, 8 * slots)
        self._keys = memoryview(self._key_memory).cast('Q')
        self._time_memory = mmap.mmap(-1, 8 * slots * limit)
        self._times = memoryview(self._time_memory).cast('d')

    def _key(self, address):
        digest = hashlib.blake2b(address.encode(), digest_size=8,
                                 key=self._salt).digest()
        # 0 marks a free slot.
        return int.from_bytes(digest, 'big') | 1

    def _ring(self, slot):
        return range(slot * self.limit, (slot + 1) * self.limit)

    def _newest(self, slot):
        return max(self._times[i] for i in self._ring(slot))

    def _slot(self, address, claim):
        """The address's slot; with claim, one made for it when it has
        none (a free or stale slot, else the stalest of its probes)."""
        key = self._key(address)
        probes = [(key + n) % self._slots for n in range(PROBES)]
        for slot in probes:
            if self._keys[slot] == key:
                return slot
        if not claim:
            return None
        slot = min(probes, key=self._newest)
        self._keys[slot] = key
        for i in self._ring(slot):
            self._times[i] = 0.0
        return slot

    def blocked(self, address):
        """Whether address failed limit times in the last RATE_WINDOW."""
        with self._lock:
            now = self.clock()
            slot = self._slot(address, claim=False)
            if slot is None:
                return False
            horizon = now - RATE_WINDOW
            # 0.0: no failure recorded there.
            return all(self._times[i] > max(horizon, 0.0)
                       for i in self._ring(slot))

    def failed(self, address):
        """Count a failed sign-in of address."""
        with self._lock:
            slot = self._slot(address, claim=True)
            oldest = min(self._ring(slot), key=self._times.__getitem__)
            self._times[oldest] = self.clock()
