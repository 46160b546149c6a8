"""The proxy's metrics, counted and exposed through prometheus_client.

Metrics (names are documented; keep them):

  serialproxy_sessions_active               gauge (livesum across workers)
  serialproxy_sessions_total                counter
  serialproxy_bytes_total{direction}        counter, to_guest | to_client
  serialproxy_refusals_total{status,reason} counter, reason a
                                            refusals.RefusalKind (or
                                            'other'), never free text
  serialproxy_session_setup_seconds         histogram, request to 101
  serialproxy_ssh_sessions_total            counter, the sessions of
                                            serialproxy_sessions_total that
                                            came over SSH
  serialproxy_spectator_input_dropped_bytes_total
                                            counter, bytes spectators typed
  serialproxy_sessions_ended_by_access_switch_total
                                            counter, sessions closed because
                                            their console access was turned
                                            off (close code 4009)

Labels are bounded sets: a direction, an HTTP status and a refusal kind.
Never a token, a client address or a reason's text (a 409's text carries a
timestamp, so labelling by text made a new series per refusal).

One process (serialproxy-all): the metric
objects live in a CollectorRegistry this module owns, and exposition()
renders it.

Several worker processes (enable_multiprocess() in the supervising parent
before it forks): prometheus_client keeps each process's values in mmaped
files in one directory, and exposition() -- in whichever process answers
the scrape -- sums the files of every worker, living or exited. Counters
and the histogram keep an exited worker's counts; the active-sessions
gauge ('livesum') drops them once the parent calls worker_exited(pid).

prometheus_client (0.18.0 to 0.26.0 read) picks its value class, and so
multiprocess mode, once, when it is first imported, from whether
PROMETHEUS_MULTIPROC_DIR is set then. This module picks it again when it
creates its metrics, so the environment at that moment decides, whenever
prometheus_client was imported.
"""

import glob
import logging
import os
import threading

import prometheus_client
from prometheus_client import exposition as _exposition
from prometheus_client import multiprocess
from prometheus_client import values

from serialproxy.proxy.refusals import RefusalKind

LOG = logging.getLogger(__name__)

# A *_created sample beside every counter says when this process first
# counted it: noise to an operator, and one more series per label value.
prometheus_client.disable_created_metrics()

# Seconds from request received to 101 sent.
SETUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                 10.0)

# What refused() counts a kind outside refusals.RefusalKind as.
OTHER = 'other'

MULTIPROC_ENV = 'PROMETHEUS_MULTIPROC_DIR'

# generate_latest writes the 0.0.4 text format; newer prometheus_client
# releases name 1.0.0 as CONTENT_TYPE_LATEST.
CONTENT_TYPE = getattr(_exposition, 'CONTENT_TYPE_PLAIN_0_0_4',
                       prometheus_client.CONTENT_TYPE_LATEST)


class _Metrics:
    """The metric objects, created once per process, in their registry."""

    def __init__(self):
        self.registry = prometheus_client.CollectorRegistry()
        self.sessions_active = prometheus_client.Gauge(
            'serialproxy_sessions_active', 'Console sessions open now.',
            multiprocess_mode='livesum', registry=self.registry)
        self.sessions = prometheus_client.Counter(
            'serialproxy_sessions', 'Console sessions opened.',
            registry=self.registry)
        self.bytes = prometheus_client.Counter(
            'serialproxy_bytes', 'Console bytes moved, by direction.',
            ['direction'], registry=self.registry)
        self.refusals = prometheus_client.Counter(
            'serialproxy_refusals',
            'Connections refused before the upgrade, by status and '
            'reason class.', ['status', 'reason'], registry=self.registry)
        self.setup_seconds = prometheus_client.Histogram(
            'serialproxy_session_setup_seconds',
            'Time from request to websocket upgrade.',
            buckets=SETUP_BUCKETS, registry=self.registry)
        self.ssh_sessions = prometheus_client.Counter(
            'serialproxy_ssh_sessions',
            'Console sessions opened over SSH (counted in '
            'serialproxy_sessions too).', registry=self.registry)
        self.connections_open = prometheus_client.Gauge(
            'serialproxy_connections_open',
            'Client connections the proxy counts as open now, websocket '
            'connections and SSH console channels.',
            multiprocess_mode='livesum', registry=self.registry)
        self.spectator_input_dropped = prometheus_client.Counter(
            'serialproxy_spectator_input_dropped_bytes',
            'Bytes spectators (mode=view) typed, which never reach the '
            'guest.', registry=self.registry)
        self.sessions_ended_by_access = prometheus_client.Counter(
            'serialproxy_sessions_ended_by_access_switch',
            'Console sessions closed because serial console access was '
            'turned off for their server, its project or the cloud.',
            registry=self.registry)
        # Both directions show from the first scrape, at 0.
        self.to_guest = self.bytes.labels('to_guest')
        self.to_client = self.bytes.labels('to_client')


_lock = threading.Lock()
_metrics = None
_multiproc_dir = None
_warned_unknown = False


