"""The console page: files of serialproxy/static answered to plain GETs.

The page lives at the console URL itself (a GET without Upgrade), so the
one tokenized URL opens in a browser and works behind any path prefix.
Its third-party scripts (xterm.js and its fit addon) come from npm, pinned
by package-lock.json, never committed and never fetched from a CDN: a
checkout's node_modules or the copy an installed package carries
(page_assets says which). They are answered under vendor/ from a short
list of files, not by exposing a directory. No directory listings; nothing
outside the static root and that list is reachable. Its
Content-Security-Policy names the dashboards that may frame it ([console]
frame_ancestors).
"""

import mimetypes
import os
import posixpath
import urllib.parse

from serialproxy.proxy import close_codes
from serialproxy.proxy import handshake
from serialproxy.proxy.page import assets as page_assets
from serialproxy.proxy.page import commands as page_commands
from serialproxy.proxy.page import csp
from serialproxy.proxy.page.frame_ancestors import FrameAncestors

STATIC_ROOT = os.path.join(page_assets.PACKAGE_DIR, 'static')
# URL path under vendor/ -> file inside the npm packages directory.
VENDOR_FILES = page_assets.SERVED
VENDOR_PREFIX = '/vendor/'
# Scripts the proxy renders from its own definitions, so the page never
# holds a copy of them.
GENERATED_SCRIPTS = {
    '/close-codes.js': close_codes.page_script,
    '/sysrq-keys.js': page_commands.page_script,
}


class StaticFiles:
    """Answers plain GET/HEAD requests from one directory tree."""

    def __init__(self, root=STATIC_ROOT, vendor_root=None,
                 frame_ancestors=FrameAncestors()):
        """vendor_root: [console] vendor_path; unset, page_assets finds
        the npm files."""
        self.root = os.path.realpath(root)
        self.vendor_configured = bool(vendor_root)
        self.vendor_root = os.path.realpath(
            page_assets.find_root(vendor_root))
        self.security_headers = csp.security_headers(frame_ancestors)

    def missing_vendor_files(self):
        """Paths of the page's npm files that are not installed."""
        return page_assets.missing(self.vendor_root)

    def resolve(self, url_path):
        """The file a URL path names, or None; '/' is index.html."""
        path = posixpath.normpath(urllib.parse.unquote(url_path))
        if '\x00' in path:
            return None  # no file name holds a NUL
        try:
            return self._find(path)
        except (OSError, ValueError):
            # A name longer than the file system takes, and the like:
            # not a file of ours either.
            return None

    def _find(self, path):
        if path in ('/', '.'):
            path = '/index.html'
        if path.startswith(VENDOR_PREFIX):
            name = VENDOR_FILES.get(path[len(VENDOR_PREFIX):])
            if name is None:
                return None
            candidate = os.path.join(self.vendor_root, name)
            return candidate if os.path.isfile(candidate) else None
        candidate = os.path.realpath(os.path.join(self.root,
                                                  path.lstrip('/')))
        if not candidate.startswith(self.root + os.sep):
            return None
        if not os.path.isfile(candidate):
            return None  # directories included: no listings
        return candidate

    def response(self, request):
        """Complete HTTP response bytes for a plain GET or HEAD."""
        generated = GENERATED_SCRIPTS.get(
            posixpath.normpath(urllib.parse.unquote(request.path)))
        if generated is not None:
            return self._answer(request, generated(), 'script.js')
        path = self.resolve(request.path)
        if path is None:
            return handshake.response(404, 'Not found')
        with open(path, 'rb') as f:
            body = f.read()
        return self._answer(request, body, path)

    def _answer(self, request, body, path):
        content_type = mimetypes.guess_type(path)[0] or \
            'application/octet-stream'
        if content_type.startswith('text/') or content_type in (
                'application/javascript', 'application/json'):
            content_type += '; charset=utf-8'
        headers = [('Content-Type', content_type)] + self.security_headers
        raw = handshake.response(200, headers=headers, body=body)
        if request.method == 'HEAD':
            raw = raw[:raw.index(b'\r\n\r\n') + 4]
        return raw
