"""Who the client is when a load balancer stands between it and the proxy.

A balancer in front of the proxies makes every client arrive from the
balancer's address. X-Forwarded-For and X-Forwarded-Proto say who the
client is and which scheme it used, but anyone can write them: they are
believed only from the peers listed in [console] trusted_proxies, and
ignored from any other.
"""

import ipaddress

from serialproxy.proxy.refusals import Refusal

SCHEMES = ('http', 'https')


class InvalidTrustedProxy(ValueError):
    pass


def parse_address(text):
    """An ipaddress address, or None; an IPv4-mapped IPv6 one as IPv4."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The peers whose forwarding headers are believed."""

    def __init__(self, entries=()):
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise InvalidTrustedProxy(
                    'invalid [console] trusted_proxies entry %r: %s'
                    % (entry, exc))
        self.networks = tuple(networks)

    def __bool__(self):
        return bool(self.networks)

    def __contains__(self, host):
        address = parse_address(host)
        return address is not None and any(
            address in network for network in self.networks)

    def client(self, peer_host, headers):
        """(client host, scheme or None) of a request from peer_host.

        The client is the rightmost address of X-Forwarded-For that is not
        a trusted proxy: each trusted hop appends the address it saw, so
        what lies left of the first untrusted one was written by the
        client itself and is never read. Raises a 400 Refusal when a
        trusted peer sends headers that cannot be read.
        """
        if peer_host not in self:
            return peer_host, None
        client = peer_host
        for entry in reversed(_list(headers, 'X-Forwarded-For')):
            host = _host_of(entry)
            if host is None:
                raise Refusal(400, 'Malformed X-Forwarded-For header')
            client = host
            if host not in self:
                break
        schemes = _list(headers, 'X-Forwarded-Proto')
        scheme = schemes[-1].lower() if schemes else None
        if scheme is not None and scheme not in SCHEMES:
            raise Refusal(400, 'Malformed X-Forwarded-Proto header')
        return client, scheme


def _list(headers, name):
    """The comma list of every line of a header, in order."""
    lines = headers.get_all(name) or ()
    return [item.strip(' \t') for line in lines for item in line.split(',')]


def _host_of(entry):
    """The address an X-Forwarded-For entry names, without a port."""
    if entry.startswith('['):
        inside, sep, _ = entry[1:].partition(']')
        entry = inside if sep else ''
    elif entry.count(':') == 1:
        entry = entry.partition(':')[0]
    address = parse_address(entry)
    return str(address) if address is not None else None
