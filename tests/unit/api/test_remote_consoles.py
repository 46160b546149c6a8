"""Console URLs in each of Nova's shapes, through the real pipeline."""

import urllib.parse
import uuid

import fixtures
import oslo_messaging as messaging

from serialproxy.api import pipeline
from serialproxy.api import remote_consoles
from serialproxy.compute import rpcapi as compute_rpcapi
from serialproxy.consoleauth import manager as consoleauth_manager
from serialproxy.consoleauth import rpcapi as consoleauth_rpcapi
from tests.unit.api import base

BODY = {'remote_console': {'protocol': 'serial', 'type': 'serial'}}
ACTION = {'os-getSerialConsole': {'type': 'serial'}}


class RemoteConsolesTestBase(base.APITestCase):
    def post(self, server_id, body=BODY, version='2.6', **kwargs):
        return self.request('POST',
                            '/v2.1/servers/%s/remote-consoles' % server_id,
                            body=body, version=version, **kwargs)

    def spy(self, cls, method):
        real = getattr(cls, method)
        return self.useFixture(fixtures.MockPatchObject(
            cls, method, autospec=True, side_effect=real)).mock

    def assertOpensConsole(self, url, server_id):
        parts = urllib.parse.urlsplit(url)
        self.assertEqual(('wss', 'console.example', '/serial/'),
                         (parts.scheme, parts.netloc, parts.path))
        token, = urllib.parse.parse_qs(parts.query)['token']
        checked = consoleauth_rpcapi.ConsoleAuthAPI().check_token({}, token)
        self.assertEqual((server_id, base.COMPUTE_HOST, '127.0.0.1', 10077),
                         (checked['instance_uuid'], checked['compute_host'],
                          checked['host'], checked['port']))


