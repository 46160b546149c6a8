import os
import subprocess
import sys

from serialproxy import policies
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
                     'serialproxy:servers:index:get_all_tenants'):
            self.assertEqual('rule:context_is_admin', rules[name])
        self.assertEqual('rule:project_member_or_admin',
                         rules['serialproxy:remote_consoles:create'])

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
