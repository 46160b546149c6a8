"""A wheel, installed away from the checkout, serves a working console page.

What an operator does: build an sdist and a wheel from the source tree,
install the wheel into a virtualenv, run serialproxy-all from there. The
test builds the wheel from the sdist's contents, as `python -m build`
does, with an `npm` on PATH that fails, so it shows the sdist carries the
page's files and a wheel needs no npm. The page is then loaded in Debian's
Chromium and used against a real guest.

The fresh venv's dependencies: installing them from the package index
would take many minutes (libvirt-python compiles) and need the network.
So the venv links each distribution installed in the test's own venv
(same interpreter, same versions), except serialproxy's own editable
install (its dist-info, its __editable__ .pth and finder, a legacy
egg-link or easy-install.pth line); the wheel goes in with --no-deps and
--no-index. Before that, the venv is shown to have no serialproxy, and
afterwards to import it from its own site-packages: the only copy it can
run is the wheel's.
"""

import os
import re
import subprocess
import sys
import sysconfig
import tarfile

import fixtures

from tests.e2e import fixtures as e2e_fixtures
from tests.harness import fixtures as func_fixtures
from tests.harness import testcase

# Distributions of serialproxy itself, as an editable install leaves them.
OWN_INSTALL = re.compile(
    r'^(__editable__[._]+)?serialproxy([-_.].*)?$', re.IGNORECASE)
FAILING_NPM = '#!/bin/sh\necho "npm must not run here" >&2\nexit 97\n'
BUILD_TIMEOUT = 300


