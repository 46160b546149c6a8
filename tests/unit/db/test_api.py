"""The consoleauth database: its migrations and the rules SQL must keep.

DatabaseBehaviour runs here on SQLite and, in tests/functional, on
PostgreSQL and MariaDB, where a FLOAT column or a racy lease would show.
"""

import sqlite3
import threading
import uuid

from alembic import autogenerate
from alembic import migration as alembic_migration
from alembic import script
from oslo_db import exception as db_exc
import sqlalchemy as sa

from serialproxy.db import api as db_api
from serialproxy.db import migration
from serialproxy.db import models
from serialproxy import exception
from tests import racing
from tests.unit import base
from tests.harness import testcase

NOW = 1795000000.0


def _session(instance_uuid, proxy_host='proxy-a', index=0, expires_at=None):
    return {'id': str(uuid.uuid4()), 'instance_uuid': instance_uuid,
            'serial_index': index, 'token_hash': 'f' * 64,
            'user_id': 'u', 'project_id': 'p',
            'remote_address': '192.0.2.7', 'proxy_host': proxy_host,
            'started_at': NOW,
            'expires_at': NOW + 60 if expires_at is None else expires_at,
            'bytes_to_guest': 0, 'bytes_to_client': 0}


class DatabaseBehaviour:
    """Tests for any backend; a subclass's database_url() names one."""

    def database_url(self):
        raise NotImplementedError

    def setUp(self):
        super().setUp()
        self.db = db_api.Database(self.database_url())
        self.addCleanup(self.db.engine.dispose)

    def test_sync_builds_the_schema_the_models_describe(self):
        self.db.sync()
        self.assertEqual(migration.head(), migration.current(self.db.engine))
        self.db.check_schema()
        with self.db.engine.connect() as connection:
            diff = autogenerate.compare_metadata(
                alembic_migration.MigrationContext.configure(connection),
                models.Base.metadata)
        self.assertEqual([], diff)

    def test_sync_twice_changes_nothing(self):
        self.db.sync()
        self.db.add_token(**self._token('a' * 64))
        self.db.sync()
        self.assertIsNotNone(self.db.get_token('a' * 64))

    def test_services_refuse_a_database_that_was_not_synced(self):
        exc = self.assertRaises(RuntimeError, self.db.check_schema)
        self.assertIn('revision none', str(exc))
        self.assertIn('serialproxy-manage db sync', str(exc))

    def test_database_made_before_revisions_is_adopted_with_its_rows(self):
        # The tables as the first revision made them, with no revision.
        migration.upgrade(self.db.engine, migration._FIRST_REVISION)
        with self.db.engine.begin() as connection:
            connection.execute(sa.text('DROP TABLE alembic_version'))
            old_tokens = sa.Table('console_tokens', sa.MetaData(),
                                  autoload_with=connection)
            connection.execute(sa.insert(old_tokens).values(
                self._token('b' * 64)))
        self.db.sync()
        self.assertEqual(migration.head(), migration.current(self.db.engine))
        self.assertIsNotNone(self.db.get_token('b' * 64))

    def test_times_keep_sub_second_precision(self):
        # A 4-byte FLOAT would round this to a multiple of 128 seconds.
        self.db.sync()
        values = self._token('c' * 64)
        values['expires_at'] = NOW + 0.25
        self.db.add_token(**values)
        self.assertEqual(NOW + 0.25, self.db.get_token('c' * 64).expires_at)
        self.assertEqual(0, self.db.delete_expired_tokens(NOW + 0.2))
        self.assertEqual(1, self.db.delete_expired_tokens(NOW + 0.3))

    def _lease_values(self, proxy_host='proxy-a', expires_at=None):
        return {'id': str(uuid.uuid4()), 'remote_address': '192.0.2.7',
                'proxy_host': proxy_host, 'started_at': NOW,
                'expires_at': NOW + 60 if expires_at is None else expires_at}

    def lease(self, token_hash, lease, now):
        """lease_consoles of one request: (token, won, holder_started_at)."""
        return self.db.lease_consoles([(token_hash, lease)], now)[0]

    def test_token_lease_of_many_concurrent_acquirers_has_one_winner(self):
        self.db.sync()
        token = self._token('d' * 64)
        self._issue(token)
        contenders = 12
        leases = [self._lease_values() for _ in range(contenders)]
        results = racing.all_at_once(
            contenders,
            lambda i: self.lease('d' * 64, leases[i], NOW))
        self.assertEqual([], [r for r in results
                              if isinstance(r, Exception)])
        winners = [i for i, (_, won, _) in enumerate(results) if won]
        self.assertEqual(1, len(winners), results)
        winner_id = leases[winners[0]]['id']
        for row, won, holder in results:
            self.assertEqual(token['instance_uuid'], row.instance_uuid)
            if not won:
                self.assertEqual(NOW, holder)
        [lease] = self.db.list_sessions(NOW)
        self.assertEqual((winner_id, token['instance_uuid'], 'd' * 64, 'u'),
                         (lease.id, lease.instance_uuid, lease.token_hash,
                          lease.user_id))

    def _ssh_key(self, fingerprint='SHA256:racing'):
        values = {'id': str(uuid.uuid4()), 'fingerprint': fingerprint,
                  'public_key': 'ssh-ed25519 AAAA', 'instance_uuid':
                  'b5d6a0e4-0c4e-4d51-9d7e-5f0e3a3c1a01',
                  'serial_index': 0, 'compute_host': 'compute-1',
                  'host': '127.0.0.1', 'port': 10001, 'user_id': 'u',
                  'project_id': 'p', 'modes': 'sysrq', 'created_at': NOW,
                  'expires_at': NOW + 60}
        self.db.add_ssh_key(**values)
        return values

    def test_ssh_key_claimed_by_many_concurrent_sign_ins_has_one_winner(
            self):
        self.db.sync()
        key = self._ssh_key()
        contenders = 12
        claims = ['%064x' % i for i in range(contenders)]
        results = racing.all_at_once(
            contenders, lambda i: self.db.claim_ssh_key(
                key['instance_uuid'], 0, key['fingerprint'], NOW,
                claims[i]))
        self.assertEqual([], [r for r in results
                              if isinstance(r, Exception)])
        winners = [i for i, row in enumerate(results) if row is not None]
        self.assertEqual(1, len(winners), results)
        self.assertEqual(key['id'], results[winners[0]].id)
        # The winner's claim is a token for the key's console; no other.
        token = self.db.get_token(claims[winners[0]])
        self.assertEqual((key['instance_uuid'], 10001, 'sysrq',
                          NOW + 60),
                         (token.instance_uuid, token.port, token.modes,
                          token.expires_at))
        self.assertEqual([], [c for i, c in enumerate(claims)
                              if i != winners[0] and
                              self.db.get_token(c) is not None])
        self.assertIsNone(self.db.find_ssh_key(
            key['instance_uuid'], 0, key['fingerprint'], NOW))

    def test_expired_ssh_key_is_not_claimed(self):
        self.db.sync()
        key = self._ssh_key()
        self.assertIsNone(self.db.claim_ssh_key(
            key['instance_uuid'], 0, key['fingerprint'], NOW + 60,
            'f' * 64))
        self.assertIsNone(self.db.get_token('f' * 64))

    def test_token_lease_replaces_an_expired_lease_in_its_transaction(self):
        self.db.sync()
        token = self._token('e' * 64)
        self._issue(token)
        stale = self._lease_values(expires_at=NOW - 1)
        self.assertTrue(self.lease('e' * 64, stale, NOW - 30)[1])
        # Still live a second before it expires: the second user waits.
        _, won, holder = self.lease(
            'e' * 64, self._lease_values('proxy-b'), NOW - 2)
        self.assertEqual((False, NOW), (won, holder))
        fresh = self._lease_values('proxy-b')
        self.assertTrue(self.lease('e' * 64, fresh, NOW)[1])
        self.assertEqual([fresh['id']],
                         [s.id for s in self.db.list_sessions(NOW - 10)])

    def test_token_lease_refuses_unknown_and_expired_tokens(self):
        self.db.sync()
        token = self._token('f' * 64)
        self._issue(token)
        self.assertEqual((None, False, None), self.lease(
            '0' * 64, self._lease_values(), NOW))
        self.assertEqual((None, False, None), self.lease(
            'f' * 64, self._lease_values(), token['expires_at']))
        self.assertEqual([], self.db.list_sessions(NOW))

    def test_one_batch_leases_each_console_once_and_answers_in_order(self):
        self.db.sync()
        free, held, stale = (dict(self._token(c * 64), port=10000 + n)
                             for n, c in enumerate('abc'))
        for token in (free, held, stale):
            self._issue(token)
        holder = self._lease_values('proxy-b')
        self.assertTrue(self.lease('b' * 64, holder, NOW - 5)[1])
        self.assertTrue(self.lease(
            'c' * 64, self._lease_values(expires_at=NOW - 1), NOW - 5)[1])
        asked = [('a' * 64, self._lease_values()),   # free: leased
                 ('0' * 64, self._lease_values()),   # unknown token
                 ('b' * 64, self._lease_values()),   # held by proxy-b
                 ('a' * 64, self._lease_values()),   # leased just above
                 ('c' * 64, self._lease_values())]   # expired: taken over
        results = self.db.lease_consoles(asked, NOW)
        self.assertEqual(
            [(free['instance_uuid'], True, None), (None, False, None),
             (held['instance_uuid'], False, NOW),
             (free['instance_uuid'], False, NOW),
             (stale['instance_uuid'], True, None)],
            [(row and row.instance_uuid, won, since)
             for row, won, since in results])
        self.assertEqual(
            {asked[0][1]['id'], holder['id'], asked[4][1]['id']},
            {s.id for s in self.db.list_sessions(NOW)})

    def test_renewal_in_batches_reports_what_is_no_longer_held(self):
        self.db.sync()
        mine = [_session(str(uuid.uuid4())) for _ in range(600)]
        theirs = _session(str(uuid.uuid4()), proxy_host='proxy-b')
        with self.db.session() as session:
            session.add_all(models.SessionLease(**lease)
                            for lease in mine + [theirs])
        gone = str(uuid.uuid4())
        reports = [{'id': s['id'], 'bytes_to_guest': 3,
                    'bytes_to_client': 2 ** 40} for s in mine]
        reports += [{'id': gone}, {'id': theirs['id']}]
        lost = self.db.renew_sessions('proxy-a', reports, NOW + 600)
        self.assertEqual([gone, theirs['id']], lost)
        live = {s.id: s for s in self.db.list_sessions(NOW + 300)}
        self.assertEqual({s['id'] for s in mine}, set(live))
        self.assertEqual(2 ** 40, live[mine[-1]['id']].bytes_to_client)

    def test_registry_follows_each_host_report(self):
        self.db.sync()
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        row = {'name': 'vm', 'state': 'running', 'project_id': 'p',
               'user_id': 'u'}
        self.db.replace_host_instances(
            'cmp-1', [dict(row, uuid=a), dict(row, uuid=b)], NOW)
        self.db.replace_host_instances('cmp-1', [dict(row, uuid=b)], NOW)
        self.assertEqual([b], [i.uuid for i in self.db.list_instances()])
        self.db.update_host_instance('cmp-2', dict(row, uuid=b), NOW)
        self.assertEqual(0, self.db.delete_host_instance('cmp-1', b))
        self.assertEqual('cmp-2', self.db.get_instance(b).host)

    def _issue(self, token, ports=None):
        """Store a token whose instance its agent reported on the token's
        host with ports ({index: port}; None: the token's own)."""
        if ports is None:
            ports = {token['serial_index']: token['port']}
        self.db.update_host_instance(token['compute_host'], {
            'uuid': token['instance_uuid'], 'name': 'vm',
            'state': 'running', 'consoles': [
                {'index': i, 'port': p} for i, p in ports.items()]}, NOW)
        self.db.add_token(**token)

    def _moved(self, token, ports, host=None):
        """The agent's report of the token's instance with other ports
        (or on another host), its revoke lost."""
        self.db.update_host_instance(host or token['compute_host'], {
            'uuid': token['instance_uuid'], 'name': 'vm',
            'state': 'running', 'consoles': [
                {'index': i, 'port': p} for i, p in ports.items()]}, NOW)

    def test_lease_refuses_a_token_whose_port_is_no_longer_its_consoles(self):
        self.db.sync()
        token = self._token('1' * 64)
        self._issue(token)
        self._moved(token, {0: 10001, 1: 10000})
        self.assertEqual((None, False, None), self.lease(
            '1' * 64, self._lease_values(), NOW))
        self.assertEqual([], self.db.list_sessions(NOW))

    def test_port_reported_for_another_instance_is_no_longer_the_first(self):
        # Only the new guest's report arrived: the old one's was lost.
        self.db.sync()
        old, new, elsewhere = (self._token(c * 64) for c in '89a')
        self._issue(old)
        self._issue(elsewhere)
        self.db.update_host_instance('cmp-2', {
            'uuid': str(uuid.uuid4()), 'name': 'vm', 'state': 'running',
            'consoles': [{'index': 0, 'port': 10000}]}, NOW)
        self._issue(new)
        results = self.db.lease_consoles(
            [(t['token_hash'], self._lease_values())
             for t in (old, new, elsewhere)], NOW)
        self.assertEqual([None, new['instance_uuid'], None],
                         [row and row.instance_uuid for row, _, _ in results])

    def test_lease_refuses_a_token_of_an_instance_on_another_host(self):
        self.db.sync()
        token = self._token('2' * 64)
        self._issue(token)
        self._moved(token, {0: 10000}, host='cmp-2')
        self.assertEqual((None, False, None), self.lease(
            '2' * 64, self._lease_values(), NOW))

    def test_lease_refuses_a_token_of_an_unregistered_instance(self):
        self.db.sync()
        token = self._token('3' * 64)
        self._issue(token)
        self.db.delete_host_instance('cmp-1', token['instance_uuid'])
        self.assertEqual((None, False, None), self.lease(
            '3' * 64, self._lease_values(), NOW))

    def test_lease_checks_only_the_host_of_an_agent_reporting_no_ports(self):
        self.db.sync()
        token = self._token('4' * 64)
        self.db.update_host_instance('cmp-1', {
            'uuid': token['instance_uuid'], 'name': 'vm',
            'state': 'running'}, NOW)
        self.db.add_token(**token)
        self.assertTrue(self.lease('4' * 64, self._lease_values(), NOW)[1])

    def test_lease_of_a_port_still_the_instances_after_a_full_report(self):
        self.db.sync()
        kept, gone = self._token('5' * 64), self._token('6' * 64)
        self._issue(kept)
        self._issue(gone)
        self.db.replace_host_instances('cmp-1', [{
            'uuid': kept['instance_uuid'], 'name': 'vm', 'state': 'running',
            'consoles': [{'index': 0, 'port': 10000}]}], NOW)
        results = self.db.lease_consoles(
            [('5' * 64, self._lease_values()),
             ('6' * 64, self._lease_values())], NOW)
        self.assertEqual([True, False], [won for _, won, _ in results])
        self.assertIsNone(results[1][0])

    def test_spectator_and_take_over_refuse_a_token_whose_port_moved(self):
        self.db.sync()
        token = dict(self._token('7' * 64), modes='take_over view')
        self._issue(token)
        self.assertTrue(self.lease('7' * 64, self._lease_values(), NOW)[1])
        self._moved(token, {0: 10001})
        self.assertEqual((None, None), self.db.add_spectator(
            '7' * 64, self._lease_values(), NOW, 10))
        self.assertEqual((None, None), self.db.take_over_console(
            '7' * 64, self._lease_values(), NOW))

    def test_access_switch_is_set_replaced_and_unset_saying_what_it_was(
            self):
        self.db.sync()
        self.assertIsNone(self.db.set_access('project', 'p', 'disabled',
                                             NOW, updated_by='u'))
        self.assertEqual('disabled', self.db.set_access(
            'project', 'p', 'enabled', NOW + 1))
        self.assertEqual('enabled', self.db.get_access('project', 'p'))
        self.assertIsNone(self.db.get_access('server', 'p'))
        self.db.set_access('project', 'q', 'disabled', NOW)
        self.assertEqual([('p', 'enabled'), ('q', 'disabled')],
                         [(r.target, r.value)
                          for r in self.db.list_access('project')])
        self.assertEqual('enabled', self.db.set_access('project', 'p', None,
                                                       NOW))
        self.assertIsNone(self.db.get_access('project', 'p'))
        self.assertIsNone(self.db.set_access('project', 'p', None, NOW))

    def test_access_of_instances_has_their_project_and_server_switches(
            self):
        self.db.sync()
        uuids = [str(uuid.uuid4()) for _ in range(3)]
        for uuid_, project in zip(uuids, ('p', 'p', 'q')):
            self.db.update_host_instance('cmp-1', {
                'uuid': uuid_, 'name': 'vm', 'state': 'running',
                'project_id': project}, NOW)
        self.db.set_access('project', 'p', 'disabled', NOW)
        self.db.set_access('server', uuids[1], 'enabled', NOW)
        self.db.set_access('server', 'p', 'enabled', NOW)
        rows = {r.uuid: (r.project_id, r.project_value, r.server_value)
                for r in self.db.access_of_instances()}
        self.assertEqual({uuids[0]: ('p', 'disabled', None),
                          uuids[1]: ('p', 'disabled', 'enabled'),
                          uuids[2]: ('q', None, None)}, rows)
        self.assertEqual(
            {uuids[0], uuids[1]},
            {r.uuid for r in self.db.access_of_instances(project_id='p')})
        self.assertEqual(
            [uuids[2]], [r.uuid for r in self.db.access_of_instances(
                instance_uuids=[uuids[2], 'unknown'])])

    def test_ending_access_drops_leases_and_keys_of_those_instances(self):
        self.db.sync()
        key = self._ssh_key()
        off, other = key['instance_uuid'], str(uuid.uuid4())
        leases = [_session(off), _session(off, index=1), _session(other)]
        with self.db.session() as session:
            session.add_all(models.SessionLease(**lease)
                            for lease in leases)
        ended, dropped = self.db.end_console_access([off])
        self.assertEqual({leases[0]['id'], leases[1]['id']}, set(ended))
        self.assertEqual(1, dropped)
        self.assertEqual([leases[2]['id']],
                         [s.id for s in self.db.list_sessions(NOW)])
        self.assertEqual(([], 0), self.db.end_console_access([]))

    @staticmethod
    def _token(token_hash):
        return {'token_hash': token_hash, 'instance_uuid': str(uuid.uuid4()),
                'console_type': 'serial', 'compute_host': 'cmp-1',
                'host': '127.0.0.1', 'port': 10000, 'serial_index': 0,
                'user_id': 'u', 'project_id': 'p', 'created_at': NOW,
                'expires_at': NOW + 600}


