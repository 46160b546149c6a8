"""Notifications a unit test caught: oslo.messaging's own 'test' driver
behind the real notifier and sending thread."""

import json
import os

import fixtures
from oslo_messaging.notify import _impl_test

from serialproxy import conf as sp_conf
from serialproxy import notifications


class CaughtNotifications(fixtures.Fixture):
    def _setUp(self):
        conf = sp_conf.CONF
        notifications.register_opts(conf)
        conf.set_override('driver', ['test'], 'oslo_messaging_notifications')
        conf.set_override('transport_url', 'fake:/',
                          'oslo_messaging_notifications')
        self.addCleanup(conf.clear_override, 'driver',
                        'oslo_messaging_notifications')
        self.addCleanup(conf.clear_override, 'transport_url',
                        'oslo_messaging_notifications')
        notifications.reset()
        self.addCleanup(notifications.reset)
        _impl_test.reset()
        self.addCleanup(_impl_test.reset)

    def caught(self, event_type=None):
        """[(event_type, payload data)] sent so far."""
        notifications.flush()
        messages = [message for _, message, _, _ in _impl_test.NOTIFICATIONS]
        return [(m['event_type'], m['payload']) for m in messages
                if event_type in (None, m['event_type'])]


SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'doc', 'notifications')

# A field null in a sample may hold these in a real event.
_NULLABLE_TYPES = {
    'session_id': str, 'index': int, 'remote_address': str,
    'proxy_host': str, 'bytes_to_guest': int, 'bytes_to_client': int,
    'duration': (int, float), 'reason': str, 'sysrq_key': str,
    'user_id': str, 'project_id': str, 'instance_uuid': str,
}


def sample(event_type):
    with open(os.path.join(SAMPLES, event_type + '.json')) as f:
        return json.load(f)


def mismatches(event_type, body):
    """How an emitted payload differs from its documented sample: keys,
    envelope values, field types; a list of problems, empty if none."""
    documented = sample(event_type)['payload']
    problems = []
    if set(body) != set(documented):
        problems.append('envelope keys %s' % sorted(
            set(body) ^ set(documented)))
    for key in ('serialproxy_object.name', 'serialproxy_object.version',
                'serialproxy_object.namespace'):
        if body.get(key) != documented[key]:
            problems.append('%s is %r' % (key, body.get(key)))
    data = body.get('serialproxy_object.data', {})
    want = documented['serialproxy_object.data']
    if set(data) != set(want):
        problems.append('data keys %s' % sorted(set(data) ^ set(want)))
    for key, value in data.items():
        if value is None or key not in want:
            continue
        expected = type(want[key]) if want[key] is not None else \
            _NULLABLE_TYPES.get(key, str)
        if expected is float:
            expected = (int, float)
        if not isinstance(value, expected):
            problems.append('%s is a %s' % (key, type(value).__name__))
    return problems
