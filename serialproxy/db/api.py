"""Database access for consoleauth, the only service with a database."""

import contextlib
import os
import sqlite3

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy import orm

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
# Attempts at a lease transaction that deadlocked.
_RETRIES = 5
# Deadlock and lock-timeout errors: MySQL/MariaDB error numbers and
# PostgreSQL SQLSTATEs (and SQLite's "database is locked").
_MYSQL_DEADLOCKS = (1205, 1213)
_PG_DEADLOCKS = ('40001', '40P01')
# MySQL/MariaDB client errors that mean the server cannot be reached: can't
# connect (local, TCP), gone away, lost during a query, server shutdown.
_MYSQL_UNREACHABLE = (2002, 2003, 2006, 2013, 1053)


def _is_deadlock(exc):
    orig = exc.orig
    if getattr(orig, 'pgcode', None) in _PG_DEADLOCKS:
        return True
    if isinstance(orig, sqlite3.OperationalError):
        # Another writer held the file for all of SQLite's busy timeout.
        return 'locked' in str(orig)
    args = getattr(orig, 'args', ())
    return bool(args) and args[0] in _MYSQL_DEADLOCKS


def _is_unreachable(exc):
    """Whether a DBAPI error says the server cannot be reached now (a
    restart, a network cut) rather than that a statement went wrong."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.Error) or _is_deadlock(exc):
        return False
    pgcode = getattr(orig, 'pgcode', None)
    if pgcode:
        # Connection exceptions, and the server shutting down or starting.
        return pgcode.startswith(('08', '57P'))
    args = getattr(orig, 'args', ())
    if args and isinstance(args[0], int):
        return args[0] in _MYSQL_UNREACHABLE
    # psycopg2 refusing a connection carries no SQLSTATE.
    return isinstance(exc, sa_exc.OperationalError)


def _sqlite_write_ahead(dbapi_connection, connection_record):
    """SQLite with a write-ahead log, synced at checkpoints.

    In its default rollback journal every commit waits for several fsyncs
    (milliseconds on a disk, each console URL and session a commit);
    with WAL and synchronous=NORMAL a commit is a write to the log. It
    survives consoleauth crashing; a crash of the whole machine may undo
    the last commits (tokens and leases of a few seconds), which their
    holders then ask for again.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA synchronous=NORMAL')
    finally:
        cursor.close()


@contextlib.contextmanager
def _unreachable_is_unavailable():
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        if _is_unreachable(exc):
            raise exception.DatabaseUnavailable() from exc
        raise