class RemoteConsolesTest(RemoteConsolesTestBase):
    def test_url_carries_a_token_that_opens_this_console(self):
        server_id = self.define()
        resp = self.post(server_id)
        self.assertEqual(200, resp.status_int, resp.body)
        console = resp.json['remote_console']
        self.assertEqual(('serial', 'serial'),
                         (console['protocol'], console['type']))
        self.assertOpensConsole(console['url'], server_id)

    def test_project_id_in_the_url_is_accepted_when_it_is_the_callers(self):
        server_id = self.define()
        resp = self.request('POST', '/v2.1/%s/servers/%s/remote-consoles'
                            % (base.PROJECT, server_id), body=BODY,
                            version='2.6')
        self.assertEqual(200, resp.status_int, resp.body)
        resp = self.request('POST', '/v2.1/%s/servers/%s/remote-consoles'
                            % (base.OTHER_PROJECT, server_id), body=BODY,
                            version='2.6')
        self.assertFault(resp, 400, 'badRequest', "doesn't match")

    def test_remote_consoles_do_not_exist_before_2_6(self):
        self.assertFault(self.post(self.define(), version='2.5'), 404,
                         'itemNotFound')
        self.assertFault(self.post(self.define(), version=None), 404,
                         'itemNotFound')

    def test_legacy_action_answers_at_2_1_to_2_5(self):
        server_id = self.define()
        for version in (None, '2.1', '2.5'):
            resp = self.request('POST', '/v2.1/servers/%s/action'
                                % server_id, body=ACTION, version=version)
            self.assertEqual(200, resp.status_int, resp.body)
            self.assertEqual('serial', resp.json['console']['type'])
            self.assertOpensConsole(resp.json['console']['url'], server_id)

    def test_legacy_action_is_gone_from_2_6(self):
        resp = self.request('POST', '/v2.1/servers/%s/action'
                            % self.define(), body=ACTION, version='2.6')
        self.assertFault(resp, 404, 'itemNotFound')

    def test_legacy_action_rejects_other_types_by_schema(self):
        resp = self.request('POST', '/v2.1/servers/%s/action'
                            % self.define(),
                            body={'os-getSerialConsole': {'type': 'novnc'}})
        self.assertFault(resp, 400, 'badRequest', 'os-getSerialConsole/type')

    def test_nova_vnc_action_is_valid_but_unavailable(self):
        resp = self.request('POST', '/v2.1/servers/%s/action'
                            % self.define(),
                            body={'os-getVNCConsole': {'type': 'novnc'}})
        self.assertFault(resp, 400, 'badRequest', 'Unavailable console type')

    def blueprint_post(self, server_id, body=None, raw=None):
        path = '/v2/%s/servers/%s/get-serial-console' % (base.PROJECT,
                                                         server_id)
        return self.request('POST', path, body=body, raw=raw)

    def test_blueprint_bodies_its_schema_allows_get_a_console(self):
        # The serial-ports blueprint (nova-specs, Juno) lets the body hold
        # "serial_console" as null or as an empty object, or leave it out;
        # an empty POST is what its era's tools sent.
        server_id = self.define()
        for body in (None, {}, {'serial_console': None},
                     {'serial_console': {}}):
            resp = self.blueprint_post(server_id, body)
            self.assertEqual(200, resp.status_int, (body, resp.body))
            # The blueprint's response: serial_console holding only a url.
            self.assertEqual(['url'], list(resp.json['serial_console']))
            self.assertOpensConsole(resp.json['serial_console']['url'],
                                    server_id)

    def test_blueprint_body_literal_null_is_no_body(self):
        resp = self.blueprint_post(self.define(), raw=b'null')
        self.assertEqual(200, resp.status_int, resp.body)

    def test_blueprint_body_with_options_it_does_not_define_is_400(self):
        # Its schema has no console type and no port index.
        server_id = self.define()
        for body, where in (
                ({'serial_console': {'type': 'serial'}},
                 "at serial_console: Additional properties are not "
                 "allowed ('type' was unexpected)"),
                ({'serial_console': {'index': 1}},
                 "('index' was unexpected)"),
                ({'type': 'vnc'}, "('type' was unexpected)"),
                ({'serial_console': {}, 'extra': 1},
                 "('extra' was unexpected)")):
            self.assertFault(self.blueprint_post(server_id, body), 400,
                             'badRequest', where)

    def test_blueprint_body_of_the_wrong_type_is_400(self):
        server_id = self.define()
        for body, where in (
                ({'serial_console': 'serial'}, 'at serial_console.'),
                ({'serial_console': []}, 'at serial_console.'),
                ({'serial_console': True}, 'at serial_console.'),
                ([], 'at the body.'),
                ('serial', 'at the body.')):
            self.assertFault(self.blueprint_post(server_id, body), 400,
                             'badRequest', 'Invalid input for field ' + where)
        self.assertFault(self.blueprint_post(server_id, raw=b'{"serial'),
                         400, 'badRequest', 'not valid JSON')

    def test_admin_gets_any_projects_console(self):
        server_id = self.define(project=base.OTHER_PROJECT)
        self.assertEqual(200, self.post(server_id, token='admin').status_int)

    def test_reader_is_forbidden(self):
        self.assertFault(self.post(self.define(), token='reader'), 403,
                         'forbidden', 'serialproxy:remote_consoles:create')

    def test_other_projects_server_does_not_exist_for_a_member(self):
        server_id = self.define(project=base.OTHER_PROJECT)
        self.assertFault(self.post(server_id), 404, 'itemNotFound')

    def test_unknown_server_is_404(self):
        self.assertFault(self.post(str(uuid.uuid4())), 404, 'itemNotFound')

    def test_stopped_server_is_409(self):
        self.assertFault(self.post(self.define(start=False)), 409,
                         'conflictingRequest')

    def test_server_without_serial_port_is_400(self):
        self.assertFault(self.post(self.define(serial=False)), 400,
                         'badRequest', 'no TCP serial port')

    def test_other_console_types_are_400(self):
        server_id = self.define()
        for console in ({'protocol': 'vnc', 'type': 'novnc'},
                        {'protocol': 'serial', 'type': 'spice-html5'}):
            self.assertFault(self.post(server_id,
                                       {'remote_console': console}),
                             400, 'badRequest', 'Unavailable console type')
        for console in ({'protocol': 'telnet', 'type': 'serial'},
                        {'protocol': 'serial'},
                        {'protocol': 'serial', 'type': 'serial', 'x': 1}):
            self.assertFault(self.post(server_id,
                                       {'remote_console': console}),
                             400, 'badRequest', 'Invalid input')

    def test_mks_is_known_from_2_8_but_unavailable(self):
        mks = {'remote_console': {'protocol': 'mks', 'type': 'webmks'}}
        server_id = self.define()
        self.assertFault(self.post(server_id, mks, version='2.6'), 400,
                         'badRequest', 'Invalid input')
        self.assertFault(self.post(server_id, mks, version='2.8'), 400,
                         'badRequest', 'Unavailable console type mks/webmks')

    def test_compute_host_that_does_not_answer_is_503(self):
        self.flags(rpc_call_timeout=1)
        self.app = pipeline.load_app()  # RPC clients take the timeout
        server_id = str(uuid.uuid4())
        self.consoleauth.report_instances({}, 'compute-gone', [{
            'uuid': server_id, 'name': 'orphan', 'state': 'running',
            'host': 'compute-gone', 'project_id': base.PROJECT,
            'user_id': base.USER}])
        self.assertFault(self.post(server_id), 503, 'serviceUnavailable',
                         'did not answer')

    def test_unreachable_broker_is_503(self):
        # What a call that gives up reconnecting raises (rpc.get_client).
        for method in ('get_instance', 'authorize_instance_console'):
            self.useFixture(fixtures.MockPatchObject(
                consoleauth_rpcapi.ConsoleAuthAPI, method,
                side_effect=messaging.MessageDeliveryFailure('broker down')))
        self.assertFault(self.post(str(uuid.uuid4())), 503,
                         'serviceUnavailable', 'message broker')

    def test_disabled_serial_console_is_501(self):
        self.flags(group='serial_console', enabled=False)
        self.assertFault(self.post(self.define()), 501, 'notImplemented')

    def test_policy_file_can_open_consoles_to_readers(self):
        self.use_policy_file({'serialproxy:remote_consoles:create':
                              'rule:project_reader_or_admin'})
        self.assertEqual(200, self.post(self.define(),
                                        token='reader').status_int)


