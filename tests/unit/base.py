"""Base test case: a clean CONF and a temporary state path per test."""

import os

import fixtures
from oslo_config import fixture as config_fixture
from oslo_policy import opts as policy_opts

from serialproxy import conf as sp_conf
from serialproxy import policy
from tests.harness import testcase


class TestCase(testcase.TestCase):
    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(sp_conf.CONF))
        self.state_path = self.useFixture(fixtures.TempDir()).path
        self.conf.config(state_path=self.state_path)

    def flags(self, group=None, **kwargs):
        self.conf.config(group=group, **kwargs)

    def use_policy_file(self, rules):
        """Write rules ({name: check string}) to a policy file that the
        enforcer reads from now on (not at its next file check)."""
        path = os.path.join(self.state_path, 'policy.yaml')
        with open(path, 'w') as f:
            for name, check in rules.items():
                f.write('"%s": "%s"\n' % (name, check))
        policy_opts.set_defaults(sp_conf.CONF)  # registers [oslo_policy]
        self.flags(group='oslo_policy', policy_file=path)
        policy.reset()
        self.addCleanup(policy.reset)
        return path
