"""Every way a console connection is refused before its 101, in one place.

A refusal is an HTTP status with a short reason that never names the
token, and a kind: a bounded name that metrics may label with, where the
reason may carry a time ("Console in use since ...").
"""

import oslo_messaging as messaging
from oslo_log import log as logging

from serialproxy import exception

LOG = logging.getLogger(__name__)

# The kind a status means unless a refusal says otherwise.
_KIND_OF_STATUS = {
    400: 'bad_request', 401: 'invalid_token', 403: 'origin',
    404: 'bad_request', 405: 'method', 409: 'in_use',
    426: 'bad_request', 429: 'rate_limited', 431: 'bad_request',
    500: 'internal', 503: 'unavailable',
}


class Refusal(Exception):
    def __init__(self, status, reason, kind=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind or _KIND_OF_STATUS.get(status, 'internal')


def from_error(error, client_address='-'):
    """The refusal an error during connection set-up means."""
    if isinstance(error, Refusal):
        return error
    if isinstance(error, exception.InvalidToken):
        return Refusal(401, 'Invalid or expired token')
    if isinstance(error, exception.ConsoleInUse):
        return Refusal(409, error.message)
    if isinstance(error, exception.ConsoleNotInUse):
        return Refusal(409, error.message, kind='not_in_use')
    if isinstance(error, exception.ModeNotAllowed):
        return Refusal(403, error.message, kind='mode')
    if isinstance(error, exception.TooManySpectators):
        return Refusal(429, error.message, kind='max_spectators')
    if isinstance(error, (messaging.MessagingException,
                          exception.ServiceUnavailable,
                          exception.HypervisorUnavailable)):
        # A broker, consoleauth or hypervisor that cannot answer: a new
        # URL would not help, trying again later may.
        LOG.warning('Console service unavailable for client %s: %s',
                    client_address, type(error).__name__)
        return Refusal(503, 'Console service unavailable')
    if isinstance(error, OSError):
        return Refusal(503, 'Console unreachable')
    LOG.error('Unexpected error setting up a console session for client '
              '%s', client_address, exc_info=error)
    return Refusal(500, 'Internal error')