class RoundTripsTest(RemoteConsolesTestBase):
    """A URL is one consoleauth call, whatever the answer; the order of
    answers (404, then 403, then 501, then the agent's) stays Nova's."""

    def use_policy(self, rule):
        self.use_policy_file({'serialproxy:remote_consoles:create': rule})

    def test_a_url_costs_the_api_one_consoleauth_call(self):
        server_id = self.define()
        calls = {name: self.spy(consoleauth_rpcapi.ConsoleAuthAPI, name)
                 for name in ('authorize_instance_console', 'get_instance',
                              'authorize_console')}
        agent = self.spy(compute_rpcapi.ComputeAPI, 'get_serial_console')
        resp = self.post(server_id)
        self.assertEqual(200, resp.status_int, resp.body)
        self.assertOpensConsole(resp.json['remote_console']['url'],
                                server_id)
        self.assertEqual({'authorize_instance_console': 1,
                          'get_instance': 0, 'authorize_console': 0},
                         {name: mock.call_count
                          for name, mock in calls.items()})
        # consoleauth asked the agent, for the member's own project.
        self.assertEqual(1, agent.call_count)
        self.assertEqual(base.PROJECT, calls['authorize_instance_console']
                         .call_args.kwargs['project_id'])

    def test_admin_call_is_not_limited_to_a_project(self):
        calls = self.spy(consoleauth_rpcapi.ConsoleAuthAPI,
                         'authorize_instance_console')
        server_id = self.define(project=base.OTHER_PROJECT)
        self.assertEqual(200, self.post(server_id, token='admin').status_int)
        self.assertIsNone(calls.call_args.kwargs['project_id'])

    def test_reader_hears_404_before_403(self):
        # As Nova: whether a server exists comes before what the caller
        # may do with it.
        for server_id in (str(uuid.uuid4()),
                          self.define(project=base.OTHER_PROJECT)):
            self.assertFault(self.post(server_id, token='reader'), 404,
                             'itemNotFound')

    def test_disabled_consoles_still_hear_404_before_501(self):
        self.flags(group='serial_console', enabled=False)
        self.assertFault(self.post(str(uuid.uuid4())), 404, 'itemNotFound')
        self.assertFault(self.post(self.define(), token='reader'), 403,
                         'forbidden')

    def test_rule_on_the_owner_decides_before_the_agent_is_asked(self):
        self.use_policy('role:member and user_id:%(user_id)s')
        other_user = self._token(base.PROJECT, ['member', 'reader'],
                                 user_id='0ther0ther0ther0ther0ther0ther00')
        stopped = self.define(start=False)
        self.assertFault(self.post(stopped, token=other_user), 403,
                         'forbidden')
        self.assertFault(self.post(stopped), 409, 'conflictingRequest')
        self.assertEqual(200, self.post(self.define(port=10078)).status_int)

    def test_admin_a_rule_keeps_to_its_project_is_refused_elsewhere(self):
        self.use_policy('role:member and project_id:%(project_id)s')
        self.assertFault(self.post(self.define(project=base.OTHER_PROJECT),
                                   token='admin'), 403, 'forbidden')
        self.assertEqual(200, self.post(self.define(port=10078),
                                        token='admin').status_int)

    def test_rule_with_not_on_the_owner_decides_before_the_agent(self):
        # It passes for an owner not known yet, not for this one: the
        # owner is looked up first.
        self.use_policy("role:member and not '%s':%%(user_id)s" % base.USER)
        agent = self.spy(compute_rpcapi.ComputeAPI, 'get_serial_console')
        self.assertFault(self.post(self.define(start=False)), 403,
                         'forbidden')
        self.assertEqual(0, agent.call_count)

    def test_older_consoleauth_gets_the_three_calls(self):
        server_id = self.define()
        self.useFixture(fixtures.MockPatchObject(
            consoleauth_manager.ConsoleAuthManager, 'target',
            messaging.Target(version='1.3')))
        get_instance = self.spy(consoleauth_rpcapi.ConsoleAuthAPI,
                                'get_instance')
        resp = self.post(server_id)
        self.assertEqual(200, resp.status_int, resp.body)
        self.assertOpensConsole(resp.json['remote_console']['url'],
                                server_id)
        self.assertEqual(1, get_instance.call_count)
        self.assertFault(self.post(self.define(start=False, port=10078)),
                         409, 'conflictingRequest')


