"""What one proxy process holds: connections, open sessions, relays.

Lease renewal, force-disconnect orders, the time-limit sweep and
shutdown find connections here, and a spectator's relay finds the
writer it watches (relay.py); nothing else keeps a table of them. A
connection is anything with close_session(code, reason), tick() and
abort(), whose session (its .session) has session_id, is_open and the
byte counts: a websocket connection or an SSH console channel.
"""


class ConnectionRegistry:
    def __init__(self, admission, proxy_metrics):
        self._admission = admission
        self._metrics = proxy_metrics
        # Counted against the process's capacity, open or not yet.
        self.connections = set()
        # session id -> the connection of an open session
        self.sessions = {}
        # relay key -> the connection of the writer it reaches
        self._writers = {}

    def opened(self, connection):
        self.connections.add(connection)
        self._admission.connection_opened()
        self._metrics.connection_opened()

    def closed(self, connection):
        self.connections.discard(connection)
        self._admission.connection_closed()
        self._metrics.connection_closed()

    def session_started(self, connection, relay_key=None):
        """connection's session is open; with relay_key, it is a writer
        that spectators reach by that key."""
        self.sessions[connection.session.session_id] = connection
        if relay_key:
            self._writers[relay_key] = connection

    def session_ended(self, connection, relay_key=None):
        self.sessions.pop(connection.session.session_id, None)
        if relay_key:
            self._writers.pop(relay_key, None)

    def writer_of(self, relay_key):
        """The open writer's connection a relay key reaches, or None."""
        writer = self._writers.get(relay_key)
        if writer is None or not writer.session.is_open:
            return None
        return writer

    def disconnect(self, session_ids, code, reason):
        """Close those of the sessions that this process holds."""
        for session_id in session_ids:
            connection = self.sessions.get(session_id)
            if connection is not None:
                connection.close_session(code, reason)

    def renewal_reports(self):
        """Every open session's lease, with what it relayed so far."""
        return [{'id': session_id,
                 'bytes_to_guest': connection.session.bytes_to_guest,
                 'bytes_to_client': connection.session.bytes_to_client}
                for session_id, connection in self.sessions.items()]
