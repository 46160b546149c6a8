"""The pools of a process agree with each other by default."""

import fixtures

from serialproxy import conf as sp_conf
from serialproxy.db import api as db_api
from serialproxy import rpc
from serialproxy import service
from tests.unit import base

CONF = sp_conf.CONF


class PoolSizesTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(rpc.cleanup)
        rpc.init(CONF, 'rabbit://guest:guest@127.0.0.1:5672/')
        self.log = self.useFixture(fixtures.FakeLogger(
            name='serialproxy.rpc'))

    def test_by_default_every_sending_thread_has_a_broker_connection(self):
        threads = CONF.executor_thread_pool_size + CONF.console.rpc_workers
        self.assertLessEqual(
            threads, CONF.oslo_messaging_rabbit.rpc_conn_pool_size)
        rpc.check_pool_size(CONF, CONF.console.rpc_workers)
        self.assertEqual('', self.log.output)

    def test_more_threads_than_connections_is_said_at_start(self):
        self.flags(group='console', rpc_workers=40)
        rpc.check_pool_size(CONF, CONF.console.rpc_workers)
        self.assertIn('rpc_conn_pool_size is 48: raise it to 56',
                      self.log.output)

    def test_an_operator_setting_wins_over_ours(self):
        self.flags(executor_thread_pool_size=100)
        self.assertEqual(100, CONF.executor_thread_pool_size)

    def test_consoleauth_keeps_a_connection_per_answering_thread(self):
        # Nothing listens there: oslo.db is not to wait for it at start.
        self.flags(group='database', max_retries=0)
        database = db_api.Database(
            'postgresql+psycopg2://u:p@127.0.0.1:1/sp',
            pool_size=CONF.executor_thread_pool_size + 1)
        self.assertEqual(17, database.engine.pool.size())

    def test_an_operator_database_pool_size_wins_over_ours(self):
        self.flags(group='database', max_retries=0)
        self.assertEqual(17, service._consoleauth_pool_size())
        self.flags(group='database', max_pool_size=30)
        database = db_api.Database(
            'postgresql+psycopg2://u:p@127.0.0.1:1/sp',
            pool_size=service._consoleauth_pool_size())
        self.assertEqual(30, database.engine.pool.size())