class SQLiteDatabaseTest(DatabaseBehaviour, base.TestCase):
    def database_url(self):
        return 'sqlite:///%s/consoleauth.sqlite' % self.state_path

    def test_lease_waits_out_a_writer_longer_than_the_busy_timeout(self):
        self.db.sync()
        token = self._token('a' * 64)
        self._issue(token)
        # Another process's writer holds the file past SQLite's 5 s wait.
        other = sqlite3.connect(self.db.url.database, timeout=0,
                                isolation_level=None,
                                check_same_thread=False)
        self.addCleanup(other.close)
        other.execute('BEGIN IMMEDIATE')
        threading.Timer(6.0, other.execute, ['COMMIT']).start()
        leased, won, _ = self.lease(
            'a' * 64, self._lease_values(), NOW)
        self.assertTrue(won)
        self.assertEqual(token['instance_uuid'], leased.instance_uuid)


class MigrationScriptsTest(testcase.TestCase):
    def test_one_head(self):
        scripts = script.ScriptDirectory.from_config(migration._config())
        self.assertEqual(1, len(scripts.get_heads()))

    def test_column_types_survive_mysql_rendering(self):
        # FLOAT on MySQL is single precision; every time column must be
        # rendered as DOUBLE there.
        from sqlalchemy.dialects import mysql
        times = [column for table in models.Base.metadata.tables.values()
                 for column in table.columns if column.name.endswith('_at')]
        self.assertEqual(8, len(times))
        for column in times:
            self.assertEqual('DOUBLE',
                             column.type.compile(dialect=mysql.dialect()),
                             str(column))


class UnreachableServerTest(base.TestCase):
    def setUp(self):
        super().setUp()
        # At its first use oslo.db tries the server [database] max_retries
        # times, retry_interval apart (a service starting before its
        # database); here the first try is the use itself.
        self.flags(group='database', max_retries=0)

    def test_server_not_answering_is_database_unavailable(self):
        # Nothing listens on port 1: what a restarting server looks like.
        for url in ('postgresql+psycopg2://u:p@127.0.0.1:1/sp',
                    'mysql+pymysql://u:p@127.0.0.1:1/sp'):
            database = db_api.Database(url)
            self.assertRaises(exception.DatabaseUnavailable,
                              database.list_instances)
            self.assertRaises(exception.DatabaseUnavailable,
                              database.add_token,
                              **DatabaseBehaviour._token('e' * 64))

    def test_a_bad_statement_is_not_database_unavailable(self):
        database = db_api.Database('sqlite://')
        # No schema: the table is missing, which is no outage.
        self.assertRaises(db_exc.DBNonExistentTable, database.list_instances)
