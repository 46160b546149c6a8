"""Database access for consoleauth, the only service with a database.

Transactions come from oslo.db's enginefacade, over the [database]
options; oslo.db translates the drivers' errors (DBDeadlock,
DBConnectionError), and the transactions that may deadlock are retried
whole with oslo.db's wrap_db_retry.

Every method that reads returns sqlalchemy Row objects (or lists of
them): named, read-only, attribute access like a model's, and attached
to no session. A new method takes one of the context managers below and
returns rows from Core statements on the model's __table__::

    def get_thing(self, thing_id):
        things = models.Thing.__table__
        with self.reader() as connection:
            return connection.execute(sa.select(things).where(
                things.c.id == thing_id)).first()

reader() for reads, connection() for a writing transaction (session()
when the ORM helps), statement() for one statement of its own; a
transaction that can deadlock gets @_retry_on_deadlock.
"""

import contextlib
import os
import sqlite3

from oslo_db import api as oslo_db_api
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from serialproxy.consoleauth import tokens as tokens_rules
from serialproxy.db import migration
from serialproxy.db import models
from serialproxy import exception

INSTANCE_FIELDS = ('uuid', 'name', 'host', 'state', 'project_id', 'user_id')
SESSION_FIELDS = ('id', 'instance_uuid', 'serial_index', 'user_id',
                  'project_id', 'remote_address', 'proxy_host', 'started_at',
                  'expires_at', 'bytes_to_guest', 'bytes_to_client',
                  'transport', 'mode')

# Rows per statement when renewing leases in bulk.
_BATCH = 500


def _sqlite_busy(exc):
    """SQLite's "database is locked": another writer held the file for all
    of the busy timeout. oslo.db leaves it untranslated; like a deadlock,
    the transaction is worth another try."""
    return (isinstance(exc, sa_exc.OperationalError) and
            isinstance(exc.orig, sqlite3.OperationalError) and
            'locked' in str(exc.orig))


# The lease and sign-in transactions: a deadlock or lock timeout
# (MariaDB, PostgreSQL) or a busy SQLite file is retried at once, then
# after growing pauses; five tries in all.
_retry_on_deadlock = oslo_db_api.wrap_db_retry(
    max_retries=4, retry_on_deadlock=True, exception_checker=_sqlite_busy,
    retry_interval=0.05, inc_retry_interval=True, max_retry_interval=1,
    jitter=True)


def _duplicate_or_busy(exc):
    return isinstance(exc, db_exc.DBDuplicateEntry) or _sqlite_busy(exc)


# Registry writes (instance reports): two reports of one new instance
# reach consoleauth's RPC threads together, both find no row and insert
# it, and one fails on the primary key; or their deletes and inserts of
# the console rows deadlock. Run again, the loser finds the row the
# winner wrote and updates it.
_racing_writers_retried = oslo_db_api.wrap_db_retry(
    max_retries=4, retry_on_deadlock=True,
    exception_checker=_duplicate_or_busy, retry_interval=0.05,
    inc_retry_interval=True, max_retry_interval=1, jitter=True)


def _postgresql_unreachable(exc):
    """A PostgreSQL server that cannot be reached, in the errors oslo.db
    lets through: libpq's "connection to server ... failed" (oslo.db
    knows only the older "could not connect to server") and the server
    starting up or shutting down. An error of a statement the server
    ran always has a SQLSTATE; these have none, or class 57P."""
    pgcode = getattr(exc.orig, 'pgcode', False)
    return pgcode is None or str(pgcode).startswith('57P')


@contextlib.contextmanager
def _unreachable_is_unavailable():
    """A server that cannot be reached now (a restart, a network cut) is
    DatabaseUnavailable: 503 to users, not an internal error."""
    try:
        yield
    except db_exc.DBConnectionError as exc:
        raise exception.DatabaseUnavailable() from exc
    except sa_exc.OperationalError as exc:
        if _postgresql_unreachable(exc):
            raise exception.DatabaseUnavailable() from exc
        raise


@enginefacade.transaction_context_provider
class _Context:
    """Where enginefacade keeps a thread's transaction. The methods of
    Database take no request context: each transaction has its own."""