class InstalledWheel(fixtures.Fixture):
    """A wheel of the checkout installed in a fresh venv outside it."""

    def _setUp(self):
        self.dir = os.path.realpath(self.useFixture(fixtures.TempDir()).path)
        if self.dir.startswith(func_fixtures.ROOT + os.sep):
            raise AssertionError('%s is inside the checkout' % self.dir)
        self.env = {name: value for name, value in os.environ.items()
                    if name not in ('PYTHONPATH', 'VIRTUAL_ENV',
                                    'PYTHONHOME')}
        wheel = self._build_wheel()
        self.venv = os.path.join(self.dir, 'venv')
        self.bin_dir = os.path.join(self.venv, 'bin')
        self.env['PATH'] = self.bin_dir + os.pathsep + self.env['PATH']
        self._run(sys.executable, '-m', 'venv', '--without-pip', self.venv)
        self.site_packages = self.python(
            'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        self._link_test_dependencies()
        self.no_serialproxy = self.python(
            'import importlib.util as u; print(u.find_spec("serialproxy"))')
        self._run(sys.executable, '-m', 'pip', '--python',
                  os.path.join(self.bin_dir, 'python'), 'install', '-q',
                  '--no-deps', '--no-index', wheel)

    def python(self, code):
        """Run code with the venv's python, from outside the checkout."""
        return self._run(os.path.join(self.bin_dir, 'python'), '-c',
                         code).strip()

    def _run(self, *command, env=None, cwd=None):
        result = subprocess.run(command, cwd=cwd or self.dir,
                                env=env or self.env, capture_output=True,
                                text=True, timeout=BUILD_TIMEOUT)
        if result.returncode:
            raise AssertionError('%s exited with %d:\n%s%s' % (
                ' '.join(command), result.returncode, result.stdout,
                result.stderr))
        return result.stdout

    def _build_wheel(self):
        dist = os.path.join(self.dir, 'dist')
        self._run(sys.executable, '-m', 'build', '--no-isolation', '--sdist',
                  '--outdir', dist, func_fixtures.ROOT)
        [sdist] = [os.path.join(dist, name) for name in os.listdir(dist)]
        with tarfile.open(sdist) as archive:
            self.sdist_names = archive.getnames()
            # Our own archive; the filter where Python has it (3.11.4).
            safe = {'filter': 'data'} if hasattr(tarfile, 'data_filter') \
                else {}
            archive.extractall(os.path.join(self.dir, 'sdist'), **safe)
        [source] = os.listdir(os.path.join(self.dir, 'sdist'))
        no_npm = os.path.join(self.dir, 'no-npm')
        os.mkdir(no_npm)
        with open(os.path.join(no_npm, 'npm'), 'w') as f:
            f.write(FAILING_NPM)
        os.chmod(os.path.join(no_npm, 'npm'), 0o755)
        self._run(sys.executable, '-m', 'build', '--no-isolation', '--wheel',
                  '--outdir', dist, os.path.join(self.dir, 'sdist', source),
                  env=dict(self.env, PATH=no_npm + os.pathsep +
                           self.env['PATH']))
        [wheel] = [os.path.join(dist, name) for name in os.listdir(dist)
                   if name.endswith('.whl')]
        return wheel

    def _link_test_dependencies(self):
        ours = sysconfig.get_paths()['purelib']
        for name in os.listdir(ours):
            if OWN_INSTALL.match(name) or name == '__pycache__':
                continue
            source = os.path.join(ours, name)
            target = os.path.join(self.site_packages, name)
            if os.path.exists(target):
                continue
            if name.endswith('.pth'):
                # A legacy develop install adds the checkout here.
                with open(source) as f:
                    lines = [line for line in f
                             if func_fixtures.ROOT not in line]
                with open(target, 'w') as f:
                    f.writelines(lines)
            else:
                os.symlink(source, target)


class WheelInstallTest(testcase.TestCase):

    def test_installed_wheel_serves_its_own_page_scripts(self):
        installed = self.useFixture(InstalledWheel())
        self.assertEqual('None', installed.no_serialproxy)
        vendor = os.path.join(installed.site_packages, 'serialproxy',
                              'vendor')
        self.assertEqual(
            os.path.join(installed.site_packages, 'serialproxy',
                         '__init__.py'),
            installed.python('import serialproxy; '
                             'print(serialproxy.__file__)'))
        for name in ('@xterm/xterm/lib/xterm.js', '@xterm/xterm/LICENSE',
                     '@xterm/addon-fit/lib/addon-fit.js',
                     '@xterm/addon-search/lib/addon-search.js',
                     '@xterm/addon-search/LICENSE', 'lock.sha256'):
            self.assertIn(name, '\n'.join(installed.sdist_names))
            self.assertTrue(os.path.isfile(os.path.join(vendor, name)), name)

        guest = self.useFixture(func_fixtures.Guest(
            boot_timeout=e2e_fixtures.GUEST_BOOT_TIMEOUT))
        deployment = self.useFixture(func_fixtures.Deployment(
            bin_dir=installed.bin_dir, cwd=installed.dir,
            env=installed.env))
        deployment.start('serialproxy-all')
        deployment.wait_ready()
        # The proxy process names the directory it found the scripts in,
        # from its own serialproxy's location: the venv's, not the
        # checkout's.
        self.assertIn('Console page: its terminal scripts are served from '
                      '%s\n' % vendor, deployment.logs())

        browser = self.useFixture(e2e_fixtures.Browser()).browser
        context = browser.new_context(
            viewport={'width': 1024, 'height': 640})
        self.addCleanup(context.close)
        console = e2e_fixtures.ConsolePage(context.new_page())
        self.addCleanup(console.screenshot, 'wheel-install')
        console.page.goto(e2e_fixtures.page_url(
            deployment.console_url(guest.uuid)))
        state, reason, text = console.wait_for_state(
            'connected', timeout=60)
        self.assertTrue(text.startswith('Connected'), text)
        # xterm.js from the wheel's vendor copy, the page's own scripts
        # from its static files.
        self.assertEqual(['function', 'function', 'function', 'object',
                          'object'], console.page.evaluate(
            '() => [typeof Terminal, typeof FitAddon.FitAddon, typeof '
            'SerialproxyOutputDecoder, typeof SerialproxyPacedSend, '
            'typeof SerialproxyPageSettings]'))
        console.type_line('echo wheel-$((40+2))')
        console.wait_for_screen('^wheel-42')
