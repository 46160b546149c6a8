"""The persistent pool of serial console ports of one compute host.

Owns which TCP ports of [serial_console] port_range belong to which
instance, which ports other programs were found listening on, and which
were released too recently to hand out again.

Storage: one SQLite file on local disk, every change in a BEGIN IMMEDIATE
transaction. SQLite rather than fcntl-locked files because it gives, for
free, what a pool needs and locked files would make us write ourselves:
a write lock across every process of the host (the agent, its RPC threads,
serialproxy-manage) taken before we read, so two allocators never see the
same free port; atomic multi-row changes that a SIGKILL rolls back rather
than half-applies (the write-ahead log); and indexed queries, so finding a
free port does not mean reading the whole pool. synchronous=NORMAL in WAL
mode survives a killed process; a power cut may lose the last commits, which
the start-up reconciliation with libvirt (whose XML names every port a
domain really uses) puts back.

Rows exist only for ports that are not plainly free:

* allocated: handed to an instance. `confirmed` once a domain's XML was
  seen naming it; until then it is pending, and freed after
  [compute] pending_allocation_timeout (the caller allocates first and
  defines the domain after, so a pending port is not a leak at once).
* busy: found in use by another program; skipped until retry_after.
* released: given back; not handed out again until retry_after.

Allocation is next-fit: a cursor moves round the range, so a port freed a
moment ago is the last one to come round again.
"""

import contextlib
import errno
import os
import socket
import sqlite3
import threading
import time

from oslo_log import log as logging

from serialproxy import exception

LOG = logging.getLogger(__name__)

MIN_PORT = 1
MAX_PORT = 65535

