"""Every way a console connection is refused before it opens, in one place.

A refusal is an HTTP status with a short reason that never names the
token, and a kind: one of RefusalKind, a bounded name that metrics label
with, where the reason may carry a time ("Console in use since ...").
RefusalKind is the one list of kinds. The errors that may refuse a
console (serialproxy.exception) carry their kind beside their HTTP code,
so from_error() reads them rather than knowing each; what is left here
is the errors of other libraries (the broker, sockets) and bugs.

This module imports nothing of serialproxy: serialproxy.exception
imports it.
"""

import enum

import oslo_messaging as messaging
from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class RefusalKind(str, enum.Enum):
    """Why a connection was refused, as metrics and logs may name it."""
    BAD_REQUEST = 'bad_request'
    METHOD = 'method'
    ORIGIN = 'origin'
    INVALID_TOKEN = 'invalid_token'
    IN_USE = 'in_use'
    NOT_IN_USE = 'not_in_use'
    MODE = 'mode'
    MAX_SPECTATORS = 'max_spectators'
    ACCESS = 'access'
    RELAY = 'relay'
    RATE_LIMITED = 'rate_limited'
    CAPACITY = 'capacity'
    UNAVAILABLE = 'unavailable'
    TIMEOUT = 'timeout'
    TLS_ONLY = 'tls_only'
    INTERNAL = 'internal'

    def __str__(self):
        return self.value


# The kind a status means unless a refusal says otherwise.
_KIND_OF_STATUS = {
    400: RefusalKind.BAD_REQUEST, 401: RefusalKind.INVALID_TOKEN,
    403: RefusalKind.ORIGIN, 404: RefusalKind.BAD_REQUEST,
    405: RefusalKind.METHOD, 409: RefusalKind.IN_USE,
    426: RefusalKind.BAD_REQUEST, 429: RefusalKind.RATE_LIMITED,
    431: RefusalKind.BAD_REQUEST, 500: RefusalKind.INTERNAL,
    503: RefusalKind.UNAVAILABLE,
}

UNAVAILABLE_REASON = 'Console service unavailable'


class Refusal(Exception):
    def __init__(self, status, reason, kind=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = RefusalKind(kind) if kind else \
            _KIND_OF_STATUS.get(status, RefusalKind.INTERNAL)


def missing_token():
    """The refusal of a console request that carries no token at all."""
    return Refusal(401, 'Missing token', RefusalKind.INVALID_TOKEN)


def from_error(error, client_address='-'):
    """The refusal an error during connection set-up means."""
    if isinstance(error, Refusal):
        return error
    kind = getattr(error, 'refusal_kind', None)
    if kind is not None:
        if kind is RefusalKind.UNAVAILABLE:
            _log_unavailable(error, client_address)
        return Refusal(error.code, error.refusal_reason or error.message,
                       kind)
    if isinstance(error, messaging.MessagingException):
        _log_unavailable(error, client_address)
        return Refusal(503, UNAVAILABLE_REASON, RefusalKind.UNAVAILABLE)
    if isinstance(error, OSError):
        return Refusal(503, 'Console unreachable', RefusalKind.UNAVAILABLE)
    LOG.error('Unexpected error setting up a console session for client '
              '%s', client_address, exc_info=error)
    return Refusal(500, 'Internal error', RefusalKind.INTERNAL)


def _log_unavailable(error, client_address):
    # A broker, consoleauth or hypervisor that cannot answer: a new URL
    # would not help, trying again later may.
    LOG.warning('Console service unavailable for client %s: %s',
                client_address, type(error).__name__)