class Database:
    """One engine and its sessions, over [database] connection."""

    def __init__(self, url, pool_size=None):
        """pool_size: connections kept for the threads that use them at
        once (SQLAlchemy's default 5, with 10 more on demand, otherwise);
        never more are opened."""
        self.url = sa.engine.make_url(url)
        connect_args = {}
        engine_args = {}
        if pool_size and self.url.get_backend_name() != 'sqlite':
            engine_args.update(pool_size=pool_size, max_overflow=0)
        if self.url.get_backend_name() == 'mysql':
            # PostgreSQL's default. InnoDB's REPEATABLE READ would take gap
            # locks in the lease transaction's DELETE of an expired lease,
            # and two acquirers of a free console would deadlock on their
            # INSERTs instead of one meeting the unique constraint.
            engine_args['isolation_level'] = 'READ COMMITTED'
        if self.url.get_backend_name() == 'sqlite':
            # consoleauth answers RPC from a thread pool.
            connect_args['check_same_thread'] = False
            if self.url.database:
                os.makedirs(os.path.dirname(os.path.abspath(
                    self.url.database)), exist_ok=True)
        # A server's connection may have gone away since it was pooled
        # (a restart); a file has no connection to lose.
        self.engine = sa.create_engine(
            self.url, connect_args=connect_args,
            pool_pre_ping=self.url.get_backend_name() != 'sqlite',
            **engine_args)
        if self.url.get_backend_name() == 'sqlite':
            sa.event.listen(self.engine, 'connect', _sqlite_write_ahead)
        self._sessionmaker = orm.sessionmaker(bind=self.engine,
                                              expire_on_commit=False)

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
    def session(self):
        """A transaction; a server that cannot be reached is
        DatabaseUnavailable (503 to users, not an internal error)."""
        with _unreachable_is_unavailable():
            with self._sessionmaker.begin() as session:
                yield session

    @contextlib.contextmanager
    def connection(self):
        """A transaction without the ORM, for the statements of every
        console URL: a third of the CPU of an ORM session's."""
        with _unreachable_is_unavailable():
            with self.engine.begin() as connection:
                yield connection

    @contextlib.contextmanager
    def statement(self):
        """A connection for one statement, atomic on its own: committed
        as it runs, without a round trip for BEGIN and COMMIT where
        turning autocommit on is itself free (not MySQL's drivers)."""
        if self.engine.dialect.name == 'mysql':
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
        with self.session() as session:
            return session.get(models.ConsoleToken, token_hash)

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
        with self.session() as session:
            session.execute(keys)
            return session.execute(query).rowcount

    def delete_token(self, token_hash):
        with self.session() as session:
            session.execute(sa.delete(models.ConsoleToken).where(
                models.ConsoleToken.token_hash == token_hash))

    # One-time SSH keys

    def add_ssh_key(self, **values):
        with self.session() as session:
            session.add(models.ConsoleSSHKey(**values))

    def find_ssh_key(self, instance_uuid, serial_index, fingerprint, now):
        """The live key with that fingerprint for that console, or None."""
        with self.session() as session:
            return session.scalars(sa.select(models.ConsoleSSHKey).where(
                models.ConsoleSSHKey.fingerprint == fingerprint,
                models.ConsoleSSHKey.instance_uuid == instance_uuid,
                models.ConsoleSSHKey.serial_index == serial_index,
                models.ConsoleSSHKey.expires_at > now).order_by(
                    models.ConsoleSSHKey.created_at).limit(1)).first()

    def delete_ssh_key(self, key_id):
        """Use a key up; False when another session used it first."""
        with self.session() as session:
            return bool(session.execute(sa.delete(
                models.ConsoleSSHKey).where(
                    models.ConsoleSSHKey.id == key_id)).rowcount)

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
        for attempt in range(_RETRIES):
            try:
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
            except sa_exc.OperationalError as exc:
                if not _is_deadlock(exc) or attempt == _RETRIES - 1:
                    raise

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
        with self.session() as session:
            doomed = []
            for token_hash, uuid, index, port in session.execute(query):
                if uuid not in consoles:
                    doomed.append(token_hash)
                elif (consoles[uuid] is not None and
                        (index, port) not in consoles[uuid]):
                    doomed.append(token_hash)
            for start in range(0, len(doomed), _BATCH):
                session.execute(sa.delete(models.ConsoleToken).where(
                    models.ConsoleToken.token_hash.in_(
                        doomed[start:start + _BATCH])))
        return len(doomed)

    def delete_expired_tokens(self, now):
        with self.session() as session:
            session.execute(sa.delete(models.ConsoleSSHKey).where(
                models.ConsoleSSHKey.expires_at <= now))
            return session.execute(
                sa.delete(models.ConsoleToken).where(
                    models.ConsoleToken.expires_at <= now)).rowcount

    # Session leases

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
        for attempt in range(_RETRIES):
            try:
                with self.connection() as connection:
                    return self._lease_consoles(connection, requests, now)
            except sa_exc.OperationalError as exc:
                if not _is_deadlock(exc) or attempt == _RETRIES - 1:
                    raise

    def _lease_consoles(self, session, requests, now):
        tokens = models.ConsoleToken.__table__
        leases = models.ConsoleSession.__table__
        live = {row.token_hash: row for row in session.execute(
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
            session.execute(sa.delete(leases).where(
                sa.tuple_(leases.c.instance_uuid,
                          leases.c.serial_index).in_(consoles),
                leases.c.expires_at <= now))
        refused = set()
        for number in sorted(rows, key=lambda n: (
                rows[n]['instance_uuid'], rows[n]['serial_index'])):
            if not session.execute(self._insert_unless_held(),
                                   rows[number]).rowcount:
                refused.add(number)
        holders = {}
        if refused:
            holders = dict(
                ((uuid, index), started_at)
                for uuid, index, started_at in session.execute(
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
        table = models.ConsoleSession.__table__
        backend = self.engine.dialect.name
        if backend == 'postgresql':
            return postgresql.insert(table).on_conflict_do_nothing()
        if backend == 'sqlite':
            return sqlite.insert(table).on_conflict_do_nothing()
        # MySQL and MariaDB: a duplicate key becomes a warning, 0 rows.
        return sa.insert(table).prefix_with('IGNORE')

    def _live_token(self, session, token_hash, now, mode):
        """The live token row, None if unknown or expired; ModeNotAllowed
        when its URL was not issued for mode."""
        tokens = models.ConsoleToken.__table__
        token = session.execute(self._current_tokens(now).where(
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

    def _live_writer(self, session, token, now):
        leases = models.ConsoleSession.__table__
        return session.execute(sa.select(leases).where(
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
        leases = models.ConsoleSession.__table__
        with self.session() as session:
            token = self._live_token(session, token_hash, now, 'view')
            if token is None:
                return None, None
            writer = self._live_writer(session, token, now)
            if writer is None:
                raise exception.ConsoleNotInUse()
            watching = session.scalar(sa.select(sa.func.count()).where(
                leases.c.instance_uuid == token.instance_uuid,
                leases.c.serial_index == token.serial_index,
                leases.c.seat != models.WRITER_SEAT,
                leases.c.expires_at > now))
            if watching >= max_spectators:
                raise exception.TooManySpectators(limit=max_spectators)
            session.execute(sa.insert(leases).values(self._lease_row(
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
        leases = models.ConsoleSession.__table__
        with self.session() as session:
            token = self._live_token(session, token_hash, now, 'take_over')
            if token is None:
                return None, None
            replaced = self._live_writer(session, token, now)
            session.execute(sa.delete(leases).where(
                leases.c.instance_uuid == token.instance_uuid,
                leases.c.serial_index == token.serial_index,
                leases.c.seat == models.WRITER_SEAT))
            if not session.execute(self._insert_unless_held(), self._lease_row(
                    token, token_hash, lease, mode='take_over')).rowcount:
                raise exception.ConsoleInUse.since_epoch(now)
            return token, replaced

    def renew_sessions(self, proxy_host, reports, expires_at):
        """Extend the leases of live sessions; return ids no longer held."""
        held = set()
        with self.session() as session:
            for start in range(0, len(reports), _BATCH):
                batch = reports[start:start + _BATCH]
                ids = [r['id'] for r in batch]
                held.update(session.scalars(sa.select(
                    models.ConsoleSession.id).where(
                        models.ConsoleSession.id.in_(ids),
                        models.ConsoleSession.proxy_host == proxy_host)))
                rows = [{'b_id': r['id'], 'expires_at': expires_at,
                         'bytes_to_guest': r.get('bytes_to_guest', 0),
                         'bytes_to_client': r.get('bytes_to_client', 0)}
                        for r in batch if r['id'] in held]
                if rows:
                    session.connection().execute(
                        sa.update(models.ConsoleSession).where(
                            models.ConsoleSession.id == sa.bindparam('b_id')
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
        table = models.ConsoleSession.__table__
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
        query = sa.select(models.ConsoleSession).where(
            models.ConsoleSession.expires_at > now).order_by(
                models.ConsoleSession.started_at)
        if instance_uuid is not None:
            query = query.where(
                models.ConsoleSession.instance_uuid == instance_uuid)
        with self.session() as session:
            return list(session.scalars(query))

    def extend_leases_expired_between(self, start, end, expires_at):
        """Give leases that expired in (start, end] a new expiry; return
        how many."""
        with self.session() as session:
            return session.execute(
                sa.update(models.ConsoleSession).where(
                    models.ConsoleSession.expires_at > start,
                    models.ConsoleSession.expires_at <= end).values(
                        expires_at=expires_at)).rowcount

    def delete_expired_sessions(self, now):
        with self.session() as session:
            return session.execute(
                sa.delete(models.ConsoleSession).where(
                    models.ConsoleSession.expires_at <= now)).rowcount

    # Instance registry

    def replace_host_instances(self, host, instances, now):
        """Make the registry of host exactly the reported instances."""
        reported = {i['uuid']: i for i in instances}
        with self.session() as session:
            gone = sa.select(models.Instance.uuid).where(
                models.Instance.host == host,
                models.Instance.uuid.not_in(list(reported)))
            session.execute(sa.delete(models.InstanceConsole).where(
                models.InstanceConsole.instance_uuid.in_(gone)))
            session.execute(
                sa.delete(models.Instance).where(
                    models.Instance.host == host,
                    models.Instance.uuid.not_in(list(reported))))
            for uuid, values in reported.items():
                row = session.get(models.Instance, uuid)
                if row is None:
                    row = models.Instance(uuid=uuid)
                    session.add(row)
                self._record_instance(session, row, host, values, now)

    @staticmethod
    def _record_instance(session, row, host, values, now):
        """Set an instance's registry row and serial ports as host
        reports them (ports unknown when the report has no 'consoles').

        A port of a host belongs to the instance last reported with it:
        another instance of the host that the registry still has on it
        (its revoke or its own report lost) loses it here.
        """
        for field in INSTANCE_FIELDS[1:]:
            setattr(row, field, values.get(field))
        row.host = host
        row.updated_at = now
        consoles = values.get('consoles')
        row.consoles_known = consoles is not None
        table = models.InstanceConsole.__table__
        session.execute(sa.delete(table).where(
            table.c.instance_uuid == row.uuid))
        if not consoles:
            return
        session.execute(sa.delete(table).where(
            table.c.port.in_({c['port'] for c in consoles}),
            table.c.instance_uuid.in_(sa.select(models.Instance.uuid).where(
                models.Instance.host == host))))
        session.execute(sa.insert(table), [
            {'instance_uuid': row.uuid, 'serial_index': c['index'],
             'port': c['port']} for c in consoles])

    def update_host_instance(self, host, values, now):
        """Record one instance as host reports it.

        A host that reports an instance not running does not take it from
        the host that holds it: during a migration the source's 'stopped'
        comes after the destination's 'started'.
        """
        with self.session() as session:
            row = session.get(models.Instance, values['uuid'])
            if row is None:
                row = models.Instance(uuid=values['uuid'])
                session.add(row)
            elif row.host != host and values.get('state') != 'running':
                return
            self._record_instance(session, row, host, values, now)

    def delete_host_instance(self, host, uuid):
        """Forget an instance, unless another host has it by now."""
        with self.session() as session:
            deleted = session.execute(
                sa.delete(models.Instance).where(
                    models.Instance.uuid == uuid,
                    models.Instance.host == host)).rowcount
            if deleted:
                session.execute(sa.delete(models.InstanceConsole).where(
                    models.InstanceConsole.instance_uuid == uuid))
            return deleted

    def get_instance(self, uuid):
        """The registry's row (read-only: its fields), or None."""
        table = models.Instance.__table__
        with self.statement() as connection:
            return connection.execute(sa.select(table).where(
                table.c.uuid == uuid)).first()

    def list_instances(self, host=None):
        query = sa.select(models.Instance).order_by(models.Instance.name)
        if host is not None:
            query = query.where(models.Instance.host == host)
        with self.session() as session:
            return list(session.scalars(query))


def instance_to_dict(row):
    return {field: getattr(row, field) for field in INSTANCE_FIELDS}


def session_to_dict(row):
    values = {field: getattr(row, field) for field in SESSION_FIELDS}
    values['index'] = values.pop('serial_index')
    values['transport'] = values['transport'] or 'websocket'
    return values
