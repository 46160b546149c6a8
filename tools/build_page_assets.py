#!/usr/bin/env python3
"""Copy the console page's npm files into the package, for sdists and wheels.

An installed serialproxy has no node_modules beside it, so an sdist or
wheel carries the few files the page loads (and their licences) in
serialproxy/vendor, taken from the packages package-lock.json pins. The
build runs this through setup.cfg's [global] setup_hooks; it can also be
run by hand from the source tree.

The copy is rebuilt only when its stamp differs from the digest of
package.json and package-lock.json: an sdist carries a current copy, so a
wheel built from it needs no npm. The checkout's node_modules is reused
when tools/test-setup.sh stamped it with the same digest; otherwise
`npm ci` runs in a scratch directory, leaving the checkout untouched.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Written by tools/test-setup.sh after `npm ci`.
NODE_MODULES_STAMP = '.serialproxy-installed'
# setup.py commands that make a distribution (pip and build run these).
BUILDING_COMMANDS = {'sdist', 'bdist_wheel', 'build', 'build_py', 'install'}


class AssetsError(Exception):
    """The page's npm files cannot be had; the message says why."""


def _load_page_assets(source_dir):
    # By path: the serialproxy package's dependencies may not be installed
    # where the build runs.
    path = os.path.join(source_dir, 'serialproxy', 'proxy', 'page',
                        'assets.py')
    spec = importlib.util.spec_from_file_location('_page_assets', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(source_dir=SOURCE_DIR, npm='npm'):
    """Make <package>/vendor current; returns True when it was rebuilt."""
    page_assets = _load_page_assets(source_dir)
    digest = page_assets.lock_digest(source_dir)
    target = os.path.join(source_dir, 'serialproxy', 'vendor')
    if page_assets.read_stamp(os.path.join(target, page_assets.STAMP)) \
            == digest:
        return False
    node_modules = os.path.join(source_dir, 'node_modules')
    stamp = os.path.join(node_modules, NODE_MODULES_STAMP)
    if page_assets.read_stamp(stamp) == digest:
        _copy(page_assets, node_modules, target, digest)
        return True
    with tempfile.TemporaryDirectory() as scratch:
        for name in page_assets.LOCK_FILES:
            shutil.copy(os.path.join(source_dir, name), scratch)
        _npm_ci(npm, scratch)
        _copy(page_assets, os.path.join(scratch, 'node_modules'), target,
              digest)
    return True


def _npm_ci(npm, directory):
    if shutil.which(npm) is None:
        raise AssetsError(
            'npm is needed to build the console page\'s files from '
            'package-lock.json (Debian: apt-get install npm); or build '
            'the wheel from an sdist, which carries them')
    result = subprocess.run(
        [npm, 'ci', '--ignore-scripts', '--no-audit', '--no-fund',
         '--loglevel=error'], cwd=directory, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssetsError('npm ci failed (exit %d): %s' % (
            result.returncode, result.stderr.strip() or result.stdout))


def _copy(page_assets, node_modules, target, digest):
    names = list(page_assets.SERVED.values()) + list(page_assets.LICENSES)
    absent = [name for name in names
              if not os.path.isfile(os.path.join(node_modules, name))]
    if absent:
        raise AssetsError('%s lacks %s: package-lock.json no longer pins '
                          'what serialproxy/proxy/page/assets.py lists'
                          % (node_modules, ', '.join(absent)))
    # Built beside the target and swapped in, so a failed build never
    # leaves a half copy that a stamp calls current.
    staging = target + '.new'
    shutil.rmtree(staging, ignore_errors=True)
    for name in names:
        destination = os.path.join(staging, name)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(os.path.join(node_modules, name), destination)
    with open(os.path.join(staging, page_assets.STAMP), 'w') as f:
        f.write(digest + '\n')
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staging, target)


def setup_hook(config):
    """pbr's setup hook: build the copy when a distribution is made.

    Other setup.py commands (egg_info, dist_info, editable installs) leave
    it alone: a checkout serves node_modules and needs no copy. An sdist
    carries package-lock.json and a current copy, so this is a no-op there.
    """
    if not BUILDING_COMMANDS.intersection(sys.argv[1:]):
        return
    # An exception, not sys.exit(): pbr stops the build on the first and
    # only logs the second.
    build(SOURCE_DIR)


def main():
    try:
        rebuilt = build()
    except AssetsError as exc:
        sys.exit(str(exc))
    print('serialproxy/vendor %s' % ('rebuilt' if rebuilt else
                                     'already current'))


if __name__ == '__main__':
    main()
