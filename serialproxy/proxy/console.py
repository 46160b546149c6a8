"""The console a session holds, as consoleauth answered for its lease.

Built once from the answer (Console.from_answer) and read as attributes
by everything that serves the session: its connection, the replay, the
recorder, the audit events. Keys an answer carries that are not fields
here (a newer consoleauth's) are ignored; fields an older one does not
send take their defaults.
"""

import dataclasses
import typing

from serialproxy.consoleauth import tokens


@dataclasses.dataclass(frozen=True)
class WriterSeat:
    """The writer a spectator watches, and where its relay listens
    (relay.py)."""
    session_id: str
    proxy_host: typing.Optional[str] = None
    relay_address: typing.Optional[str] = None
    relay_key: typing.Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Console:
    """One serial port of one instance, leased to one session."""
    instance_uuid: str
    index: int
    console_type: str
    compute_host: str
    # The guest's serial port (the TCP chardev QEMU listens on).
    host: str
    port: int
    # When the token (or SSH key) the lease came from expires.
    expires_at: float
    session_id: typing.Optional[str] = None
    lease_ttl: typing.Optional[float] = None
    # Whom the URL was issued to, for the audit events.
    user_id: typing.Optional[str] = None
    project_id: typing.Optional[str] = None
    modes: typing.Tuple[str, ...] = ()
    # The token may only watch: it never holds the writer's seat.
    watch_only: bool = False
    # A writer's key for spectators to reach its relay.
    relay_key: typing.Optional[str] = None
    # A spectator's writer.
    writer: typing.Optional[WriterSeat] = None
    # The session a take-over replaced.
    replaced: typing.Optional[str] = None

    @classmethod
    def from_answer(cls, answer):
        """The console of a consoleauth answer (a dict)."""
        writer = answer.get('writer')
        return cls(
            instance_uuid=answer['instance_uuid'],
            index=answer['index'],
            console_type=answer['console_type'],
            compute_host=answer['compute_host'],
            host=answer['host'],
            port=answer['port'],
            expires_at=answer['expires_at'],
            session_id=answer.get('session_id'),
            lease_ttl=answer.get('lease_ttl'),
            user_id=answer.get('user_id'),
            project_id=answer.get('project_id'),
            modes=tuple(answer.get('modes') or ()),
            watch_only=tokens.console_is_watch_only(answer),
            relay_key=answer.get('relay_key'),
            writer=None if writer is None else WriterSeat(
                session_id=writer.get('session_id'),
                proxy_host=writer.get('proxy_host'),
                relay_address=writer.get('relay_address'),
                relay_key=writer.get('relay_key')),
            replaced=answer.get('replaced'))

    @property
    def is_serial(self):
        return self.console_type == 'serial'
