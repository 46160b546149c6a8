"""Versioned audit notifications of console events, and their sending.

Over oslo.messaging's notifier, configured as Nova's are in
[oslo_messaging_notifications] (driver, topics, transport_url). With no
driver (the default) nothing is sent. Events go to a bounded queue that
one background thread drains: a slow or absent broker never slows a
console session or fails one; what does not fit is dropped and logged.

Every payload has the same versioned envelope and the same data keys
(unknown ones are null), documented in doc/notifications.rst
with samples in doc/notifications/. A console token is never one
of them.
"""

import queue
import socket
import threading

import oslo_messaging as messaging
from oslo_messaging import opts as messaging_opts
from oslo_log import log as logging

from serialproxy import conf as sp_conf

CONF = sp_conf.CONF
LOG = logging.getLogger(__name__)

URL_ISSUED = 'serial_console.url_issued'
SESSION_STARTED = 'serial_console.session_started'
SESSION_ENDED = 'serial_console.session_ended'
SESSION_REFUSED = 'serial_console.session_refused'
# Emitted by the take-over of a console (mode=take_over) for the writer
# it replaced: reason says who took it over, mode is 'take_over'.
SESSION_TAKEN_OVER = 'serial_console.session_taken_over'
FORCE_DISCONNECTED = 'serial_console.force_disconnected'
SYSRQ_SENT = 'serial_console.sysrq_sent'
NMI_SENT = 'serial_console.nmi_sent'

# A serial console access switch changed (consoleauth): its own payload.
ACCESS_CHANGED = 'serial_console.access_changed'

EVENT_TYPES = (URL_ISSUED, SESSION_STARTED, SESSION_ENDED, SESSION_REFUSED,
               SESSION_TAKEN_OVER, FORCE_DISCONNECTED, SYSRQ_SENT, NMI_SENT,
               ACCESS_CHANGED)

PAYLOAD_NAME = 'ConsoleEventPayload'
PAYLOAD_VERSION = '1.0'

# The writer of a console; spectators ('view') and take-overs
# ('take_over') come with the spectator work.
MODE_WRITE = 'write'

FIELDS = ('instance_uuid', 'index', 'session_id', 'user_id', 'project_id',
          'remote_address', 'proxy_host', 'mode', 'bytes_to_guest',
          'bytes_to_client', 'duration', 'reason', 'sysrq_key')

# ConsoleAccessPayload: which switch (level, and the project or server),
# its value before and after ('enabled', 'disabled', null when unset; the
# cloud's may be 'forced_off'), the access it leaves and which level
# decides it, the sessions it ended, and who changed it from where
# ('api', 'serialproxy-manage', or 'config' for access_default).
ACCESS_PAYLOAD_NAME = 'ConsoleAccessPayload'
ACCESS_PAYLOAD_VERSION = '1.0'
ACCESS_FIELDS = ('level', 'project_id', 'instance_uuid', 'old', 'new',
                 'enabled', 'decided_by', 'sessions_ended',
                 'changed_by_user_id', 'changed_by_project_id', 'source')

QUEUE_SIZE = 1000

_lock = threading.Lock()
_sender = None
_publisher = None


def payload(**data):
    """A versioned payload: every field of FIELDS, null when not given."""
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise TypeError('not notification fields: %s' % sorted(unknown))
    fields = dict.fromkeys(FIELDS)
    fields['mode'] = MODE_WRITE
    fields.update(data)
    return {'serialproxy_object.name': PAYLOAD_NAME,
            'serialproxy_object.namespace': 'serialproxy',
            'serialproxy_object.version': PAYLOAD_VERSION,
            'serialproxy_object.data': fields}


def access_payload(**data):
    """The versioned payload of an access change: every field of
    ACCESS_FIELDS, null when not given."""
    unknown = set(data) - set(ACCESS_FIELDS)
    if unknown:
        raise TypeError('not notification fields: %s' % sorted(unknown))
    fields = dict.fromkeys(ACCESS_FIELDS)
    fields.update(data)
    return {'serialproxy_object.name': ACCESS_PAYLOAD_NAME,
            'serialproxy_object.namespace': 'serialproxy',
            'serialproxy_object.version': ACCESS_PAYLOAD_VERSION,
            'serialproxy_object.data': fields}


