import os
import subprocess
import sys
import threading

from serialproxy import conf as sp_conf
from serialproxy import context
from serialproxy import exception
from serialproxy import policies
from serialproxy import policy
from tests.unit import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GENERATOR_CONF = os.path.join(ROOT, 'etc', 'serialproxy',
                              'serialproxy-policy-generator.conf')
SAMPLE = os.path.join(ROOT, 'etc', 'serialproxy', 'policy.yaml.sample')


class PolicyDefaultsTest(base.TestCase):
    def test_operator_only_rules_default_to_admin(self):
        rules = {rule.name: rule.check_str for rule in policies.list_rules()}
        for name in ('serialproxy:console_auth_tokens:show',
                     'serialproxy:console_sessions:delete',
                     'serialproxy:servers:index:get_all_tenants',
                     'serialproxy:serial_console:nmi'):
            self.assertEqual('rule:context_is_admin', rules[name])
        for name in ('serialproxy:remote_consoles:create',
                     'serialproxy:serial_console:sysrq'):
            self.assertEqual('rule:project_member_or_admin', rules[name])

    def test_checked_in_sample_is_current(self):
        generated = os.path.join(self.state_path, 'policy.yaml.sample')
        subprocess.run(
            [sys.executable, '-c', 'import sys; from oslo_policy import '
             'generator; generator.generate_sample(sys.argv[1:])',
             '--config-file', GENERATOR_CONF, '--output-file', generated],
            check=True, cwd=ROOT, capture_output=True)
        with open(SAMPLE) as checked_in, open(generated) as fresh:
            self.assertEqual(
                fresh.read(), checked_in.read(),
                'etc/serialproxy/policy.yaml.sample is stale: run '
                '"tox -e genpolicy" and commit the result')


class OwnerRuleTestBase(base.TestCase):
    """A rule of the API's, as the caller's policy file sets it."""

    ACTION = 'serialproxy:remote_consoles:create'

    def setUp(self):
        super().setUp()
        # Parsed, with no config files: oslo.policy looks beside them.
        sp_conf.CONF([], project='serialproxy', default_config_files=[])
        policy.reset()
        self.addCleanup(policy.reset)

    def use_rule(self, rule):
        self.use_policy_file({self.ACTION: rule})

    @staticmethod
    def caller(*roles, project='p1', user='u1'):
        return context.RequestContext(user_id=user, project_id=project,
                                      roles=list(roles))


class AuthorizedForAnyOwnerTest(OwnerRuleTestBase):
    """The check made before a call that learns the server's owner."""

    def allowed(self, ctxt, project_id='p1'):
        return policy.authorized_for_any_owner(ctxt, self.ACTION, project_id)

    def test_default_rule_lets_members_and_admins_not_readers(self):
        self.assertTrue(self.allowed(self.caller('member', 'reader')))
        self.assertTrue(self.allowed(self.caller('admin'), project_id=None))
        self.assertFalse(self.allowed(self.caller('reader')))
        # A member of any project is no member of an unknown one.
        self.assertFalse(self.allowed(self.caller('member'),
                                      project_id=None))

    def test_rule_on_the_owner_user_waits_for_the_owner(self):
        self.use_rule('role:member and user_id:%(user_id)s')
        self.assertFalse(self.allowed(self.caller('member')))

    def test_rule_with_not_waits_for_the_owner(self):
        # Passes with the owner unknown, fails once it is u2.
        self.use_rule("role:member and not 'u2':%(user_id)s")
        self.assertFalse(self.allowed(self.caller('member')))
        self.assertRaises(exception.PolicyNotAuthorized, policy.authorize,
                          self.caller('member'), self.ACTION,
                          {'project_id': 'p1', 'user_id': 'u2'})

    def test_rule_through_other_rules_is_followed(self):
        self.use_rule('rule:project_member_or_admin or rule:no_such_rule')
        self.assertTrue(self.allowed(self.caller('member')))
        self.use_rule('rule:project_member_or_admin or '
                      '(role:member and not role:auditor)')
        self.assertFalse(self.allowed(self.caller('member')))


