"""Tables of the consoleauth database.

Times are seconds since the epoch in DOUBLE columns: a plain Float is a
4-byte FLOAT on MySQL and MariaDB, which rounds today's epoch to about two
minutes. A change here needs a migration (serialproxy/db/migrations).
"""

import sqlalchemy as sa
from sqlalchemy import orm


WRITER_SEAT = 'writer'


class Base(orm.DeclarativeBase):
    pass


class ConsoleToken(Base):
    """An issued console token. Only its SHA-256 is kept, never the token."""

    __tablename__ = 'console_tokens'

    token_hash = sa.Column(sa.String(64), primary_key=True)
    instance_uuid = sa.Column(sa.String(36), nullable=False, index=True)
    console_type = sa.Column(sa.String(16), nullable=False)
    compute_host = sa.Column(sa.String(255), nullable=False)
    host = sa.Column(sa.String(255), nullable=False)
    port = sa.Column(sa.Integer, nullable=False)
    serial_index = sa.Column(sa.Integer, nullable=False, default=0)
    user_id = sa.Column(sa.String(255), nullable=True)
    project_id = sa.Column(sa.String(255), nullable=True)
    # The connection modes beyond the writer's, and the console page's
    # SysRq and NMI permissions, that the API's policy allowed the
    # requester when the URL was issued: a space-separated subset of
    # 'nmi sysrq take_over view' (see serialproxy/policies/console_modes
    # and serial_console_keys).
    modes = sa.Column(sa.String(64), nullable=True)
    created_at = sa.Column(sa.Double, nullable=False)
    expires_at = sa.Column(sa.Double, nullable=False, index=True)


class SessionLease(Base):
    """The lease that makes a console single-writer, and its spectators.

    One row per console session a proxy holds (the session itself, its
    bytes and its state, is proxy.session.ConsoleSession; the table keeps
    its name, console_sessions). At most one writer row per (instance,
    serial index): a writer's seat is 'writer', a spectator's its own id,
    so the unique constraint is what refuses the second writer, whichever
    proxy they reach, and never a spectator. A proxy renews its leases
    while the sessions live; a lease past expires_at belongs to a dead
    proxy and is taken over by the next user.
    """

    __tablename__ = 'console_sessions'
    __table_args__ = (
        sa.UniqueConstraint('instance_uuid', 'serial_index', 'seat',
                            name='uniq_console_sessions0console0seat'),
    )

    id = sa.Column(sa.String(36), primary_key=True)
    instance_uuid = sa.Column(sa.String(36), nullable=False)
    serial_index = sa.Column(sa.Integer, nullable=False)
    token_hash = sa.Column(sa.String(64), nullable=False, index=True)
    user_id = sa.Column(sa.String(255), nullable=True)
    project_id = sa.Column(sa.String(255), nullable=True)
    remote_address = sa.Column(sa.String(255), nullable=True)
    proxy_host = sa.Column(sa.String(255), nullable=False, index=True)
    started_at = sa.Column(sa.Double, nullable=False)
    expires_at = sa.Column(sa.Double, nullable=False, index=True)
    bytes_to_guest = sa.Column(sa.BigInteger, nullable=False, default=0)
    bytes_to_client = sa.Column(sa.BigInteger, nullable=False, default=0)
    # 'websocket' or 'ssh'; None for leases taken before SSH consoles.
    transport = sa.Column(sa.String(16), nullable=True)
    mode = sa.Column(sa.String(16), nullable=False, default='write',
                     server_default='write')
    seat = sa.Column(sa.String(36), nullable=False, default=WRITER_SEAT,
                     server_default=WRITER_SEAT)
    # Where a writer's proxy worker relays its output to spectators on
    # other proxies (host:port), and the secret a relay connection shows.
    relay_address = sa.Column(sa.String(255), nullable=True)
    relay_key = sa.Column(sa.String(64), nullable=True)


class Instance(Base):
    """The registry entry of a guest, as its compute agent last reported."""

    __tablename__ = 'instances'

    uuid = sa.Column(sa.String(36), primary_key=True)
    name = sa.Column(sa.String(255), nullable=False)
    host = sa.Column(sa.String(255), nullable=False, index=True)
    state = sa.Column(sa.String(16), nullable=False)
    project_id = sa.Column(sa.String(255), nullable=True)
    user_id = sa.Column(sa.String(255), nullable=True)
    updated_at = sa.Column(sa.Double, nullable=False)
    # Whether the last report listed the instance's serial ports (in
    # instance_consoles). An agent older than consoleauth RPC 1.3 does
    # not: its instances' tokens are checked against their host alone.
    consoles_known = sa.Column(sa.Boolean, nullable=False, default=False,
                               server_default=sa.false())


class InstanceConsole(Base):
    """A serial port of a registered instance, as its agent last reported:
    what a console token's port must still be when its session leases
    the console (CVE-2013-0335: a port given to another guest). A port
    of a host is one instance's: the one last reported with it."""

    __tablename__ = 'instance_consoles'

    instance_uuid = sa.Column(sa.String(36), primary_key=True)
    serial_index = sa.Column(sa.Integer, primary_key=True,
                             autoincrement=False)
    port = sa.Column(sa.Integer, nullable=False)


class ConsoleSSHKey(Base):
    """A public key pushed for one console port: it may open that port
    once, until expires_at. Only public halves are kept; the key itself is
    there for the proxy to check signatures with."""

    __tablename__ = 'console_ssh_keys'

    id = sa.Column(sa.String(36), primary_key=True)
    fingerprint = sa.Column(sa.String(64), nullable=False, index=True)
    public_key = sa.Column(sa.Text, nullable=False)
    instance_uuid = sa.Column(sa.String(36), nullable=False, index=True)
    serial_index = sa.Column(sa.Integer, nullable=False)
    compute_host = sa.Column(sa.String(255), nullable=False)
    host = sa.Column(sa.String(255), nullable=False)
    port = sa.Column(sa.Integer, nullable=False)
    user_id = sa.Column(sa.String(255), nullable=True)
    project_id = sa.Column(sa.String(255), nullable=True)
    # What the API's policy allowed the pusher beyond typing, as a
    # token's modes column holds it: 'sysrq' (a break and a key over
    # SSH) and 'nmi'. The session's console carries them to the proxy.
    modes = sa.Column(sa.String(64), nullable=True)
    created_at = sa.Column(sa.Double, nullable=False)
    expires_at = sa.Column(sa.Double, nullable=False, index=True)


class ConsoleAccess(Base):
    """A serial console access switch set for a project or a server.

    level 'project' (target a project id, taken as given) or 'server'
    (target an instance uuid); value 'enabled' or 'disabled'. A level
    without a row follows the next one out (serialproxy/consoleauth/
    access.py). The 'cloud' row, target '', records the [console]
    access_default consoleauth last applied, so a changed one is noticed
    (and announced) when it starts.
    """

    __tablename__ = 'console_access'

    level = sa.Column(sa.String(16), primary_key=True)
    target = sa.Column(sa.String(255), primary_key=True)
    value = sa.Column(sa.String(16), nullable=False)
    updated_at = sa.Column(sa.Double, nullable=False)
    # Who set it: a Keystone user id, or None (serialproxy-manage).
    updated_by = sa.Column(sa.String(255), nullable=True)