def emit_console_event(event_type, console, session_id, remote_address,
                       proxy_host, mode=MODE_WRITE, **fields):
    """A proxy's event about one console session, whatever its transport.

    console: the session's proxy.console.Console, as consoleauth leased
    it (None when refused before it was known).
    """
    emit(event_type, payload(
        instance_uuid=getattr(console, 'instance_uuid', None),
        index=getattr(console, 'index', None), session_id=session_id,
        user_id=getattr(console, 'user_id', None),
        project_id=getattr(console, 'project_id', None),
        remote_address=remote_address, proxy_host=proxy_host, mode=mode,
        **fields))


def init(service, host=None):
    """Name this process's publisher, e.g. serialproxy-proxy:<host>."""
    global _publisher
    _publisher = '%s:%s' % (service, host or CONF.host or
                            socket.gethostname())


def emit(event_type, body, priority='info'):
    """Queue one notification; never blocks and never raises."""
    try:
        _get_sender().submit(event_type, body, priority)
    except Exception:
        LOG.exception('Cannot send the %s notification', event_type)


def flush():
    """Wait until every queued event was handed to the notifier."""
    with _lock:
        sender = _sender
    if sender is not None:
        sender.flush()


def reset():
    """Stop sending (tests, service stop); the next emit starts afresh."""
    global _sender
    with _lock:
        sender, _sender = _sender, None
    if sender is not None:
        sender.stop()


def _get_sender():
    """The process's sender, made on first use: with notifications off,
    a null one, so that each later event costs nothing (looking the
    options up again took a third of a console URL's CPU in the API)."""
    global _sender
    with _lock:
        if _sender is None:
            notifier = _make_notifier()
            _sender = _NullSender() if notifier is None else _Sender(
                notifier)
        return _sender


def register_opts(conf):
    """[oslo_messaging_notifications], which oslo.messaging otherwise
    registers only once a notification transport exists."""
    for group, opts in messaging_opts.list_opts():
        if group == 'oslo_messaging_notifications':
            conf.register_opts(opts, group=group)


def _make_notifier():
    register_opts(CONF)
    drivers = CONF.oslo_messaging_notifications.driver
    if not drivers or drivers == ['noop']:
        return None
    transport = messaging.get_notification_transport(CONF)
    publisher = _publisher or 'serialproxy:%s' % (
        CONF.host or socket.gethostname())
    # Bounded retries: an event the broker cannot take in time is lost
    # (and logged), not left to block the queue forever.
    return messaging.Notifier(transport, publisher_id=publisher, retry=3)


class _NullSender:
    """What events go to while [oslo_messaging_notifications] has no
    driver: nowhere."""

    def submit(self, event_type, body, priority):
        pass

    def flush(self):
        pass

    def stop(self, timeout=None):
        pass


class _Sender:
    """One thread that hands queued events to the notifier."""

    def __init__(self, notifier):
        self.notifier = notifier
        self.queue = queue.Queue(QUEUE_SIZE)
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name='notifications')
        self.thread.start()

    def submit(self, event_type, body, priority):
        try:
            self.queue.put_nowait((event_type, body, priority))
        except queue.Full:
            self.dropped += 1
            LOG.warning('Notification queue full: %s dropped (%d so far)',
                        event_type, self.dropped)

    def flush(self):
        self.queue.join()

    def stop(self, timeout=5):
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return  # the daemon thread ends with the process
        self.thread.join(timeout)

    def _run(self):
        while True:
            item = self.queue.get()
            if item is None:
                self.queue.task_done()
                return
            event_type, body, priority = item
            try:
                getattr(self.notifier, priority)({}, event_type, body)
            except Exception as exc:
                LOG.warning('Sending the %s notification failed: %s',
                            event_type, exc)
            finally:
                self.queue.task_done()
