"""Which dashboards may show the console page inside a frame.

[console] frame_ancestors names them. Browsers learn it from the page's
Content-Security-Policy frame-ancestors directive; the proxy's Origin
check learns it from here too, because a dashboard that opens the console
websocket from its own page sends its own origin, not the proxy's.
"""

import dataclasses
import re
import typing
import urllib.parse

SELF = "'self'"
NONE = "'none'"
_DEFAULT_PORTS = {'http': 80, 'https': 443}
# scheme://host[:port], host possibly "*.domain" (any subdomain), port
# possibly "*" (any port): the CSP host-source forms an origin can take.
_SOURCE = re.compile(
    r'^(?P<scheme>https?)://(?P<wildcard>\*\.)?'
    r'(?P<host>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9]'
    r'(?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])'
    r'(?::(?P<port>[0-9]{1,5}|\*))?/?$', re.IGNORECASE)


class InvalidFrameAncestor(ValueError):
    """A [console] frame_ancestors entry a browser could not use."""


@dataclasses.dataclass(frozen=True)
class DashboardOrigin:
    """One origin of frame_ancestors: scheme, host and port as listed."""
    scheme: str
    host: str
    any_subdomain: bool = False
    # None: the scheme's default port; '*': any port.
    port: typing.Union[int, str, None] = None
    text: str = ''

    def matches(self, scheme, host, port):
        # As browsers read a CSP source: http also admits its https form.
        if scheme != self.scheme and (self.scheme, scheme) != ('http',
                                                               'https'):
            return False
        if self.any_subdomain:
            if not host.endswith('.' + self.host):
                return False
        elif host != self.host:
            return False
        if self.port == '*':
            return True
        if self.port is None:
            return port == _DEFAULT_PORTS[scheme]
        return port == self.port


def _parse_entry(entry):
    match = _SOURCE.match(entry.strip())
    if match is None:
        raise InvalidFrameAncestor(
            '[console] frame_ancestors: %r is not %s, %s or an origin such '
            'as https://dashboard.example.com[:port] or '
            'https://*.example.com' % (entry, SELF, NONE))
    port = match.group('port')
    if port is not None and port != '*':
        port = int(port)
        if not 0 < port < 65536:
            raise InvalidFrameAncestor(
                '[console] frame_ancestors: port of %r out of range'
                % entry)
    scheme = match.group('scheme').lower()
    host = match.group('host').lower()
    text = '%s://%s%s%s' % (scheme, '*.' if match.group('wildcard') else '',
                            host, '' if port is None else ':%s' % port)
    return DashboardOrigin(scheme, host.strip('[]'),
                           bool(match.group('wildcard')), port, text)


@dataclasses.dataclass(frozen=True)
class FrameAncestors:
    """The parsed option: 'self' or not, and the dashboard origins."""
    allow_self: bool = True
    dashboards: typing.Tuple[DashboardOrigin, ...] = ()

    @classmethod
    def parse(cls, entries):
        """From the option's list; InvalidFrameAncestor on a bad entry."""
        keywords = {entry.strip().lower() for entry in entries
                    if entry.strip().startswith("'")}
        unknown = keywords - {SELF, NONE}
        if unknown:
            raise InvalidFrameAncestor(
                '[console] frame_ancestors: unknown keyword %s; only %s '
                'and %s are understood' % (sorted(unknown)[0], SELF, NONE))
        if NONE in keywords and len(entries) > 1:
            raise InvalidFrameAncestor(
                "[console] frame_ancestors: 'none' must stand alone")
        return cls(SELF in keywords,
                   tuple(_parse_entry(entry) for entry in entries
                         if not entry.strip().startswith("'")))

    @property
    def directive(self):
        """The CSP directive browsers enforce when the page is framed."""
        sources = ([SELF] if self.allow_self else []) + \
            [dashboard.text for dashboard in self.dashboards]
        return 'frame-ancestors ' + (' '.join(sources) or NONE)

    def allows_origin(self, origin):
        """Whether a websocket's Origin header is one of the dashboards."""
        if not self.dashboards:
            return False
        try:
            parts = urllib.parse.urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return False
        if port is None:
            port = _DEFAULT_PORTS[scheme]
        return any(dashboard.matches(scheme, parts.hostname, port)
                   for dashboard in self.dashboards)
