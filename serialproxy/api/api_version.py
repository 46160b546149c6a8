"""Compute API microversions: parsing, negotiation, per-method ranges.

Clients that speak to Nova negotiate a microversion from the version
document and send it back in ``OpenStack-API-Version: compute X.Y`` or the
older ``X-OpenStack-Nova-API-Version: X.Y``. We answer in the same way so
they need no special case for us.

Version history (only changes that touch an endpoint we serve):

* 2.1 - the base: servers view, ``os-getSerialConsole`` and
  ``os-getConsoleOutput`` actions, the blueprint's ``get-serial-console``.
* 2.6 - ``POST /servers/{id}/remote-consoles``; the ``os-get*Console``
  actions are gone from this version on.
* 2.8 - ``mks`` is a known remote-console protocol (we do not serve it:
  400 "unavailable" rather than a schema error).
* 2.9 - servers view has ``locked``.
* 2.16 - servers view has ``host_status`` (admin).
* 2.19 - servers view has ``description``.
* 2.26 - servers view has ``tags``.
* 2.31 - ``GET /os-console-auth-tokens/{token}`` describes serial console
  tokens (before it, only RDP tokens, so ours were refused with 401).

MAX_VERSION stops at 2.31 on purpose: it is the first version in which
every console feature we offer exists, and each later Nova microversion
changes a servers view or a console body we would have to fake (2.47
embeds the flavor, 2.73 adds ``locked_reason``, 2.99 adds the
``spice-direct`` console type, ...). Clients negotiate down to 2.31 and
send nothing we do not understand.
"""

import re

from serialproxy import exception

MIN_VERSION = '2.1'
MAX_VERSION = '2.31'

# The header names Nova reads and writes, newest first.
HEADER = 'OpenStack-API-Version'
LEGACY_HEADER = 'X-OpenStack-Nova-API-Version'
SERVICE_TYPE = 'compute'

_VERSION_RE = re.compile(r'^([1-9]\d*)\.([1-9]\d*|0)$')


class APIVersionRequest:
    """A microversion "X.Y", comparable with others and with strings."""

    def __init__(self, version_string):
        match = _VERSION_RE.match(version_string.strip())
        if not match:
            raise exception.InvalidAPIVersion(version=version_string)
        self.major = int(match.group(1))
        self.minor = int(match.group(2))

    def _key(self, other):
        if isinstance(other, str):
            other = APIVersionRequest(other)
        return (self.major, self.minor), (other.major, other.minor)

    def __lt__(self, other):
        mine, theirs = self._key(other)
        return mine < theirs

    def __le__(self, other):
        mine, theirs = self._key(other)
        return mine <= theirs

    def __gt__(self, other):
        mine, theirs = self._key(other)
        return mine > theirs

    def __ge__(self, other):
        mine, theirs = self._key(other)
        return mine >= theirs

    def __eq__(self, other):
        mine, theirs = self._key(other)
        return mine == theirs

    def __hash__(self):
        return hash((self.major, self.minor))

    def matches(self, min_version, max_version=None):
        """Whether this version lies in [min_version, max_version]."""
        if self < min_version:
            return False
        return max_version is None or self <= max_version

    def __str__(self):
        return '%d.%d' % (self.major, self.minor)

    __repr__ = __str__


def _requested(headers):
    """The version string a client asked for, or None."""
    # "compute 2.6", possibly among other services' versions; the new
    # header wins over the legacy one, as in Nova.
    for item in (headers.get(HEADER) or '').split(','):
        parts = item.split()
        if parts and parts[0].lower() == SERVICE_TYPE:
            if len(parts) != 2:
                raise exception.InvalidAPIVersion(version=item.strip())
            return parts[1]
    return headers.get(LEGACY_HEADER)


def negotiate(headers):
    """The microversion a request runs at, from its headers.

    No header means the minimum (as Nova: old clients keep old behaviour);
    "latest" means the maximum; anything outside the range is 406.
    """
    requested = _requested(headers)
    if requested is None:
        return APIVersionRequest(MIN_VERSION)
    if requested.strip().lower() == 'latest':
        return APIVersionRequest(MAX_VERSION)
    version = APIVersionRequest(requested)
    if not version.matches(MIN_VERSION, MAX_VERSION):
        raise exception.VersionNotAcceptable(
            version=str(version), min_version=MIN_VERSION,
            max_version=MAX_VERSION)
    return version


def response_headers(version):
    """The headers every versioned response carries."""
    return {HEADER: '%s %s' % (SERVICE_TYPE, version),
            LEGACY_HEADER: str(version),
            'Vary': '%s, %s' % (HEADER, LEGACY_HEADER)}


def versioned(min_version, max_version=None):
    """Mark a controller method as existing only in a version range.

    The router skips methods whose range excludes the request's version,
    and answers 404 when none is left, as Nova does.
    """
    def decorate(fn):
        fn.min_version = min_version
        fn.max_version = max_version
        return fn
    return decorate


def method_matches(fn, version):
    return version.matches(getattr(fn, 'min_version', MIN_VERSION),
                           getattr(fn, 'max_version', None))