def _sqlite_synced_at_checkpoints(dbapi_connection, connection_record):
    """SQLite's write-ahead log (see _sqlite_write_ahead), synced at
    checkpoints.

    In its default rollback journal every commit waits for several fsyncs
    (milliseconds on a disk, each console URL and session a commit);
    with WAL and synchronous=NORMAL a commit is a write to the log. It
    survives consoleauth crashing; a crash of the whole machine may undo
    the last commits (tokens and leases of a few seconds), which their
    holders then ask for again. ([database] sqlite_synchronous = false
    still turns syncing off: oslo.db's listener has run before this one.)
    """
    cursor = dbapi_connection.cursor()
    try:
        # 2: FULL, SQLite's default; 0 (OFF) when oslo.db was asked.
        if cursor.execute('PRAGMA synchronous').fetchone()[0] == 2:
            cursor.execute('PRAGMA synchronous=NORMAL')
    finally:
        cursor.close()


def _sqlite_write_ahead(engine):
    """Put the database file in WAL mode (it stays so), and keep a
    connection to it open for as long as the engine lives.

    oslo.db gives each SQLite transaction a connection of its own
    (NullPool). The last connection to close checkpoints the log into the
    file and deletes it, and the next one makes it anew: milliseconds a
    transaction. One connection that stays open keeps the log, so a
    transaction costs an open and a close of a connection only.
    """
    keeper = engine.raw_connection()
    cursor = keeper.cursor()
    try:
        cursor.execute('PRAGMA journal_mode=WAL')
        # A read opens the log's index, which the keeper then holds.
        cursor.execute('SELECT count(*) FROM sqlite_master').fetchall()
    finally:
        cursor.close()
    keeper.commit()
    return keeper


def _sqlite_begin_immediate(connection):
    """Begin SQLite transactions with the write lock taken.

    oslo.db begins them DEFERRED: a transaction that reads, then writes
    after another connection committed, fails at once with "database is
    locked" instead of waiting out the busy timeout. Taking the lock at
    BEGIN waits for it instead (reader() too: its transactions are short;
    statements in autocommit read meanwhile, as WAL lets them). This
    listener runs after oslo.db's (SQLAlchemy orders a connection event's
    listeners as registered), whose BEGIN has touched nothing yet: that
    transaction is ended and one begun IMMEDIATE; a connection in
    autocommit (statement()) is left in autocommit, as it asked.
    """
    if connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql('COMMIT')
    if connection.get_execution_options().get(
            'isolation_level') != 'AUTOCOMMIT':
        connection.exec_driver_sql('BEGIN IMMEDIATE')