class TokenModesTest(RemoteConsolesTestBase):
    """The policy decides, when the URL is issued, what its token carries:
    connection modes, and what the console page's SysRq menu may send."""

    def modes(self, token, server_id=None):
        resp = self.post(server_id or self.define(), token=token)
        self.assertEqual(200, resp.status_int, resp.body)
        query = urllib.parse.urlsplit(resp.json['remote_console']['url'])
        console_token, = urllib.parse.parse_qs(query.query)['token']
        return consoleauth_rpcapi.ConsoleAuthAPI().check_token(
            {}, console_token)['modes']

    def use_policy(self, rules):
        policy_file = '%s/policy.yaml' % self.state_path
        with open(policy_file, 'w') as f:
            for name, rule in rules.items():
                f.write('"%s": "%s"\n' % (name, rule))
        self.flags(group='oslo_policy', policy_file=policy_file)

    def test_member_may_send_sysrq_from_the_page_but_no_nmi(self):
        self.assertEqual(['sysrq', 'take_over', 'view', 'write'],
                         self.modes('member'))

    def test_admin_may_send_both(self):
        self.assertEqual(['nmi', 'sysrq', 'take_over', 'view', 'write'],
                         self.modes('admin'))

    def test_policy_file_moves_sysrq_and_nmi_like_the_rest_calls(self):
        self.use_policy({'serialproxy:serial_console:sysrq': '!',
                         'serialproxy:serial_console:nmi':
                             'rule:project_member_or_admin'})
        self.assertEqual(['nmi', 'take_over', 'view', 'write'],
                         self.modes('member'))

    def test_three_call_path_checks_them_on_the_owner(self):
        # A URL rule on the owner's user: the API looks the owner up and
        # checks every mode's rule on it.
        self.use_policy({'serialproxy:remote_consoles:create':
                         'role:member and user_id:%(user_id)s',
                         'serialproxy:serial_console:nmi':
                         'role:member and user_id:%(user_id)s'})
        get_instance = self.spy(consoleauth_rpcapi.ConsoleAuthAPI,
                                'get_instance')
        self.assertEqual(['nmi', 'sysrq', 'take_over', 'view', 'write'],
                         self.modes('member'))
        self.assertEqual(1, get_instance.call_count)

    def test_mode_rule_on_the_owner_alone_is_checked_on_the_owner(self):
        # The URL's rule needs no owner, one mode's does: that mode is not
        # dropped for want of the owner; the owner is looked up first.
        self.use_policy({'serialproxy:serial_console:nmi':
                         'role:member and user_id:%(user_id)s'})
        get_instance = self.spy(consoleauth_rpcapi.ConsoleAuthAPI,
                                'get_instance')
        self.assertEqual(['nmi', 'sysrq', 'take_over', 'view', 'write'],
                         self.modes('member'))
        self.assertEqual(1, get_instance.call_count)
        other_user = self._token(base.PROJECT, ['member', 'reader'],
                                 user_id='0ther0ther0ther0ther0ther0ther00')
        self.assertEqual(['sysrq', 'take_over', 'view', 'write'],
                         self.modes(other_user))

    def test_mode_rules_without_the_owner_keep_the_one_call(self):
        self.use_policy({'serialproxy:serial_console:nmi': 'role:member',
                         'serialproxy:serial_console:sysrq': '!'})
        get_instance = self.spy(consoleauth_rpcapi.ConsoleAuthAPI,
                                'get_instance')
        self.assertEqual(['nmi', 'take_over', 'view', 'write'],
                         self.modes('member'))
        self.assertEqual(0, get_instance.call_count)

    def test_token_modes_cover_every_rule_a_token_may_carry(self):
        self.assertEqual(consoleauth_manager.TOKEN_MODES,
                         set(remote_consoles.RULE_OF_TOKEN_MODE))


