"""The consoleauth database on real PostgreSQL and MariaDB servers.

The same behaviour tests/unit/db checks on SQLite: migrations that match
the models, sub-second times (MariaDB's FLOAT would not keep them), one
winner among concurrent lease acquires, batched renewals. And what only
a server with concurrent writers shows: reports of a new instance racing
each other.
"""

import uuid

from tests import racing
from tests.harness import fixtures as func_fixtures
from tests.harness import testcase
from tests.unit.db import test_api

RACERS = 6
ROUNDS = 15


class ConcurrentWriters:

    def test_reports_racing_to_register_a_new_instance_all_succeed(self):
        # The agent's full report (periodic) and its lifecycle event for a
        # domain just defined reach consoleauth's RPC threads together:
        # both find no row, both insert it. The second must update it.
        self.db.sync()
        for round_ in range(ROUNDS):
            instance = {'uuid': str(uuid.uuid4()), 'name': 'vm',
                        'state': 'shutoff',
                        'consoles': [{'index': 0, 'port': 10000 + round_}]}

            def report(i):
                if i % 2:
                    return self.db.replace_host_instances(
                        'compute-1', [instance], 1000.0 + i)
                return self.db.update_host_instance('compute-1', instance,
                                                    1000.0 + i)
            outcomes = racing.all_at_once(RACERS, report)
            self.assertEqual([], [o for o in outcomes
                                  if isinstance(o, Exception)],
                             'round %d' % round_)
            self.assertEqual('compute-1',
                             self.db.get_instance(instance['uuid']).host)


class PostgreSQLDatabaseTest(ConcurrentWriters, test_api.DatabaseBehaviour,
                             testcase.TestCase):
    def database_url(self):
        return self.useFixture(func_fixtures.SQLDatabase('postgresql')).url


class MariaDBDatabaseTest(ConcurrentWriters, test_api.DatabaseBehaviour,
                          testcase.TestCase):
    def database_url(self):
        return self.useFixture(func_fixtures.SQLDatabase('mysql')).url
