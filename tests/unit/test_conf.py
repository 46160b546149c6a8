import os
import subprocess
import sys

from serialproxy.conf import opts
from tests.unit import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GENERATOR_CONF = os.path.join(ROOT, 'etc', 'serialproxy',
                              'serialproxy-config-generator.conf')
SAMPLE = os.path.join(ROOT, 'etc', 'serialproxy', 'serialproxy.conf.sample')


class ConfigSampleTest(base.TestCase):
    def test_issue_options_are_listed(self):
        names = {(str(group), opt.name) for group, group_opts in
                 opts.list_opts() for opt in group_opts}
        for expected in [('serial_console', 'enabled'),
                         ('serial_console', 'base_url'),
                         ('serial_console', 'port_range'),
                         ('serial_console', 'proxyclient_address'),
                         ('serial_console', 'serialproxy_host'),
                         ('serial_console', 'serialproxy_port'),
                         ('consoleauth', 'token_ttl'),
                         ('database', 'connection'),
                         ('libvirt', 'connection_uri')]:
            self.assertIn(expected, names)

    def test_checked_in_sample_is_current(self):
        generated = os.path.join(self.state_path, 'sample.conf')
        subprocess.run(
            [sys.executable, '-m', 'oslo_config.generator', '--config-file',
             GENERATOR_CONF, '--output-file', generated],
            check=True, cwd=ROOT)
        with open(SAMPLE) as checked_in, open(generated) as fresh:
            self.assertEqual(
                fresh.read(), checked_in.read(),
                'etc/serialproxy/serialproxy.conf.sample is stale: run '
                '"tox -e genconfig" and commit the result')
