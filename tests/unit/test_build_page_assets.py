"""tools/build_page_assets.py against a source tree of its own.

npm is the edge: a script standing in for it writes the packages' files
where `npm ci` would.
"""

import os
import shutil

import fixtures

from serialproxy.proxy.page import assets as page_assets
from tests.unit import base
from tools import build_page_assets

FAKE_NPM = '''#!/bin/sh
[ "$1" = ci ] || exit 2
echo "$PWD" >> "%(log)s"
for f in %(files)s; do
    mkdir -p "node_modules/$(dirname "$f")"
    echo "/* npm: $f */" > "node_modules/$f"
done
'''
FILES = list(page_assets.SERVED.values()) + list(page_assets.LICENSES)


class BuildPageAssetsTest(base.TestCase):

    def setUp(self):
        super().setUp()
        self.source = os.path.join(self.state_path, 'src')
        page_dir = os.path.join(self.source, 'serialproxy', 'proxy', 'page')
        os.makedirs(page_dir)
        shutil.copy(page_assets.__file__, page_dir)
        self.write('package.json', '{"dependencies": {}}')
        self.write('package-lock.json', '{"lockfileVersion": 3}')
        self.target = os.path.join(self.source, 'serialproxy', 'vendor')
        self.npm_log = os.path.join(self.state_path, 'npm.log')
        self.npm = os.path.join(self.state_path, 'npm')
        with open(self.npm, 'w') as f:
            f.write(FAKE_NPM % {'log': self.npm_log,
                                'files': ' '.join(FILES)})
        os.chmod(self.npm, 0o755)

    def write(self, name, text):
        path = os.path.join(self.source, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)

    def npm_runs(self):
        if not os.path.exists(self.npm_log):
            return []
        with open(self.npm_log) as f:
            return f.read().split()

    def stamp_node_modules(self):
        for name in FILES:
            self.write(os.path.join('node_modules', name), '/* checkout */')
        self.write('node_modules/' + build_page_assets.NODE_MODULES_STAMP,
                   page_assets.lock_digest(self.source) + '  -\n')

    def test_stamped_node_modules_is_copied_without_npm(self):
        self.stamp_node_modules()
        self.write('node_modules/@xterm/xterm/package.json', '{}')
        self.assertTrue(build_page_assets.build(self.source,
                                                npm='/nonexistent/npm'))
        copied = sorted(os.path.relpath(os.path.join(d, n), self.target)
                        for d, _, names in os.walk(self.target)
                        for n in names)
        self.assertEqual(sorted(FILES + [page_assets.STAMP]), copied)
        self.assertEqual(page_assets.lock_digest(self.source),
                         page_assets.read_stamp(
                             os.path.join(self.target, page_assets.STAMP)))

    def test_current_copy_is_left_alone(self):
        self.stamp_node_modules()
        build_page_assets.build(self.source, npm=self.npm)
        self.assertFalse(build_page_assets.build(self.source, npm=self.npm))
        self.assertEqual([], self.npm_runs())

    def test_changed_lock_runs_npm_ci_outside_the_checkout(self):
        self.stamp_node_modules()
        build_page_assets.build(self.source, npm=self.npm)
        self.write('package-lock.json', '{"lockfileVersion": 3, "x": 1}')
        self.assertTrue(build_page_assets.build(self.source, npm=self.npm))
        [scratch] = self.npm_runs()
        self.assertFalse(scratch.startswith(self.source), scratch)
        with open(os.path.join(self.target, page_assets.SERVED['xterm.js'])) \
                as f:
            self.assertEqual('/* npm: @xterm/xterm/lib/xterm.js */\n',
                             f.read())
        with open(os.path.join(self.source, 'node_modules',
                               page_assets.SERVED['xterm.js'])) as f:
            self.assertEqual('/* checkout */', f.read())

    def test_without_npm_the_error_says_what_to_install(self):
        error = self.assertRaises(build_page_assets.AssetsError,
                                  build_page_assets.build, self.source,
                                  npm='/nonexistent/npm')
        self.assertIn('npm is needed', str(error))
        self.assertFalse(os.path.exists(self.target))

    def test_failing_npm_leaves_no_copy_and_says_why(self):
        with open(self.npm, 'w') as f:
            f.write('#!/bin/sh\necho "registry unreachable" >&2\nexit 1\n')
        error = self.assertRaises(build_page_assets.AssetsError,
                                  build_page_assets.build, self.source,
                                  npm=self.npm)
        self.assertIn('registry unreachable', str(error))
        self.assertFalse(os.path.exists(self.target))

    def test_lock_without_a_listed_file_is_refused(self):
        self.stamp_node_modules()
        os.remove(os.path.join(self.source, 'node_modules',
                               page_assets.LICENSES[0]))
        error = self.assertRaises(build_page_assets.AssetsError,
                                  build_page_assets.build, self.source,
                                  npm=self.npm)
        self.assertIn(page_assets.LICENSES[0], str(error))
        self.assertFalse(os.path.exists(self.target))

    def test_setup_hook_builds_only_for_distributions(self):
        self.stamp_node_modules()
        self.useFixture(fixtures.MonkeyPatch(
            'tools.build_page_assets.SOURCE_DIR', self.source))
        for command in ('egg_info', 'dist_info', 'editable_wheel'):
            self.useFixture(fixtures.MonkeyPatch(
                'sys.argv', ['setup.py', command]))
            build_page_assets.setup_hook({})
            self.assertFalse(os.path.exists(self.target), command)
        self.useFixture(fixtures.MonkeyPatch(
            'sys.argv', ['setup.py', 'bdist_wheel', '--dist-dir', 'x']))
        build_page_assets.setup_hook({})
        self.assertTrue(os.path.isdir(self.target))
