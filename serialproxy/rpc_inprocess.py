"""An oslo.messaging driver for services that share one process.

serialproxy-all runs api, consoleauth, compute and proxy in one process.
They keep talking through their rpcapi clients and RPC servers, as they
would over RabbitMQ, but the messages go through memory: a listener
blocks on a condition until a message arrives and a caller is woken by
its reply, with no broker and nothing polling (oslo.messaging's fake
driver sleeps 50 ms between looks at its queues, and a console URL takes
three calls).

What crosses is what would cross a broker, and it arrives the same way:

* the context and the message are encoded with jsonutils.dumps when sent,
  as the AMQP drivers do (tuples and sets become lists, datetimes
  strings, other objects str()), and each receiver decodes its own copy;
  replies likewise;
* a failure travels as oslo.messaging's serialized remote exception and
  is rebuilt on the caller's side from allowed_remote_exmods (or
  builtins), anything else being RemoteError; NoSuchMethod and
  UnsupportedVersion therefore arrive as RemoteError naming them;
* a call nobody answers within its timeout raises MessagingTimeout; a
  message for a queue no server ever declared is dropped, as an exchange
  with nothing bound drops it;
* queues are a broker's: topic.server and topic queues outlive the server
  that declared them (messages wait for its restart), consumers of one
  queue share its messages, fanout reaches a queue of each listening
  server, and notifications reach every pool of their topic.

Each driver instance is a broker of its own: one transport per process,
made by serialproxy.rpc.init. The scheme is inprocess:// (see setup.cfg).
"""

import collections
import logging
import threading
import time
import uuid

from oslo_serialization import jsonutils
import oslo_messaging as messaging
from oslo_messaging._drivers import base
from oslo_messaging._drivers import common as driver_common
from oslo_messaging import transport as msg_transport

LOG = logging.getLogger(__name__)

SCHEME = 'inprocess'
URL = SCHEME + '://'


def get_rpc_transport(conf, allowed_remote_exmods=None):
    """An RPC transport on a new in-process broker.

    What messaging.get_rpc_transport(conf, URL) makes through the
    oslo.messaging.drivers entry point, without needing the package's
    entry points installed.
    """
    url = messaging.TransportURL.parse(conf, URL)  # registers the options
    return msg_transport.RPCTransport(InProcessDriver(
        conf, url, default_exchange=conf.control_exchange,
        allowed_remote_exmods=allowed_remote_exmods))


class _Envelope:
    """A message in a queue: its wire form and where its reply goes."""

    __slots__ = ('wire', 'waiter', 'client_timeout')

    def __init__(self, wire, waiter=None, client_timeout=None):
        self.wire = wire
        self.waiter = waiter
        self.client_timeout = client_timeout


class _Queue:
    def __init__(self):
        self.messages = collections.deque()
        # The wake-up conditions of the listeners consuming from it.
        self.consumers = []