def _get():
    global _metrics, _multiproc_dir
    if _metrics is None:
        with _lock:
            if _metrics is None:
                # The environment now decides, not at import (see above).
                values.ValueClass = values.get_value_class()
                _multiproc_dir = (os.environ.get(MULTIPROC_ENV)
                                  if _multiprocess_value() else None)
                _metrics = _Metrics()
    return _metrics


def _multiprocess_value():
    return getattr(values.ValueClass, '_multiprocess', False)


class ProxyMetrics:
    """What the session code counts with. Cheap to create, any number.

    Every instance counts into the same process-wide metrics; the labelled
    children are bound once here, so the per-chunk calls are one call into
    prometheus_client each.
    """

    def __init__(self):
        m = _get()
        self._active = m.sessions_active
        self._sessions = m.sessions
        self._setup = m.setup_seconds
        self._refusals = m.refusals
        self._ssh_sessions = m.ssh_sessions
        self._connections = m.connections_open
        # bytes_to_guest(n), bytes_to_client(n): the children's inc itself.
        self.bytes_to_guest = m.to_guest.inc
        self.bytes_to_client = m.to_client.inc
        self.spectator_input_dropped = m.spectator_input_dropped.inc
        self.sessions_ended_by_access = m.sessions_ended_by_access.inc

    def session_opened(self, setup_seconds):
        """A session reached 101 setup_seconds after its request."""
        self._sessions.inc()
        self._active.inc()
        self._setup.observe(setup_seconds)

    def connection_opened(self):
        """A connection counted against the process's capacity."""
        self._connections.inc()

    def connection_closed(self):
        self._connections.dec()

    def ssh_session_opened(self):
        """The session session_opened() just counted came over SSH."""
        self._ssh_sessions.inc()

    def session_closed(self):
        """A session that session_opened() counted has ended."""
        self._active.dec()

    def refused(self, status, kind):
        """A connection refused with an HTTP status, for a kind of reason.

        kind is a refusals.RefusalKind (or its value); anything else is
        counted as 'other' (and logged once per process), so a caller
        passing the reason's text can neither raise on a refusal path
        nor add series.
        """
        try:
            label = RefusalKind(kind).value
        except ValueError:
            _warn_unknown(kind)
            label = OTHER
        self._refusals.labels('%d' % status, label).inc()


class RelayedBytes:
    """Console bytes relayed since the metrics last heard of them.

    Added to per chunk and handed to the metrics by flush(), about once
    a second: a metric's inc() costs more than the addition, in
    multiprocess mode a lot more.
    """

    __slots__ = ('to_guest', 'to_client', '_metrics')

    def __init__(self, proxy_metrics):
        self.to_guest = 0
        self.to_client = 0
        self._metrics = proxy_metrics

    def flush(self):
        if self.to_guest:
            self._metrics.bytes_to_guest(self.to_guest)
            self.to_guest = 0
        if self.to_client:
            self._metrics.bytes_to_client(self.to_client)
            self.to_client = 0


def _warn_unknown(kind):
    global _warned_unknown
    if not _warned_unknown:
        _warned_unknown = True
        LOG.warning('Refusal counted with reason "other": %r is not one of '
                    'the refusal kinds (%s)', kind,
                    ', '.join(sorted(k.value for k in RefusalKind)))


def enable_multiprocess(directory):
    """Count in files under directory, shared by forked worker processes.

    Call in the supervising parent before it forks and before any
    ProxyMetrics is created in this process. Empties directory of the
    files an earlier run left (*.db: what prometheus_client writes; other
    files are left alone, in case it was pointed at a shared directory);
    a tmpfs directory keeps scrapes and counting off the disk.
    """
    global _multiproc_dir
    with _lock:
        if _metrics is not None:
            raise RuntimeError('enable_multiprocess() after metrics were '
                               'created in this process: they would count '
                               'in this process only')
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, '*.db')):
            os.remove(path)
        os.environ[MULTIPROC_ENV] = directory
        values.ValueClass = values.get_value_class()
        _multiproc_dir = directory


def multiprocess_directory():
    """The directory in use when multiprocess mode is on, else None."""
    _get()
    return _multiproc_dir


def worker_exited(pid):
    """In the parent: a worker exited; drop its live gauges' share."""
    directory = multiprocess_directory()
    if directory is not None:
        multiprocess.mark_process_dead(pid, directory)


def exposition():
    """(body bytes, content type) answering a scrape."""
    directory = multiprocess_directory()
    if directory is None:
        registry = _get().registry
    else:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    return prometheus_client.generate_latest(registry), CONTENT_TYPE


def registry():
    """The registry this process counts in (for tests: get_sample_value).

    In multiprocess mode it shows this process's own values only;
    exposition() is what sums the workers.
    """
    return _get().registry


def sample_value(name, labels=None):
    """The current value of one sample in this process, 0 if absent."""
    value = registry().get_sample_value(name, labels or {})
    return 0.0 if value is None else value