class ConsoleUrlTest(base.base.TestCase):
    def test_token_is_appended_to_an_existing_query(self):
        self.assertEqual(
            'https://p.example/c/?lang=en&token=abc',
            remote_consoles.console_url('https://p.example/c/?lang=en',
                                        'abc'))


WATCH_ONLY_BODY = {'remote_console': {'protocol': 'serial', 'type': 'serial',
                                      'mode': 'view'}}


class WatchOnlyURLTest(RemoteConsolesTestBase):
    """{"mode": "view"}: a URL that may only watch, which a reader may
    get (serialproxy:serial_console:view) without remote_consoles:create."""

    def console_of(self, resp):
        self.assertEqual(200, resp.status_int, resp.body)
        query = urllib.parse.urlsplit(resp.json['remote_console']['url'])
        console_token, = urllib.parse.parse_qs(query.query)['token']
        return consoleauth_rpcapi.ConsoleAuthAPI().check_token(
            {}, console_token)

    def test_mode_view_gets_a_watch_only_url(self):
        for version in ('2.6', '2.8'):
            resp = self.post(self.define(), body=WATCH_ONLY_BODY,
                             version=version)
            console = self.console_of(resp)
            self.assertEqual((['view'], True),
                             (console['modes'], console['watch_only']))
            self.assertEqual('view', resp.json['remote_console']['mode'])

    def test_a_url_without_mode_stays_the_writers(self):
        resp = self.post(self.define())
        self.assertNotIn('mode', resp.json['remote_console'])
        self.assertFalse(self.console_of(resp)['watch_only'])

    def test_other_modes_are_400_with_the_reason(self):
        for mode in ('write', 'take_over', 'VIEW', '', None, 1):
            body = {'remote_console': {'protocol': 'serial',
                                       'type': 'serial', 'mode': mode}}
            self.assertFault(self.post(self.define(), body=body), 400,
                             'badRequest', 'remote_console/mode')

    def test_reader_gets_a_watch_only_url_and_no_writers(self):
        server_id = self.define()
        console = self.console_of(self.post(server_id, body=WATCH_ONLY_BODY,
                                            token='reader'))
        self.assertEqual(['view'], console['modes'])
        self.assertFault(self.post(server_id, token='reader'), 403,
                         'forbidden')

    def test_watch_only_url_follows_the_view_rule(self):
        policy_file = '%s/policy.yaml' % self.state_path
        with open(policy_file, 'w') as f:
            f.write('"serialproxy:serial_console:view": "role:admin"\n')
        self.flags(group='oslo_policy', policy_file=policy_file)
        server_id = self.define()
        self.assertFault(self.post(server_id, body=WATCH_ONLY_BODY), 403,
                         'forbidden')
        self.assertEqual(200, self.post(server_id).status_int)

    def test_watch_only_url_of_another_projects_server_is_404(self):
        self.assertFault(self.post(self.define(project=base.OTHER_PROJECT),
                                   body=WATCH_ONLY_BODY, token='reader'),
                         404, 'itemNotFound')

    def test_older_consoleauth_refuses_rather_than_issue_a_writers(self):
        self.useFixture(fixtures.MockPatchObject(
            consoleauth_manager.ConsoleAuthManager, 'target',
            messaging.Target(version='1.8')))
        server_id = self.define()
        self.assertFault(self.post(server_id, body=WATCH_ONLY_BODY), 501,
                         'notImplemented', 'watch-only')
        self.assertEqual(200, self.post(server_id).status_int)