class _Broker:
    """Named queues; every one is guarded by the broker's one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.queues = {}

    def declare(self, name):
        """The queue called name, created if missing; hold the lock."""
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = _Queue()
        return queue

    def publish(self, names, envelope):
        """Put envelope on the named queues that exist; how many did."""
        with self.lock:
            queues = [self.queues[n] for n in names if n in self.queues]
            for queue in queues:
                queue.messages.append(envelope)
                for wakeup in queue.consumers:
                    wakeup.notify()
        return len(queues)

    def requeue(self, name, envelope):
        with self.lock:
            queue = self.queues.get(name)
            if queue is not None:
                queue.messages.appendleft(envelope)
                for wakeup in queue.consumers:
                    wakeup.notify()

    def names(self, prefix):
        """Names of the existing queues whose name starts with prefix."""
        with self.lock:
            return [n for n in self.queues if n[:len(prefix)] == prefix]

    def clear(self):
        with self.lock:
            self.queues.clear()


class _ReplyWaiter:
    """Where a call's caller sleeps until its reply (or heartbeat) comes."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._reply = None
        self._heard = time.monotonic()
        self._abandoned = False

    def put(self, wire):
        with self._cond:
            if self._reply is None and not self._abandoned:
                self._reply = wire
                self._cond.notify()

    def heartbeat(self):
        with self._cond:
            self._heard = time.monotonic()

    def wait(self, timeout, call_monitor_timeout, topic):
        """The reply's wire form; MessagingTimeout if it does not come."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            try:
                while self._reply is None:
                    now = time.monotonic()
                    limits = []
                    if deadline is not None:
                        if now >= deadline:
                            raise messaging.MessagingTimeout(
                                'Timed out waiting for a reply on topic '
                                '%s' % topic)
                        limits.append(deadline)
                    if call_monitor_timeout:
                        silent_until = self._heard + call_monitor_timeout
                        if now >= silent_until:
                            raise messaging.MessagingTimeout(
                                'No heartbeat from the server of topic %s '
                                'for %s s' % (topic, call_monitor_timeout))
                        limits.append(silent_until)
                    self._cond.wait(min(limits) - now if limits else None)
                return self._reply
            finally:
                self._abandoned = True


class InProcessIncomingMessage(base.RpcIncomingMessage):
    """A received message, decoded afresh for its receiver."""

    def __init__(self, broker, queue_name, envelope):
        data = jsonutils.loads(envelope.wire)
        super().__init__(data['ctxt'], data['message'])
        self.client_timeout = envelope.client_timeout
        self._broker = broker
        self._queue_name = queue_name
        self._envelope = envelope

    def reply(self, reply=None, failure=None):
        waiter = self._envelope.waiter
        if waiter is None:
            return
        if failure:
            data = {'failure':
                    driver_common.serialize_remote_exception(failure)}
        else:
            data = {'result': reply}
        waiter.put(jsonutils.dumps(data))

    def heartbeat(self):
        if self._envelope.waiter is not None:
            self._envelope.waiter.heartbeat()

    def acknowledge(self):
        pass

    def requeue(self):
        self._broker.requeue(self._queue_name, self._envelope)


class InProcessListener(base.PollStyleListener):
    """Consumes from some queues; sleeps on a condition while all are empty.

    A delivery to any of its queues notifies the condition, so poll()
    returns as soon as there is a message, however long its timeout.
    """

    def __init__(self, broker, queue_names, exclusive_names=()):
        super().__init__()
        self._broker = broker
        self._wakeup = threading.Condition(broker.lock)
        self._stopped = False
        self._exclusive_names = list(exclusive_names)
        with broker.lock:
            self._queues = [(name, broker.declare(name))
                            for name in queue_names]
            for _, queue in self._queues:
                queue.consumers.append(self._wakeup)

    @base.batch_poll_helper
    def poll(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._wakeup:
            while True:
                taken = self._take()
                if taken is not None or self._stopped:
                    break
                if deadline is None:
                    self._wakeup.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wakeup.wait(left)
        if taken is None:
            return None
        return InProcessIncomingMessage(self._broker, *taken)

    def _take(self):
        """(queue name, envelope) off the first non-empty queue, or None.

        None once stopped: what is still queued waits for the next
        consumer, as unacknowledged messages stay on a broker's queue.
        """
        if self._stopped:
            return None
        for name, queue in self._queues:
            if queue.messages:
                return name, queue.messages.popleft()
        return None

    def stop(self):
        with self._wakeup:
            self._stopped = True
            for name, queue in self._queues:
                if self._wakeup in queue.consumers:
                    queue.consumers.remove(self._wakeup)
            # A server's fanout queue goes with it, as an auto-delete
            # queue goes when its consumer does.
            for name in self._exclusive_names:
                self._broker.queues.pop(name, None)
            self._wakeup.notify_all()


class InProcessDriver(base.BaseDriver):
    """Messages between the services of one process, as over a broker."""

    def __init__(self, conf, url, default_exchange=None,
                 allowed_remote_exmods=None):
        super().__init__(conf, url, default_exchange, allowed_remote_exmods)
        self._broker = _Broker()

    def require_features(self, requeue=True):
        pass

    def _exchange(self, target):
        return target.exchange or self._default_exchange

    @staticmethod
    def _encode(ctxt, message):
        """The wire form: JSON, as the AMQP drivers send it."""
        if not isinstance(ctxt, dict):
            ctxt = ctxt.to_dict()
        return jsonutils.dumps({'ctxt': ctxt, 'message': message})

    def send(self, target, ctxt, message, wait_for_reply=None, timeout=None,
             call_monitor_timeout=None, retry=None, transport_options=None):
        exchange = self._exchange(target)
        wire = self._encode(ctxt, message)
        waiter = _ReplyWaiter() if wait_for_reply else None
        if target.fanout:
            names = self._broker.names(('fanout', exchange, target.topic))
        elif target.server:
            names = [('rpc', exchange, target.topic, target.server)]
        else:
            names = [('rpc', exchange, target.topic)]
        envelope = _Envelope(wire, waiter, call_monitor_timeout)
        if not self._broker.publish(names, envelope):
            LOG.debug('No queue for %s: message dropped', target)
        if waiter is None:
            return None
        data = jsonutils.loads(waiter.wait(timeout, call_monitor_timeout,
                                           target.topic))
        if data.get('failure'):
            raise driver_common.deserialize_remote_exception(
                data['failure'], self._allowed_remote_exmods)
        return data.get('result')

    def send_notification(self, target, ctxt, message, version, retry=None):
        exchange = self._exchange(target)
        wire = self._encode(ctxt, message)
        prefix = ('notify', exchange, target.topic)
        with self._broker.lock:
            # As a notifier declares the topic's queue: notifications wait
            # there for a listener.
            self._broker.declare(prefix + (None,))
        self._broker.publish(self._broker.names(prefix), _Envelope(wire))

    def listen(self, target, batch_size, batch_timeout):
        exchange = self._exchange(target)
        fanout = ('fanout', exchange, target.topic, uuid.uuid4().hex)
        listener = InProcessListener(
            self._broker,
            [('rpc', exchange, target.topic, target.server),
             ('rpc', exchange, target.topic),
             fanout],
            exclusive_names=[fanout])
        return base.PollStyleListenerAdapter(listener, batch_size,
                                             batch_timeout)

    def listen_for_notifications(self, targets_and_priorities, pool,
                                 batch_size, batch_timeout):
        names = [('notify', self._exchange(target),
                  '%s.%s' % (target.topic, priority), pool)
                 for target, priority in targets_and_priorities]
        return base.PollStyleListenerAdapter(
            InProcessListener(self._broker, names), batch_size,
            batch_timeout)

    def cleanup(self):
        self._broker.clear()