def _mysql_read_committed(dbapi_connection, connection_record):
    """PostgreSQL's default, on MySQL and MariaDB. InnoDB's REPEATABLE
    READ would take gap locks in the lease transaction's DELETE of an
    expired lease, and two acquirers of a free console would deadlock on
    their INSERTs instead of one meeting the unique constraint."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(
            'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED')
    finally:
        cursor.close()


def _on_engine_create(engine):
    backend = engine.dialect.name
    if backend == 'sqlite':
        sa.event.listen(engine, 'connect', _sqlite_synced_at_checkpoints)
        sa.event.listen(engine, 'begin', _sqlite_begin_immediate)
    elif backend == 'mysql':
        sa.event.listen(engine, 'connect', _mysql_read_committed)
    # oslo.db has connected once to check the server; that connection
    # predates the listeners above.
    engine.dispose()


class Database:
    """One engine and its transactions, over [database] connection."""

    def __init__(self, url, pool_size=None):
        """pool_size: connections kept for the threads that use them at
        once (oslo.db's [database] max_pool_size and max_overflow
        otherwise); never more are opened."""
        self.url = sa.engine.make_url(url)
        if self.url.get_backend_name() == 'sqlite' and self.url.database:
            os.makedirs(os.path.dirname(os.path.abspath(
                self.url.database)), exist_ok=True)
        self._facade = enginefacade.transaction_context()
        # thread_checkin yields the CPU (time.sleep(0)) whenever a
        # connection goes back to the pool, for eventlet's green threads;
        # this process runs OS threads, and would only wait.
        settings = {'connection': url, 'thread_checkin': False}
        if pool_size and self.url.get_backend_name() != 'sqlite':
            settings.update(max_pool_size=pool_size, max_overflow=0)
        self._facade.configure(**settings)
        self._facade.append_on_engine_create(_on_engine_create)
        if self.url.get_backend_name() == 'sqlite' and self.url.database:
            self._facade.append_on_engine_create(self._keep_write_ahead)
        self._wal_keeper = None

    def _keep_write_ahead(self, engine):
        self._wal_keeper = _sqlite_write_ahead(engine)

    @property
    def engine(self):
        """The engine; made (and the server first reached, [database]
        max_retries times) on first use."""
        with _unreachable_is_unavailable():
            return self._facade.writer.get_engine()

    def sync(self):
        """Bring the schema to the revision this code needs."""
        migration.upgrade(self.engine)

    def check_schema(self):
        """Fail clearly when `serialproxy-manage db sync` is due."""
        at, needed = migration.current(self.engine), migration.head()
        if at != needed:
            raise RuntimeError(
                'database schema is at revision %s, this code needs %s; '
                'run "serialproxy-manage db sync"' % (at or 'none', needed))

    @contextlib.contextmanager
    def reader(self):
        """A Core connection in a transaction that only reads."""
        with _unreachable_is_unavailable():
            with self._facade.reader.connection.using(_Context()) as conn:
                yield conn

    @contextlib.contextmanager
    def connection(self):
        """A writing transaction without the ORM, for the statements of
        every console URL: a third of the CPU of an ORM session's."""
        with _unreachable_is_unavailable():
            with self._facade.writer.connection.using(_Context()) as conn:
                yield conn

    @contextlib.contextmanager
    def session(self):
        """A writing transaction with an ORM session. Return rows, not
        model instances: execute selects of the model's __table__."""
        with _unreachable_is_unavailable():
            with self._facade.writer.using(_Context()) as session:
                yield session

    @contextlib.contextmanager
    def statement(self):
        """A connection for one statement, atomic on its own: committed
        as it runs, without a round trip for BEGIN and COMMIT where
        turning autocommit on is itself free (not MySQL's drivers).
        enginefacade always begins a transaction, so this takes the
        facade's engine directly; oslo.db's error translation is the
        engine's and holds here too."""
        if self.url.get_backend_name() == 'mysql':
            with self.connection() as connection:
                yield connection
            return
        with _unreachable_is_unavailable():
            with self.engine.connect().execution_options(
                    isolation_level='AUTOCOMMIT') as connection:
                yield connection

    # Tokens

    def add_token(self, **values):
        with self.statement() as connection:
            connection.execute(sa.insert(models.ConsoleToken), values)

    def get_token(self, token_hash):
        tokens = models.ConsoleToken.__table__
        with self.reader() as connection:
            return connection.execute(sa.select(tokens).where(
                tokens.c.token_hash == token_hash)).first()

    def delete_tokens(self, instance_uuid, compute_host=None):
        """Revoke an instance's tokens and one-time SSH keys; return how
        many tokens went."""
        query = sa.delete(models.ConsoleToken).where(
            models.ConsoleToken.instance_uuid == instance_uuid)
        keys = sa.delete(models.ConsoleSSHKey).where(
            models.ConsoleSSHKey.instance_uuid == instance_uuid)
        if compute_host is not None:
            query = query.where(
                models.ConsoleToken.compute_host == compute_host)
            keys = keys.where(
                models.ConsoleSSHKey.compute_host == compute_host)
        with self.connection() as connection:
            connection.execute(keys)
            return connection.execute(query).rowcount

    def delete_token(self, token_hash):
        with self.connection() as connection:
            connection.execute(sa.delete(models.ConsoleToken).where(
                models.ConsoleToken.token_hash == token_hash))

    # One-time SSH keys

    def add_ssh_key(self, **values):
        with self.connection() as connection:
            connection.execute(sa.insert(models.ConsoleSSHKey), values)

    def find_ssh_key(self, instance_uuid, serial_index, fingerprint, now):
        """The live key with that fingerprint for that console, or None."""
        keys = models.ConsoleSSHKey.__table__
        with self.reader() as connection:
            return connection.execute(sa.select(keys).where(
                keys.c.fingerprint == fingerprint,
                keys.c.instance_uuid == instance_uuid,
                keys.c.serial_index == serial_index,
                keys.c.expires_at > now).order_by(
                    keys.c.created_at).limit(1)).first()

    def delete_ssh_key(self, key_id):
        """Use a key up; False when another session used it first."""
        with self.connection() as connection:
            return bool(connection.execute(sa.delete(
                models.ConsoleSSHKey).where(
                    models.ConsoleSSHKey.id == key_id)).rowcount)

    @_retry_on_deadlock
    def claim_ssh_key(self, instance_uuid, serial_index, fingerprint, now,
                      token_hash):
        """Use up a live key at sign-in: the key becomes a token (of
        token_hash) for the console it opens, in one transaction.

        Returns the key's row, or None when no live key matches. The
        DELETE's row count decides between racing sign-ins with one key
        (the loser's DELETE waits for the winner's and finds no row, on
        every backend), so exactly one of them gets the token.
        """
        keys = models.ConsoleSSHKey.__table__
        with self.connection() as connection:
            for key in connection.execute(sa.select(keys).where(
                    keys.c.fingerprint == fingerprint,
                    keys.c.instance_uuid == instance_uuid,
                    keys.c.serial_index == serial_index,
                    keys.c.expires_at > now).order_by(
                        keys.c.created_at)).all():
                if not connection.execute(sa.delete(keys).where(
                        keys.c.id == key.id)).rowcount:
                    continue
                connection.execute(
                    sa.insert(models.ConsoleToken),
                    {'token_hash': token_hash,
                     'instance_uuid': key.instance_uuid,
                     'console_type': 'serial',
                     'compute_host': key.compute_host,
                     'host': key.host, 'port': key.port,
                     'serial_index': key.serial_index,
                     'created_at': now, 'user_id': key.user_id,
                     'project_id': key.project_id,
                     'modes': key.modes,
                     'expires_at': key.expires_at})
                return key
            return None

    def delete_contradicted_tokens(self, compute_host, consoles,
                                   instance_uuid=None):
        """Drop the tokens of compute_host its report says are stale.

        consoles maps each instance the host has to the set of its
        (serial index, port) pairs, or to None when the report does not
        say (an older agent): its tokens are kept. A token of an instance
        the host no longer has, or naming a port the instance no longer
        has, is deleted. With instance_uuid, only that instance's tokens
        are looked at. Returns the number deleted.
        """
        query = sa.select(
            models.ConsoleToken.token_hash,
            models.ConsoleToken.instance_uuid,
            models.ConsoleToken.serial_index,
            models.ConsoleToken.port).where(
                models.ConsoleToken.compute_host == compute_host)
        if instance_uuid is not None:
            query = query.where(
                models.ConsoleToken.instance_uuid == instance_uuid)
        with self.connection() as connection:
            doomed = []
            for token_hash, uuid, index, port in connection.execute(query):
                if uuid not in consoles:
                    doomed.append(token_hash)
                elif (consoles[uuid] is not None and
                        (index, port) not in consoles[uuid]):
                    doomed.append(token_hash)
            for start in range(0, len(doomed), _BATCH):
                connection.execute(sa.delete(models.ConsoleToken).where(
                    models.ConsoleToken.token_hash.in_(
                        doomed[start:start + _BATCH])))
        return len(doomed)

    def delete_expired_tokens(self, now):
        with self.connection() as connection:
            connection.execute(sa.delete(models.ConsoleSSHKey).where(
                models.ConsoleSSHKey.expires_at <= now))
            return connection.execute(
                sa.delete(models.ConsoleToken).where(
                    models.ConsoleToken.expires_at <= now)).rowcount

    # Session leases

    @_retry_on_deadlock
    def lease_consoles(self, requests, now):
        """Check tokens and lease their consoles, in one transaction.

        requests is a list of (token_hash, lease): lease holds the
        session's own columns (id, remote_address, proxy_host,
        started_at, expires_at); the token gives the rest. Returns, in
        order, (token, True, None) for a new lease, (token, False,
        holder_started_at) when a live lease holds the console
        (holder_started_at is None when the holder left meanwhile),
        (None, False, None) for a token that is unknown or expired, and
        (token, False, None) for a watch-only token, which never holds
        the writer's seat.

        The expired leases of the asked consoles are dropped and the new
        ones inserted with ON CONFLICT DO NOTHING (INSERT IGNORE on
        MySQL): the unique (instance, index) constraint decides between
        racing acquirers, in this batch and in other processes, and
        nothing is read to find out whether a console is free. Inserts go
        in console order, so that concurrent batches lock in one order; a
        deadlock or serialization failure is retried.
        """
        with self.connection() as connection:
            return self._lease_consoles(connection, requests, now)

    def _lease_consoles(self, connection, requests, now):
        tokens = models.ConsoleToken.__table__
        leases = models.SessionLease.__table__
        live = {row.token_hash: row for row in connection.execute(
            self._current_tokens(now).where(
                tokens.c.token_hash.in_({h for h, _ in requests})))}
        rows = {}
        for number, (token_hash, lease) in enumerate(requests):
            token = live.get(token_hash)
            # A watch-only token never takes the writer's seat: no lease
            # row, and the caller sees its token without one.
            if token is not None and \
                    not tokens_rules.is_watch_only(token.modes):
                rows[number] = {
                    'bytes_to_guest': 0, 'bytes_to_client': 0, **lease,
                    'instance_uuid': token.instance_uuid,
                    'serial_index': token.serial_index,
                    'token_hash': token_hash, 'user_id': token.user_id,
                    'project_id': token.project_id}
        consoles = sorted({(r['instance_uuid'], r['serial_index'])
                           for r in rows.values()})
        if consoles:
            connection.execute(sa.delete(leases).where(
                sa.tuple_(leases.c.instance_uuid,
                          leases.c.serial_index).in_(consoles),
                leases.c.expires_at <= now))
        refused = set()
        for number in sorted(rows, key=lambda n: (
                rows[n]['instance_uuid'], rows[n]['serial_index'])):
            if not connection.execute(self._insert_unless_held(),
                                      rows[number]).rowcount:
                refused.add(number)
        holders = {}
        if refused:
            holders = dict(
                ((uuid, index), started_at)
                for uuid, index, started_at in connection.execute(
                    sa.select(leases.c.instance_uuid, leases.c.serial_index,
                              leases.c.started_at).where(
                        sa.tuple_(leases.c.instance_uuid,
                                  leases.c.serial_index).in_(
                            {(rows[n]['instance_uuid'],
                              rows[n]['serial_index']) for n in refused}),
                        leases.c.seat == models.WRITER_SEAT)))
        results = []
        for number, (token_hash, _) in enumerate(requests):
            if number not in rows:
                results.append((live.get(token_hash), False, None))
            elif number in refused:
                row = rows[number]
                results.append((live[token_hash], False, holders.get(
                    (row['instance_uuid'], row['serial_index']))))
            else:
                results.append((live[token_hash], True, None))
        return results

    @staticmethod
    def _current_tokens(now):
        """A SELECT of the live tokens whose console is still where they
        say: their instance is registered on their compute host and, when
        its agent reports ports, has their port at their serial index
        (a port last reported for another instance is no longer its).

        A port that went to another guest while the revoke for the old
        one was lost (CVE-2013-0335) then opens nothing, without asking
        the agent: the check is part of the lease's own statement.
        """
        tokens = models.ConsoleToken.__table__
        instances = models.Instance.__table__
        consoles = models.InstanceConsole.__table__
        allocated = sa.exists().where(
            consoles.c.instance_uuid == tokens.c.instance_uuid,
            consoles.c.serial_index == tokens.c.serial_index,
            consoles.c.port == tokens.c.port)
        return sa.select(tokens).select_from(tokens.join(
            instances, sa.and_(
                instances.c.uuid == tokens.c.instance_uuid,
                instances.c.host == tokens.c.compute_host))).where(
            tokens.c.expires_at > now,
            sa.or_(instances.c.consoles_known == sa.false(), allocated))

    def _insert_unless_held(self):
        """An INSERT of a lease that does nothing if its console is held
        (its values are the parameters of its execution)."""
        table = models.SessionLease.__table__
        backend = self.url.get_backend_name()
        if backend == 'postgresql':
            return postgresql.insert(table).on_conflict_do_nothing()
        if backend == 'sqlite':
            return sqlite.insert(table).on_conflict_do_nothing()
        # MySQL and MariaDB: a duplicate key becomes a warning, 0 rows.
        return sa.insert(table).prefix_with('IGNORE')

    def _live_token(self, connection, token_hash, now, mode):
        """The live token row, None if unknown or expired; ModeNotAllowed
        when its URL was not issued for mode."""
        tokens = models.ConsoleToken.__table__
        token = connection.execute(self._current_tokens(now).where(
            tokens.c.token_hash == token_hash)).first()
        if token is None:
            return None
        allowed = tokens_rules.modes_of(token.modes)
        if mode == 'take_over' and tokens_rules.WRITE not in allowed:
            # take_over takes the writer's seat: it needs write too.
            raise exception.ModeNotAllowed(mode=mode, watch_only=True)
        if mode not in allowed:
            raise exception.ModeNotAllowed(mode=mode)
        return token

    @staticmethod
    def _lease_row(token, token_hash, lease, **seat):
        return {'bytes_to_guest': 0, 'bytes_to_client': 0, **lease, **seat,
                'instance_uuid': token.instance_uuid,
                'serial_index': token.serial_index,
                'token_hash': token_hash, 'user_id': token.user_id,
                'project_id': token.project_id}

    def _live_writer(self, connection, token, now):
        leases = models.SessionLease.__table__
        return connection.execute(sa.select(leases).where(
            leases.c.instance_uuid == token.instance_uuid,
            leases.c.serial_index == token.serial_index,
            leases.c.seat == models.WRITER_SEAT,
            leases.c.expires_at > now)).first()

    def add_spectator(self, token_hash, lease, now, max_spectators):
        """Seat a spectator beside a console's live writer.

        Returns (token, writer) with the writer's lease row; raises
        ConsoleNotInUse without a writer, TooManySpectators at the cap,
        ModeNotAllowed when the token does not allow watching. Token
        None: unknown or expired. The count and the insert are one
        transaction; racing spectators may pass the cap by the few that
        raced, which bounds nothing important.
        """
        leases = models.SessionLease.__table__
        with self.connection() as connection:
            token = self._live_token(connection, token_hash, now, 'view')
            if token is None:
                return None, None
            writer = self._live_writer(connection, token, now)
            if writer is None:
                raise exception.ConsoleNotInUse()
            watching = connection.scalar(sa.select(sa.func.count()).where(
                leases.c.instance_uuid == token.instance_uuid,
                leases.c.serial_index == token.serial_index,
                leases.c.seat != models.WRITER_SEAT,
                leases.c.expires_at > now))
            if watching >= max_spectators:
                raise exception.TooManySpectators(limit=max_spectators)
            connection.execute(sa.insert(leases).values(self._lease_row(
                token, token_hash, lease, mode='view', seat=lease['id'])))
            return token, writer

    def take_over_console(self, token_hash, lease, now):
        """Make a new session the console's writer, in one transaction.

        The writer's lease (live or expired) is deleted and the new one
        inserted together, so no third session can slip in between; of
        two racing take-overs the unique constraint lets one win and the
        other gets ConsoleInUse. Returns (token, replaced) with the
        replaced lease row or None; token None: unknown or expired.
        """
        leases = models.SessionLease.__table__
        with self.connection() as connection:
            token = self._live_token(connection, token_hash, now, 'take_over')
            if token is None:
                return None, None
            replaced = self._live_writer(connection, token, now)
            connection.execute(sa.delete(leases).where(
                leases.c.instance_uuid == token.instance_uuid,
                leases.c.serial_index == token.serial_index,
                leases.c.seat == models.WRITER_SEAT))
            row = self._lease_row(token, token_hash, lease, mode='take_over')
            if not connection.execute(self._insert_unless_held(),
                                      row).rowcount:
                raise exception.ConsoleInUse.since_epoch(now)
            return token, replaced

    def renew_sessions(self, proxy_host, reports, expires_at):
        """Extend the leases of live sessions; return ids no longer held."""
        held = set()
        with self.connection() as connection:
            for start in range(0, len(reports), _BATCH):
                batch = reports[start:start + _BATCH]
                ids = [r['id'] for r in batch]
                held.update(connection.scalars(sa.select(
                    models.SessionLease.id).where(
                        models.SessionLease.id.in_(ids),
                        models.SessionLease.proxy_host == proxy_host)))
                rows = [{'b_id': r['id'], 'expires_at': expires_at,
                         'bytes_to_guest': r.get('bytes_to_guest', 0),
                         'bytes_to_client': r.get('bytes_to_client', 0)}
                        for r in batch if r['id'] in held]
                if rows:
                    connection.execute(
                        sa.update(models.SessionLease).where(
                            models.SessionLease.id == sa.bindparam('b_id')
                        ).values(expires_at=sa.bindparam('expires_at'),
                                 bytes_to_guest=sa.bindparam(
                                     'bytes_to_guest'),
                                 bytes_to_client=sa.bindparam(
                                     'bytes_to_client')), rows)
        return [r['id'] for r in reports if r['id'] not in held]

    def delete_sessions(self, instance_uuid=None, session_ids=None,
                        with_tokens=False):
        """Delete leases, of an instance or by id; return the ids deleted.

        with_tokens: revoke the tokens those sessions were opened with
        too, in the same transaction, so that their URLs cannot open a
        new session (an operator's force-disconnect). Other tokens of the
        instance stay.
        """
        table = models.SessionLease.__table__
        which = []
        if instance_uuid is not None:
            which.append(table.c.instance_uuid == instance_uuid)
        if session_ids is not None:
            which.append(table.c.id.in_(session_ids))
        if with_tokens:
            return self._delete_sessions_and_tokens(table, which)
        if self.engine.dialect.delete_returning:
            # Every ended session is one: one statement, not two.
            with self.statement() as connection:
                return list(connection.scalars(sa.delete(table).where(
                    *which).returning(table.c.id)))
        with self.connection() as connection:
            ids = list(connection.scalars(sa.select(table.c.id).where(
                *which)))
            if ids:
                connection.execute(sa.delete(table).where(
                    table.c.id.in_(ids)))
        return ids

    def _delete_sessions_and_tokens(self, table, which):
        tokens = models.ConsoleToken.__table__
        with self.connection() as connection:
            rows = connection.execute(sa.select(
                table.c.id, table.c.token_hash).where(*which)).all()
            if rows:
                connection.execute(sa.delete(table).where(
                    table.c.id.in_([row.id for row in rows])))
                connection.execute(sa.delete(tokens).where(
                    tokens.c.token_hash.in_(
                        {row.token_hash for row in rows})))
        return [row.id for row in rows]

    def list_sessions(self, now, instance_uuid=None):
        leases = models.SessionLease.__table__
        query = sa.select(leases).where(
            leases.c.expires_at > now).order_by(leases.c.started_at)
        if instance_uuid is not None:
            query = query.where(leases.c.instance_uuid == instance_uuid)
        with self.reader() as connection:
            return connection.execute(query).all()

    def extend_leases_expired_between(self, start, end, expires_at):
        """Give leases that expired in (start, end] a new expiry; return
        how many."""
        with self.connection() as connection:
            return connection.execute(
                sa.update(models.SessionLease).where(
                    models.SessionLease.expires_at > start,
                    models.SessionLease.expires_at <= end).values(
                        expires_at=expires_at)).rowcount

    def delete_expired_sessions(self, now):
        with self.connection() as connection:
            return connection.execute(
                sa.delete(models.SessionLease).where(
                    models.SessionLease.expires_at <= now)).rowcount

    # Instance registry

    @_racing_writers_retried
    def replace_host_instances(self, host, instances, now):
        """Make the registry of host exactly the reported instances."""
        reported = {i['uuid']: i for i in instances}
        table = models.Instance.__table__
        with self.connection() as connection:
            gone = sa.select(table.c.uuid).where(
                table.c.host == host, table.c.uuid.not_in(list(reported)))
            connection.execute(sa.delete(models.InstanceConsole).where(
                models.InstanceConsole.instance_uuid.in_(gone)))
            connection.execute(sa.delete(table).where(
                table.c.host == host, table.c.uuid.not_in(list(reported))))
            known = set(connection.scalars(sa.select(table.c.uuid).where(
                table.c.uuid.in_(list(reported)))))
            for uuid, values in reported.items():
                self._record_instance(connection, uuid, uuid in known, host,
                                      values, now)

    @staticmethod
    def _record_instance(connection, uuid, known, host, values, now):
        """Set an instance's registry row (inserted unless known) and
        serial ports as host reports them (ports unknown when the report
        has no 'consoles').

        A port of a host belongs to the instance last reported with it:
        another instance of the host that the registry still has on it
        (its revoke or its own report lost) loses it here.
        """
        instances = models.Instance.__table__
        consoles = values.get('consoles')
        row = {field: values.get(field) for field in INSTANCE_FIELDS[1:]}
        row.update(host=host, updated_at=now,
                   consoles_known=consoles is not None)
        if known:
            connection.execute(sa.update(instances).where(
                instances.c.uuid == uuid).values(row))
        else:
            connection.execute(sa.insert(instances).values(uuid=uuid, **row))
        table = models.InstanceConsole.__table__
        connection.execute(sa.delete(table).where(
            table.c.instance_uuid == uuid))
        if not consoles:
            return
        connection.execute(sa.delete(table).where(
            table.c.port.in_({c['port'] for c in consoles}),
            table.c.instance_uuid.in_(sa.select(instances.c.uuid).where(
                instances.c.host == host))))
        connection.execute(sa.insert(table), [
            {'instance_uuid': uuid, 'serial_index': c['index'],
             'port': c['port']} for c in consoles])

    @_racing_writers_retried
    def update_host_instance(self, host, values, now):
        """Record one instance as host reports it.

        A host that reports an instance not running does not take it from
        the host that holds it: during a migration the source's 'stopped'
        comes after the destination's 'started'.
        """
        instances = models.Instance.__table__
        with self.connection() as connection:
            holder = connection.scalar(sa.select(instances.c.host).where(
                instances.c.uuid == values['uuid']))
            if holder not in (None, host) and \
                    values.get('state') != 'running':
                return
            self._record_instance(connection, values['uuid'],
                                  holder is not None, host, values, now)

    def delete_host_instance(self, host, uuid):
        """Forget an instance, unless another host has it by now."""
        with self.connection() as connection:
            deleted = connection.execute(
                sa.delete(models.Instance).where(
                    models.Instance.uuid == uuid,
                    models.Instance.host == host)).rowcount
            if deleted:
                connection.execute(sa.delete(models.InstanceConsole).where(
                    models.InstanceConsole.instance_uuid == uuid))
            return deleted

    def get_instance(self, uuid):
        """The registry's row (read-only: its fields), or None."""
        table = models.Instance.__table__
        with self.statement() as connection:
            return connection.execute(sa.select(table).where(
                table.c.uuid == uuid)).first()

    def list_instances(self, host=None):
        table = models.Instance.__table__
        query = sa.select(table).order_by(table.c.name)
        if host is not None:
            query = query.where(table.c.host == host)
        with self.reader() as connection:
            return connection.execute(query).all()

    # Console access switches (serialproxy/consoleauth/access.py)

    def get_access(self, level, target):
        """The value set for one level's target, or None when unset."""
        table = models.ConsoleAccess.__table__
        with self.statement() as connection:
            return connection.scalar(sa.select(table.c.value).where(
                table.c.level == level, table.c.target == target))

    def set_access(self, level, target, value, now, updated_by=None):
        """Set (value None: unset) one level's switch; return the value
        it had. Two callers setting the same target at once: the second
        insert meets the primary key and is tried again, as an update."""
        table = models.ConsoleAccess.__table__
        for attempt in range(2):
            try:
                with self.connection() as connection:
                    old = connection.scalar(sa.select(table.c.value).where(
                        table.c.level == level, table.c.target == target))
                    if value is None:
                        connection.execute(sa.delete(table).where(
                            table.c.level == level,
                            table.c.target == target))
                    elif old is None:
                        connection.execute(sa.insert(table).values(
                            level=level, target=target, value=value,
                            updated_at=now, updated_by=updated_by))
                    else:
                        connection.execute(sa.update(table).where(
                            table.c.level == level,
                            table.c.target == target).values(
                                value=value, updated_at=now,
                                updated_by=updated_by))
                    return old
            except sa_exc.IntegrityError:
                if attempt:
                    raise

    def list_access(self, level):
        """The switches set at one level, by target."""
        table = models.ConsoleAccess.__table__
        with self.statement() as connection:
            return list(connection.execute(sa.select(table).where(
                table.c.level == level).order_by(table.c.target)))

    def access_of_instances(self, instance_uuids=None, project_id=None):
        """(uuid, project_id, server value, project value) of registered
        instances: those listed, or a project's, or all of them."""
        instances = models.Instance.__table__
        access = models.ConsoleAccess.__table__
        server = access.alias('server_access')
        project = access.alias('project_access')
        query = sa.select(
            instances.c.uuid, instances.c.project_id,
            server.c.value.label('server_value'),
            project.c.value.label('project_value')).select_from(
            instances.outerjoin(server, sa.and_(
                server.c.level == 'server',
                server.c.target == instances.c.uuid)).outerjoin(
                project, sa.and_(
                    project.c.level == 'project',
                    project.c.target == instances.c.project_id)))
        if instance_uuids is not None:
            query = query.where(instances.c.uuid.in_(set(instance_uuids)))
        if project_id is not None:
            query = query.where(instances.c.project_id == project_id)
        with self.statement() as connection:
            return list(connection.execute(query))

    def end_console_access(self, instance_uuids):
        """Delete the leases and one-time SSH keys of these instances, in
        one transaction; return (session ids deleted, keys deleted)."""
        leases = models.SessionLease.__table__
        keys = models.ConsoleSSHKey.__table__
        uuids = set(instance_uuids)
        if not uuids:
            return [], 0
        with self.connection() as connection:
            ids = list(connection.scalars(sa.select(leases.c.id).where(
                leases.c.instance_uuid.in_(uuids))))
            if ids:
                connection.execute(sa.delete(leases).where(
                    leases.c.id.in_(ids)))
            dropped = connection.execute(sa.delete(keys).where(
                keys.c.instance_uuid.in_(uuids))).rowcount
        return ids, dropped


def instance_to_dict(row):
    return {field: getattr(row, field) for field in INSTANCE_FIELDS}


def session_to_dict(row):
    values = {field: getattr(row, field) for field in SESSION_FIELDS}
    values['index'] = values.pop('serial_index')
    values['transport'] = values['transport'] or 'websocket'
    return values
