"""Notifications a unit test caught: oslo.messaging's own 'test' driver
behind the real notifier and sending thread."""

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
