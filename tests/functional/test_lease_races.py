"""Racing acquirers of one console, over several consoleauth processes.

Three serialproxy-consoleauth processes share one database on a real
PostgreSQL or MariaDB server and the RPC topic on RabbitMQ; twenty
threads call acquire_session with the same valid token at once, ten
rounds, releasing the winner's lease between rounds. The database's
unique constraint alone decides: exactly one wins every round, every
other caller gets ConsoleInUse, and no call fails otherwise.
"""

import collections

from oslo_config import fixture as config_fixture

from serialproxy import conf as sp_conf
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from serialproxy import exception
from serialproxy import rpc
from tests.harness import fixtures as func_fixtures
from tests import racing
from tests.harness import testcase

PROCESSES = 3
ACQUIRERS = 20
ROUNDS = 10


class LeaseRaceBehaviour:
    database = None

    def setUp(self):
        super().setUp()
        vhost = self.useFixture(func_fixtures.RabbitVhost())
        self.deployment = self.useFixture(func_fixtures.Deployment(
            transport_url=vhost.url, database=self.database))
        self.deployment.run('serialproxy-manage', 'db', 'sync')
        for n in range(PROCESSES):
            label = 'consoleauth-%d' % n
            self.deployment.start('serialproxy-consoleauth', label=label,
                                  DEFAULT={'host': label})
        self.deployment.wait_ready()
        conf = self.useFixture(config_fixture.Config(sp_conf.CONF))
        conf.config(rpc_call_timeout=30)
        rpc.init(sp_conf.CONF, transport_url=vhost.url)
        self.addCleanup(rpc.cleanup)
        self.consoleauth = consoleauth_rpcapi.ConsoleAuthAPI()

    def race(self, token):
        return racing.all_at_once(
            ACQUIRERS, lambda i: self.consoleauth.acquire_session(
                {}, token, 'proxy-%d' % i, '192.0.2.%d:5000' % i))

    def test_one_winner_every_round_across_processes(self):
        instance = {'uuid': 'b5d6a0e4-0c4e-4d51-9d7e-5f0e3a3c1a01',
                    'name': 'vm', 'state': 'running',
                    'consoles': [{'index': 0, 'port': 10001}]}
        # As its agent reports it: the lease checks the token's port.
        self.consoleauth.instance_event({}, 'compute-1', 'started',
                                        instance)
        token = self.consoleauth.authorize_console(
            {}, instance['uuid'], 'compute-1', '127.0.0.1', 10001)
        for round_ in range(ROUNDS):
            outcomes = self.race(token)
            won = [o for o in outcomes if isinstance(o, dict)]
            in_use = [o for o in outcomes
                      if isinstance(o, exception.ConsoleInUse)]
            other = [o for o in outcomes if o not in won and o not in in_use]
            self.assertEqual(([], 1, ACQUIRERS - 1),
                             (other, len(won), len(in_use)),
                             'round %d' % round_)
            [held] = self.consoleauth.list_sessions({})
            self.assertEqual(won[0]['session_id'], held['id'])
            self.consoleauth.release_session({}, won[0]['session_id'])
        self.assertEqual([], self.consoleauth.list_sessions({}))
        # The winners were leased by more than one of the processes.
        leased_by = collections.Counter()
        for label, _, path in self.deployment.processes:
            with open(path, errors='replace') as f:
                leased_by[label] = f.read().count(' leased console ')
        self.assertEqual(ROUNDS, sum(leased_by.values()), leased_by)
        self.assertGreater(len(+leased_by), 1, leased_by)


class PostgreSQLLeaseRaceTest(LeaseRaceBehaviour, testcase.TestCase):
    database = 'postgresql'


class MariaDBLeaseRaceTest(LeaseRaceBehaviour, testcase.TestCase):
    database = 'mysql'
