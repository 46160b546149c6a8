"""doc/deployment.rst and the sample files it includes stay one thing.

The functional test runs these files (tests/functional/test_multi_host.py);
this checks, without a network, that the guide shows every one of them
and that their serialproxy options exist.
"""

import configparser
import os
import re

from serialproxy.conf import opts
from tests.unit import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DOC = os.path.join(ROOT, 'doc')
SAMPLES = os.path.join(DOC, 'deployment')
# Groups other libraries register (keystonemiddleware, oslo.messaging).
FOREIGN_GROUPS = {'keystone_authtoken', 'oslo_messaging_rabbit'}
FOREIGN_DEFAULTS = {'transport_url'}


def sample_files():
    found = set()
    for directory, _, names in os.walk(SAMPLES):
        for name in names:
            found.add(os.path.relpath(os.path.join(directory, name), DOC))
    return found


class DeploymentGuideTest(base.TestCase):
    def test_guide_includes_every_sample_file_and_only_those(self):
        with open(os.path.join(DOC, 'deployment.rst')) as f:
            included = set(re.findall(r'^\.\. literalinclude:: (\S+)$',
                                      f.read(), re.M))
        self.assertEqual(sample_files(), included)

    def test_sample_configs_set_only_options_that_exist(self):
        known = {getattr(group, 'name', group): {o.dest for o in options}
                 for group, options in opts.list_opts()}
        for sample in sorted(sample_files()):
            if not sample.endswith('.conf'):
                continue
            config = configparser.ConfigParser(interpolation=None)
            config.read(os.path.join(DOC, sample))
            for section in ['DEFAULT', *config.sections()]:
                if section in FOREIGN_GROUPS:
                    continue
                items = (config.defaults() if section == 'DEFAULT'
                         else config._sections[section])
                for name in items:
                    if section == 'DEFAULT' and name in FOREIGN_DEFAULTS:
                        continue
                    self.assertIn(name, known.get(section, ()),
                                  '%s: [%s] %s' % (sample, section, name))
