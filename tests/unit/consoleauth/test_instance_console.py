"""authorize_instance_console: a console token in one call from the API."""

import threading
import time

import fixtures
import oslo_messaging as messaging
import sqlalchemy as sa

from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy.consoleauth import manager
from serialproxy.consoleauth import rpcapi
from serialproxy.db import api as db_api
from serialproxy import exception
from serialproxy.proxy import rpcapi as proxy_rpcapi
from tests.unit import base
from tests.unit import rpc_fixture

UUID = '0d6a4f3e-6a39-4d0e-8f5e-2b1b2d0e6c11'
PROJECT = 'c0ffee00c0ffee00c0ffee00c0ffee00'
OTHER_PROJECT = 'badcafe0badcafe0badcafe0badcafe0'
HOST = 'compute-1'


class StandInCompute:
    """The compute agent's get_serial_console, answering from a dict of
    instance -> address or the error the real agent would raise."""

    target = messaging.Target(version='1.0')

    def __init__(self):
        self.answers = {}
        self.calls = []
        self.release = threading.Event()
        self.release.set()
        self.arrivals = []

    @messaging.expected_exceptions(exception.SerialProxyException)
    def get_serial_console(self, ctxt, instance_uuid, index=0):
        self.calls.append((instance_uuid, index))
        self.arrivals.append(time.monotonic())
        self.release.wait(10)
        answer = self.answers[instance_uuid]
        if isinstance(answer, Exception):
            raise answer
        return dict(answer, index=index)


class AuthorizeInstanceConsoleTest(base.TestCase):

    def setUp(self):
        super().setUp()
        database = db_api.Database('sqlite:///%s/ca.sqlite'
                                   % self.state_path)
        database.sync()
        self.db = database
        rpc = self.useFixture(rpc_fixture.InProcessRPC())
        self.endpoint = manager.ConsoleAuthManager(
            database, proxy_rpcapi.ProxyAPI())
        rpc.serve(rpcapi.TOPIC, self.endpoint)
        self.compute = StandInCompute()
        rpc.serve(compute_rpcapi.TOPIC, self.compute, server=HOST)
        self.api = rpcapi.ConsoleAuthAPI()
        self.api.report_instances({}, HOST, [{
            'uuid': UUID, 'name': 'vm', 'state': 'running',
            'project_id': PROJECT, 'user_id': 'u'}])
        self.compute.answers[UUID] = {'host': '192.0.2.7', 'port': 10042}

    def authorize(self, project_id=None, index=0, uuid=UUID, ctxt=None):
        return self.api.authorize_instance_console(
            ctxt or {}, uuid, index=index, project_id=project_id)

    def token_count(self):
        with self.db.session() as session:
            return session.execute(sa.text(
                'SELECT count(*) FROM console_tokens')).scalar()

    def test_token_opens_the_console_the_agent_reported(self):
        issued = self.authorize(
            project_id=PROJECT, index=1,
            ctxt={'user_id': 'u', 'project_id': PROJECT})
        self.assertEqual([(UUID, 1)], self.compute.calls)
        console = self.api.check_token({}, issued['token'])
        self.assertEqual((UUID, HOST, '192.0.2.7', 10042, 1, 'serial'),
                         (console['instance_uuid'], console['compute_host'],
                          console['host'], console['port'],
                          console['index'], console['console_type']))
        # The registry entry comes back with it.
        self.assertEqual((UUID, PROJECT, 'u', HOST),
                         (issued['instance']['uuid'],
                          issued['instance']['project_id'],
                          issued['instance']['user_id'],
                          issued['instance']['host']))

    def test_without_project_any_projects_instance_is_served(self):
        issued = self.authorize(project_id=None)
        self.assertEqual(UUID, self.api.check_token(
            {}, issued['token'])['instance_uuid'])

    def test_another_projects_instance_is_not_found_and_agent_not_asked(self):
        exc = self.assertRaises(exception.InstanceNotFound, self.authorize,
                                project_id=OTHER_PROJECT)
        self.assertEqual(UUID, exc.kwargs['instance_uuid'])
        self.assertEqual([], self.compute.calls)
        self.assertEqual(0, self.token_count())

    def test_unknown_instance_is_not_found(self):
        self.assertRaises(exception.InstanceNotFound, self.authorize,
                          uuid='5b1f4f2c-0000-4000-8000-000000000000')
        self.assertEqual([], self.compute.calls)

    def test_agents_refusals_reach_the_caller_and_no_token_is_kept(self):
        for error in (exception.InstanceNotRunning(instance_uuid=UUID),
                      exception.SerialPortNotFound(instance_uuid=UUID,
                                                   index=0),
                      exception.HypervisorUnavailable(host=HOST)):
            self.compute.answers[UUID] = error
            raised = self.assertRaises(type(error), self.authorize)
            self.assertEqual(error.message, raised.message)
        self.assertEqual(0, self.token_count())

    def test_agent_that_does_not_answer_is_service_unavailable(self):
        # Within half the caller's wait, so the caller hears why.
        self.flags(rpc_call_timeout=2)
        self.compute.release.clear()
        self.addCleanup(self.compute.release.set)
        exc = self.assertRaises(exception.ServiceUnavailable,
                                self.authorize)
        self.assertEqual(503, exc.code)
        self.assertIn('compute service did not answer', exc.message)
        self.assertEqual(0, self.token_count())

    def test_agent_calls_in_flight_are_bounded(self):
        # A dead agent must not hold every thread of consoleauth.
        self.flags(rpc_call_timeout=2)
        # Half of two RPC threads.
        self.flags(executor_thread_pool_size=2)
        self.compute.release.clear()
        self.addCleanup(self.compute.release.set)
        first = threading.Thread(target=self.assertRaises, args=(
            exception.ServiceUnavailable, self.authorize))
        first.start()
        self.addCleanup(first.join)
        while not self.compute.calls:
            time.sleep(0.01)
        # The second waits for the first's slot (a second: half the
        # timeout) within its own time, and reaches the agent only then.
        exc = self.assertRaises(exception.ServiceUnavailable, self.authorize)
        self.assertEqual(503, exc.code)
        first.join()
        arrivals = self.compute.arrivals
        self.assertTrue(len(arrivals) == 1 or arrivals[1] - arrivals[0] > .9,
                        arrivals)

    def test_a_client_capped_below_1_5_does_not_send_it(self):
        self.assertTrue(self.api.can_authorize_instance_console())
        self.useFixture(fixtures.MockPatchObject(
            rpcapi.ConsoleAuthAPI, 'VERSION_CAP', '1.4'))
        capped = rpcapi.ConsoleAuthAPI()
        self.assertFalse(capped.can_authorize_instance_console())
        self.assertRaises(messaging.RPCVersionCapError,
                          capped.authorize_instance_console, {}, UUID)
