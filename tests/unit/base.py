"""Base test case: a clean CONF and a temporary state path per test."""

import fixtures
from oslo_config import fixture as config_fixture
import testtools

from serialproxy import conf as sp_conf


class TestCase(testtools.TestCase):
    def setUp(self):
        super().setUp()
        self.conf = self.useFixture(config_fixture.Config(sp_conf.CONF))
        self.state_path = self.useFixture(fixtures.TempDir()).path
        self.conf.config(state_path=self.state_path)

    def flags(self, group=None, **kwargs):
        self.conf.config(group=group, **kwargs)
