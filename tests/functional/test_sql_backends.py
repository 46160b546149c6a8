"""The consoleauth database on real PostgreSQL and MariaDB servers.

The same behaviour tests/unit/db checks on SQLite: migrations that match
the models, sub-second times (MariaDB's FLOAT would not keep them), one
winner among concurrent lease acquires, batched renewals.
"""

import testtools

from tests.functional import fixtures as func_fixtures
from tests.unit.db import test_api


class PostgreSQLDatabaseTest(test_api.DatabaseBehaviour, testtools.TestCase):
    def database_url(self):
        return self.useFixture(func_fixtures.SQLDatabase('postgresql')).url


class MariaDBDatabaseTest(test_api.DatabaseBehaviour, testtools.TestCase):
    def database_url(self):
        return self.useFixture(func_fixtures.SQLDatabase('mysql')).url
