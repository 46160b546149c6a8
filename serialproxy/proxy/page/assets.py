"""Which npm files the console page needs, and where a proxy finds them.

The page's xterm.js and its addons come from npm, pinned by
package-lock.json. A source checkout has them in node_modules (`npm
ci`); an sdist or wheel carries a
copy of just the files below in serialproxy/vendor, made by
tools/build_page_assets.py when the distribution is built. This module
uses the standard library only: the build loads it by path, before any of
serialproxy's dependencies need be installed.
"""

import hashlib
import os

# serialproxy/, three levels up from serialproxy/proxy/page/assets.py.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SOURCE_DIR = os.path.dirname(PACKAGE_DIR)
# Where `npm ci` leaves the packages in a source checkout.
CHECKOUT_ROOT = os.path.join(SOURCE_DIR, 'node_modules')
# The copy an sdist or wheel carries (git-ignored in a checkout).
BUILT_ROOT = os.path.join(PACKAGE_DIR, 'vendor')

# URL path under vendor/ -> file inside the npm packages directory.
SERVED = {
    'xterm.js': '@xterm/xterm/lib/xterm.js',
    'xterm.css': '@xterm/xterm/css/xterm.css',
    'addon-fit.js': '@xterm/addon-fit/lib/addon-fit.js',
    'addon-search.js': '@xterm/addon-search/lib/addon-search.js',
}
# Copied beside the served files, never served: their licences travel
# with them.
LICENSES = (
    '@xterm/xterm/LICENSE',
    '@xterm/addon-fit/LICENSE',
    '@xterm/addon-search/LICENSE',
)
# The files whose content pins the packages, and the file in a built copy
# that records their digest.
LOCK_FILES = ('package.json', 'package-lock.json')
STAMP = 'lock.sha256'


def lock_digest(source_dir):
    """SHA-256 of package.json then package-lock.json, as hex.

    The same digest tools/test-setup.sh writes into node_modules after
    `npm ci`, so a build can tell whether node_modules matches the lock.
    """
    digest = hashlib.sha256()
    for name in LOCK_FILES:
        with open(os.path.join(source_dir, name), 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def read_stamp(path):
    """The digest a stamp file records, or None when there is none."""
    try:
        with open(path) as f:
            words = f.read().split()
    except FileNotFoundError:
        return None
    return words[0] if words else None


def missing(root):
    """The served files that root lacks, as full paths."""
    paths = [os.path.join(root, name) for name in SERVED.values()]
    return [path for path in paths if not os.path.isfile(path)]


def find_root(configured=None):
    """The directory to serve the page's npm files from.

    [console] vendor_path when set. Otherwise a checkout's node_modules
    when it holds every served file (what a developer updates with
    `npm ci`), then the copy built into the package. When neither is
    complete the checkout's path is returned, so the warning names where
    `npm ci` puts the files.
    """
    if configured:
        return configured
    for root in (CHECKOUT_ROOT, BUILT_ROOT):
        if not missing(root):
            return root
    return CHECKOUT_ROOT