ALLOCATED = 'allocated'
BUSY = 'busy'
RELEASED = 'released'

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ports (
        port INTEGER PRIMARY KEY,
        status TEXT NOT NULL,
        instance_uuid TEXT,
        serial_index INTEGER,
        confirmed INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        retry_after REAL)""",
    'CREATE INDEX IF NOT EXISTS ports_by_instance ON ports (instance_uuid)',
    """CREATE TABLE IF NOT EXISTS pool_state (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL)""",
)

# Rows that keep a port from being handed out right now.
_BLOCKING = "(status = 'allocated' OR retry_after > :now)"

# How many blocking rows one query reads while looking for a free port.
_SCAN_CHUNK = 256


def parse_port_range(text):
    """(lo, hi) of a "lo:hi" range, or InvalidPortRange saying why not.

    As Nova reads it: ports lo up to but not including hi.
    """
    parts = str(text).strip().split(':')
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise exception.InvalidPortRange(port_range=text,
                                         reason='not two numbers "lo:hi"')
    lo, hi = (int(p) for p in parts)
    if not (MIN_PORT <= lo <= MAX_PORT and MIN_PORT <= hi <= MAX_PORT):
        raise exception.InvalidPortRange(
            port_range=text, reason='ports must be within %d..%d'
            % (MIN_PORT, MAX_PORT))
    if lo >= hi:
        raise exception.InvalidPortRange(port_range=text,
                                         reason='lo must be below hi')
    return lo, hi


def port_is_free(host, port):
    """Whether a listener could bind host:port now, as QEMU will.

    SO_REUSEADDR as QEMU sets it, so a port with connections lingering in
    TIME_WAIT counts as free, while one another program listens on does not.
    """
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip('[]'), port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


class PortPool:
    """The port pool of this host over one SQLite file.

    Safe to share between threads (one connection, one lock) and between
    processes (SQLite's write lock, taken by BEGIN IMMEDIATE).
    """

    def __init__(self, path, port_range, address, host=None,
                 busy_retry_interval=600, reuse_delay=60,
                 pending_timeout=600, lock_timeout=30,
                 clock=time.time, probe=port_is_free):
        self.lo, self.hi = parse_port_range(port_range)
        self.port_range = '%d:%d' % (self.lo, self.hi)
        self.path = path
        self.address = address
        self.host = host or socket.gethostname()
        self.busy_retry_interval = busy_retry_interval
        self.reuse_delay = reuse_delay
        self.pending_timeout = pending_timeout
        self.clock = clock
        self.probe = probe
        self._lock = threading.Lock()
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700,
                        exist_ok=True)
            self._db = sqlite3.connect(path, timeout=lock_timeout,
                                       isolation_level=None,
                                       check_same_thread=False)
            self._db.execute('PRAGMA journal_mode=WAL')
            self._db.execute('PRAGMA synchronous=NORMAL')
            with self._transaction() as db:
                for statement in _SCHEMA:
                    db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise exception.PortPoolUnavailable(
                host=self.host, reason='%s: %s' % (path, exc))

    @classmethod
    def from_conf(cls, conf, **kwargs):
        return cls(conf.compute.port_pool_path,
                   conf.serial_console.port_range,
                   conf.serial_console.proxyclient_address,
                   host=conf.host,
                   busy_retry_interval=conf.compute.busy_port_retry_interval,
                   reuse_delay=conf.compute.port_reuse_delay,
                   pending_timeout=conf.compute.pending_allocation_timeout,
                   lock_timeout=conf.compute.port_pool_lock_timeout,
                   **kwargs)

    def close(self):
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self):
        with self._lock:
            try:
                self._db.execute('BEGIN IMMEDIATE')
            except sqlite3.OperationalError as exc:
                # Another process held the pool past lock_timeout.
                raise exception.PortPoolUnavailable(host=self.host,
                                                    reason=str(exc))
            try:
                yield self._db
            except BaseException:
                self._db.execute('ROLLBACK')
                raise
            self._db.execute('COMMIT')

    # Allocation

    def allocate(self, instance_uuid, count):
        """Ports for serial indexes 0..count-1 of an instance, in order.

        Idempotent: an index the instance already holds keeps its port, so
        a caller retrying after a lost reply gets the same ports back
        rather than leaking the first ones. All or nothing: when the range
        runs out part way, nothing is allocated.
        """
        exhausted = None
        with self._transaction() as db:
            now = self.clock()
            held = dict(db.execute(
                'SELECT serial_index, port FROM ports WHERE status = ? '
                'AND instance_uuid = ? ORDER BY port DESC',
                (ALLOCATED, instance_uuid)))
            ports = []
            taken = []
            for index in range(count):
                port = held.get(index)
                if port is None:
                    try:
                        port = self._take_free_port(db, now)
                    except exception.PortRangeExhausted as exc:
                        # Commit what was learnt about busy ports, not the
                        # part of the allocation that was made.
                        exhausted = exc
                        db.executemany('DELETE FROM ports WHERE port = ?',
                                       [(p,) for p in taken])
                        break
                    db.execute(
                        'INSERT OR REPLACE INTO ports (port, status, '
                        'instance_uuid, serial_index, confirmed, updated_at, '
                        'retry_after) VALUES (?, ?, ?, ?, 0, ?, NULL)',
                        (port, ALLOCATED, instance_uuid, index, now))
                    taken.append(port)
                ports.append(port)
        if exhausted is not None:
            LOG.warning('No serial port for instance %s: %s', instance_uuid,
                        exhausted)
            raise exhausted
        LOG.info('Serial ports %s allocated to instance %s',
                 ports, instance_uuid)
        return ports

    def _take_free_port(self, db, now):
        cursor = self._cursor(db)
        busy = 0
        for start, stop in ((cursor, self.hi), (self.lo, cursor)):
            for port in self._unblocked(db, start, stop, now):
                if self.probe(self.address, port):
                    self._set_cursor(db, port + 1)
                    return port
                busy += 1
                LOG.info('Port %d is in use by another program; skipping '
                         'it for %ds', port, self.busy_retry_interval)
                db.execute(
                    'INSERT OR REPLACE INTO ports (port, status, updated_at, '
                    'retry_after) VALUES (?, ?, ?, ?)',
                    (port, BUSY, now, now + self.busy_retry_interval))
        busy = max(busy, db.execute(
            'SELECT count(*) FROM ports WHERE status = ? AND retry_after > ? '
            'AND port >= ? AND port < ?',
            (BUSY, now, self.lo, self.hi)).fetchone()[0])
        raise exception.PortRangeExhausted(port_range=self.port_range,
                                           host=self.host, busy=busy)

    @staticmethod
    def _unblocked(db, start, stop, now):
        """Ports in [start, stop) that no row keeps back, in order."""
        candidate = start
        while candidate < stop:
            rows = db.execute(
                'SELECT port FROM ports WHERE port >= :start AND '
                'port < :stop AND ' + _BLOCKING + ' ORDER BY port '
                'LIMIT :limit',
                {'start': candidate, 'stop': stop, 'now': now,
                 'limit': _SCAN_CHUNK}).fetchall()
            for (blocked,) in rows:
                yield from range(candidate, blocked)
                candidate = blocked + 1
            if len(rows) < _SCAN_CHUNK:
                yield from range(candidate, stop)
                return

    def _cursor(self, db):
        row = db.execute("SELECT value FROM pool_state WHERE name = "
                         "'next_port'").fetchone()
        if row is None or not self.lo <= row[0] < self.hi:
            return self.lo  # new pool, or the range changed
        return row[0]

    def _set_cursor(self, db, port):
        if port >= self.hi:
            port = self.lo
        db.execute("INSERT OR REPLACE INTO pool_state (name, value) "
                   "VALUES ('next_port', ?)", (port,))

    # Release and reconciliation

    def release(self, instance_uuid, keep=()):
        """Give back an instance's ports, except those in keep."""
        with self._transaction() as db:
            return self._release(db, instance_uuid, self.clock(), keep)

    def _release(self, db, instance_uuid, now, keep=(), only_stale=False):
        query = ('SELECT port, confirmed, updated_at FROM ports WHERE '
                 'status = ? AND instance_uuid = ?')
        released = []
        for port, confirmed, updated_at in db.execute(
                query, (ALLOCATED, instance_uuid)).fetchall():
            if port in keep:
                continue
            if (only_stale and not confirmed and
                    updated_at + self.pending_timeout > now):
                continue  # its domain may not be defined yet
            db.execute(
                'UPDATE ports SET status = ?, confirmed = 0, updated_at = ?, '
                'retry_after = ? WHERE port = ?',
                (RELEASED, now, now + self.reuse_delay, port))
            released.append(port)
        if released:
            LOG.info('Serial ports %s of instance %s released',
                     sorted(released), instance_uuid)
        return sorted(released)

    def sync_instance(self, instance_uuid, ports):
        """Make the pool agree with one domain's XML.

        ports maps each TCP port the domain's XML names to its serial index,
        or is None when the domain no longer exists. Ports it names become
        confirmed allocations of the instance; confirmed ones it no longer
        names are released; pending ones are released once stale.
        Returns the released ports.
        """
        with self._transaction() as db:
            return self._sync(db, instance_uuid, ports, self.clock())

    def _sync(self, db, instance_uuid, ports, now):
        ports = ports or {}
        for port, index in ports.items():
            if not self.lo <= port < self.hi:
                continue  # not ours to hand out, so not ours to track
            row = db.execute(
                'SELECT status, instance_uuid FROM ports WHERE port = ?',
                (port,)).fetchone()
            if (row is not None and row[0] == ALLOCATED and
                    row[1] != instance_uuid):
                LOG.warning('Port %d is allocated to instance %s but the '
                            'domain of instance %s names it; the domain '
                            'wins', port, row[1], instance_uuid)
            db.execute(
                'INSERT OR REPLACE INTO ports (port, status, instance_uuid, '
                'serial_index, confirmed, updated_at, retry_after) '
                'VALUES (?, ?, ?, ?, 1, ?, NULL)',
                (port, ALLOCATED, instance_uuid, index, now))
        return self._release(db, instance_uuid, now, keep=set(ports),
                             only_stale=True)

    def reconcile(self, domains):
        """Make the whole pool agree with libvirt.

        domains maps every instance uuid libvirt knows on this host to its
        {port: serial index}; order matters only when two domains name the
        same port, and then the later one wins (put running ones last).
        Allocations of instances libvirt does not know are released (pending
        ones once stale). Expired busy and released rows are dropped.
        Returns {instance uuid: released ports}.
        """
        released = {}
        with self._transaction() as db:
            now = self.clock()
            for instance_uuid, ports in domains.items():
                freed = self._sync(db, instance_uuid, ports, now)
                if freed:
                    released[instance_uuid] = freed
            orphans = [uuid for (uuid,) in db.execute(
                'SELECT DISTINCT instance_uuid FROM ports WHERE status = ?',
                (ALLOCATED,)) if uuid not in domains]
            for instance_uuid in orphans:
                freed = self._release(db, instance_uuid, now,
                                      only_stale=True)
                if freed:
                    released[instance_uuid] = freed
            db.execute('DELETE FROM ports WHERE status != ? AND '
                       'retry_after <= ?', (ALLOCATED, now))
        return released

    # Inspection

    def allocations(self, instance_uuid=None):
        """Allocated ports: [{'port', 'instance_uuid', 'index', 'confirmed'}].
        """
        query = ('SELECT port, instance_uuid, serial_index, confirmed FROM '
                 'ports WHERE status = ?')
        args = [ALLOCATED]
        if instance_uuid is not None:
            query += ' AND instance_uuid = ?'
            args.append(instance_uuid)
        with self._lock:
            rows = self._db.execute(query + ' ORDER BY port', args).fetchall()
        return [{'port': port, 'instance_uuid': uuid, 'index': index,
                 'confirmed': bool(confirmed)}
                for port, uuid, index, confirmed in rows]

    def port_status(self, port):
        """'free', or the status of the row that keeps port back."""
        with self._lock:
            row = self._db.execute(
                'SELECT status, retry_after FROM ports WHERE port = ?',
                (port,)).fetchone()
        if row is None or (row[0] != ALLOCATED and
                           row[1] <= self.clock()):
            return 'free'
        return row[0]