class ReadsUnknownOwnerTest(OwnerRuleTestBase):
    """Whether a refusal made before the owner is known is the answer."""

    def reads(self, project_id='p1'):
        return policy.reads_unknown_owner(self.ACTION, project_id)

    def test_rules_on_roles_alone_do_not(self):
        self.use_rule('role:member or rule:project_reader_or_admin or '
                      'rule:no_such_rule')
        self.assertFalse(self.reads())
        self.use_rule('!')
        self.assertFalse(self.reads())

    def test_rule_on_the_owner_user_does(self):
        self.use_rule('role:member and user_id:%(user_id)s')
        self.assertTrue(self.reads())

    def test_owner_project_is_read_only_while_unknown(self):
        self.use_rule('role:reader and project_id:%(project_id)s')
        self.assertFalse(self.reads())
        self.assertTrue(self.reads(project_id=None))

    def test_not_and_rule_references_are_looked_into(self):
        self.use_rule("role:member and not 'u2':%(user_id)s")
        self.assertTrue(self.reads())
        self.use_policy_file({self.ACTION: 'rule:mine',
                              'mine': 'role:%(user_id)s'})
        self.assertTrue(self.reads())


class EnforcerTest(base.TestCase):
    def setUp(self):
        super().setUp()
        sp_conf.CONF([], project='serialproxy', default_config_files=[])
        policy.reset()
        self.addCleanup(policy.reset)

    def test_threads_of_a_new_process_all_find_the_rules_registered(self):
        # As an API worker's first requests: no PolicyNotRegistered.
        ctxt = context.RequestContext(user_id='u', project_id='p',
                                      roles=['member'])
        errors = []

        def ask():
            try:
                policy.authorize(ctxt, AuthorizedForAnyOwnerTest.ACTION,
                                 {'project_id': 'p', 'user_id': 'u'})
            except Exception as exc:
                errors.append(exc)
        threads = [threading.Thread(target=ask) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual([], errors)


class PolicyFileReloadTest(base.TestCase):
    """Policy files are checked once per interval, not on every check."""

    ACTION = AuthorizedForAnyOwnerTest.ACTION

    def setUp(self):
        super().setUp()
        sp_conf.CONF([], project='serialproxy', default_config_files=[])
        self.now = [1000.0]
        self.patch(policy.time, 'monotonic', lambda: self.now[0])
        self.path = self.use_policy_file({self.ACTION: 'role:member'})
        self.reader = context.RequestContext(user_id='u', project_id='p',
                                             roles=['reader'])

    def write_rule(self, rule):
        with open(self.path, 'w') as f:
            f.write('"%s": "%s"\n' % (self.ACTION, rule))
        # A new mtime even within the file system's granularity.
        stamp = os.stat(self.path).st_mtime + len(rule)
        os.utime(self.path, (stamp, stamp))

    def allowed(self):
        return policy.allows(self.reader, self.ACTION,
                             {'project_id': 'p', 'user_id': 'u'})

    def test_an_edited_file_applies_from_the_next_interval(self):
        self.assertFalse(self.allowed())
        self.write_rule('role:reader')
        self.assertFalse(self.allowed())  # within the interval
        self.now[0] += policy.POLICY_FILE_CHECK_INTERVAL
        self.assertTrue(self.allowed())

    def test_files_are_not_searched_within_an_interval(self):
        self.allowed()
        looked = []
        real = sp_conf.CONF.find_file
        self.patch(sp_conf.CONF, 'find_file',
                   lambda name: looked.append(name) or real(name))
        for _ in range(5):
            self.allowed()
        self.assertEqual([], looked)
        self.now[0] += policy.POLICY_FILE_CHECK_INTERVAL
        self.allowed()
        self.assertNotEqual([], looked)
