"""Libvirt lifecycle events of this host, handed to the agent in order.

libvirt delivers events on its default event loop, which one daemon thread
per process runs (virEventRegisterDefaultImpl + virEventRunDefaultImpl).
A callback there must not block, so it only queues the event; a worker
thread hands each to on_event(instance_uuid, event), one at a time, which
is free to call libvirt and RPC.

Events are hints, not state: the handler re-reads the domain. They are
also lost while the connection is down (libvirtd restarted), so after a
reconnect on_resync() runs a full reconciliation.
"""

import queue
import threading

import libvirt
from oslo_log import log as logging
import oslo_messaging as messaging

from serialproxy import exception
from serialproxy import rpc

LOG = logging.getLogger(__name__)

# What keeps an event from reaching consoleauth for now (a busy or
# restarting consoleauth, broker or database): logged as a warning, since
# the periodic reconciliation repairs the registry.
TRANSIENT_FAILURES = (messaging.MessagingTimeout,
                      messaging.MessageDeliveryFailure,
                      exception.DatabaseUnavailable)

EVENT_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: 'defined',
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: 'undefined',
    libvirt.VIR_DOMAIN_EVENT_STARTED: 'started',
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: 'suspended',
    libvirt.VIR_DOMAIN_EVENT_RESUMED: 'resumed',
    libvirt.VIR_DOMAIN_EVENT_STOPPED: 'stopped',
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: 'shutdown',
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: 'suspended',
    libvirt.VIR_DOMAIN_EVENT_CRASHED: 'crashed',
}

# libvirt pings the daemon this often (s) and gives up after this many
# unanswered pings, so a dead libvirtd is noticed without a call failing.
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3

_loop_lock = threading.Lock()
_loop_thread = None


def start_event_loop():
    """Run libvirt's default event loop on a daemon thread, once a process.

    Must happen before the connections that want events are opened: the
    remote driver hooks its socket into the loop at open time.
    """
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        _loop_thread = threading.Thread(target=_run_event_loop,
                                        name='libvirt-event-loop',
                                        daemon=True)
        _loop_thread.start()


def _run_event_loop():
    while True:
        if libvirt.virEventRunDefaultImpl() < 0:
            LOG.error('The libvirt event loop failed an iteration')


class LifecycleEvents:
    """Lifecycle events of the domains at uri, from start() to stop()."""

    def __init__(self, uri, on_event, on_resync, reconnect_interval=5):
        self.uri = uri
        self.on_event = on_event
        self.on_resync = on_resync
        self.reconnect_interval = reconnect_interval
        self._queue = queue.Queue()
        self._stopped = threading.Event()
        self._conn = None
        self._callback_id = None
        self._lost = threading.Event()
        self._worker = threading.Thread(target=self._work,
                                        name='libvirt-lifecycle',
                                        daemon=True)

    def start(self):
        """Connect and listen; a failure here is retried by the worker."""
        start_event_loop()
        try:
            self._connect()
        except libvirt.libvirtError as exc:
            LOG.error('Cannot listen to libvirt events at %s yet: %s',
                      self.uri, exc)
        self._worker.start()

    def stop(self):
        self._stopped.set()
        self._queue.put(None)
        self._worker.join(10)
        self._disconnect()

    def _connect(self):
        conn = libvirt.open(self.uri)
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            pass  # local drivers (test:///) have no keepalive
        self._lost.clear()
        conn.registerCloseCallback(self._closed, None)
        self._callback_id = conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle,
            None)
        self._conn = conn
        LOG.info('Listening to libvirt lifecycle events at %s', self.uri)

    def _disconnect(self):
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._callback_id is not None:
                conn.domainEventDeregisterAny(self._callback_id)
            conn.unregisterCloseCallback()
            conn.close()
        except libvirt.libvirtError:
            pass  # already gone with libvirtd
        self._callback_id = None

    # On the event loop thread: queue and return.

    def _lifecycle(self, conn, dom, event, detail, opaque):
        self._queue.put((dom.UUIDString(), EVENT_NAMES.get(event, 'unknown')))

    def _closed(self, conn, reason, opaque):
        LOG.warning('Connection to libvirt for events closed (reason %s)',
                    reason)
        self._lost.set()
        self._queue.put(None)

    # On the worker thread.

    def _work(self):
        while not self._stopped.is_set():
            if self._conn is None or self._lost.is_set():
                if not self._reconnect():
                    self._stopped.wait(self.reconnect_interval)
                    continue
            item = self._queue.get()
            if item is None:
                continue
            instance_uuid, event = item
            try:
                self.on_event(instance_uuid, event)
            except TRANSIENT_FAILURES as exc:
                # Nothing is wrong here: consoleauth or its database did
                # not answer in time.
                LOG.warning('Handling event %s of instance %s failed, the '
                            'next reconciliation repairs it: %s', event,
                            instance_uuid, rpc.summary(exc))
            except Exception:
                # The periodic reconciliation repairs what this missed.
                LOG.exception('Handling event %s of instance %s failed',
                              event, instance_uuid)

    def _reconnect(self):
        self._disconnect()
        try:
            self._connect()
        except libvirt.libvirtError as exc:
            LOG.warning('Reconnecting to libvirt at %s failed: %s', self.uri,
                        exc)
            return False
        try:
            self.on_resync()
        except Exception:
            LOG.exception('Reconciliation after reconnecting failed')
        return True
