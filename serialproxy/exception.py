"""The errors that cross service boundaries.

Each carries a message format and the HTTP status the API or the proxy
answers with; those that may refuse a console connection also carry the
kind of refusal it is (proxy/refusals.RefusalKind). They travel over RPC
by name (see serialproxy.rpc), so the caller re-raises the same class
with the same keyword arguments.
"""

import datetime

from serialproxy.proxy.refusals import RefusalKind


class SerialProxyException(Exception):
    msg_fmt = 'An unknown error occurred.'
    # The message for callers who are not admins, where msg_fmt names
    # what only operators should see (a compute host, a file path); it
    # takes no arguments, so a message given whole cannot leak through.
    tenant_msg = None
    code = 500
    # Set on errors that may refuse a console connection: the kind the
    # proxy counts the refusal as, and the reason it answers beside
    # code (the message when None). Any other error is a bug there.
    refusal_kind = None
    refusal_reason = None

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if not message:
            message = self.msg_fmt % kwargs
        self.message = message
        super().__init__(message)

    def tenant_message(self):
        """What a caller who is not an admin is told."""
        return self.tenant_msg or self.message


class Invalid(SerialProxyException):
    msg_fmt = 'Invalid request.'
    code = 400


class NotFound(SerialProxyException):
    msg_fmt = 'Not found.'
    code = 404


class Conflict(SerialProxyException):
    msg_fmt = 'Conflict.'
    code = 409


class InstanceNotFound(NotFound):
    msg_fmt = 'Instance %(instance_uuid)s could not be found.'


class InstanceNotRunning(Conflict):
    msg_fmt = 'Instance %(instance_uuid)s is not running.'


class SysRqKeyInvalid(Invalid):
    msg_fmt = ('%(key)r is not a SysRq key; the keys are %(keys)s.')


class SerialPortNotFound(Invalid):
    msg_fmt = ('Instance %(instance_uuid)s has no TCP serial port with '
               'index %(index)s.')


class DomainXMLInvalid(Invalid):
    msg_fmt = 'Domain XML cannot be parsed: %(reason)s'


class SerialPortCountInvalid(Invalid):
    msg_fmt = ('Number of serial ports %(count)r (hw_serial_port_count) is '
               'not valid: expected an integer of at least 1.')


class SerialPortNumberLimitExceeded(Invalid):
    # Named and worded as Nova's, which refuses the same requests.
    msg_fmt = ('Maximum number of serial port exceeds %(allowed)d for '
               '%(virt_type)s.')


class PortRangeExhausted(Invalid):
    # 400 as in Nova (SocketPortRangeExhaustedException is Invalid): the
    # request cannot succeed until an operator frees or widens the range.
    msg_fmt = ('No free serial console port is left in range %(port_range)s '
               'on host %(host)s (%(busy)d found in use by other programs); '
               'free ports come back as instances are deleted.')
    tenant_msg = ('No free serial console port is left on the compute '
                  'host of this server; free ports come back as instances '
                  'are deleted.')


class PortPoolUnavailable(SerialProxyException):
    msg_fmt = ('The serial port pool of host %(host)s is unavailable: '
               '%(reason)s')
    tenant_msg = ('The serial port pool of the compute host of this server '
                  'is unavailable; try again later.')
    code = 503


class InvalidPortRange(Invalid):
    msg_fmt = ('[serial_console] port_range %(port_range)r is not valid: '
               '%(reason)s. Expected "lo:hi" with 1 <= lo < hi <= 65535.')


class ConsoleLogNotFound(NotFound):
    msg_fmt = ('Instance %(instance_uuid)s has no serial console log: '
               '%(reason)s')
    # The reason may name the log file's path on the compute host.
    tenant_msg = 'This server has no serial console log.'


class ConsoleHistoryUnavailable(SerialProxyException):
    msg_fmt = 'The console history cannot be read now: %(reason)s.'
    code = 503


class ConsoleTypeUnavailable(Invalid):
    msg_fmt = 'Unavailable console type %(console_type)s.'


class ConsoleNotEnabled(SerialProxyException):
    msg_fmt = 'Serial consoles are disabled on this cloud.'
    code = 501


class InvalidToken(SerialProxyException):
    # Never put the token itself in this message: it reaches logs and
    # HTTP bodies.
    msg_fmt = 'The console token is missing, unknown or expired.'
    code = 401
    refusal_kind = RefusalKind.INVALID_TOKEN
    refusal_reason = 'Invalid or expired token'


class ConsoleInUse(Conflict):
    # Says since when, never who: the holder's identity is not the
    # second user's business.
    msg_fmt = 'Console in use since %(since)s'
    refusal_kind = RefusalKind.IN_USE

    @classmethod
    def since_epoch(cls, started_at):
        return cls(since=datetime.datetime.fromtimestamp(
            started_at, datetime.timezone.utc).isoformat(timespec='seconds'))


class ConsoleNotInUse(Conflict):
    msg_fmt = ('Nobody is using this console: there is nothing to watch; '
               'connect without mode=view')
    refusal_kind = RefusalKind.NOT_IN_USE

    def __init__(self, message=None, **kwargs):
        if not message and kwargs.get('watch_only'):
            # Its URL cannot connect as the writer: no advice to.
            message = ('Nobody is using this console: there is nothing to '
                       'watch, and this console URL is watch-only')
        super().__init__(message, **kwargs)


class ModeNotAllowed(SerialProxyException):
    """watch_only: the token (or key) may not write, so neither the
    writer's seat nor take_over is for it."""
    msg_fmt = 'This console URL does not allow mode=%(mode)s'
    code = 403
    refusal_kind = RefusalKind.MODE

    def __init__(self, message=None, **kwargs):
        if not message and kwargs.get('watch_only'):
            message = ('This console URL is watch-only: it does not allow '
                       'mode=%(mode)s' % kwargs)
        super().__init__(message, **kwargs)


class ConsoleAccessDisabled(SerialProxyException):
    """Serial console access is switched off for the console's server,
    its project or the whole cloud (level): the reason of a refused URL,
    key or connection and of a session the switch ended."""
    msg_fmt = 'Serial console access is turned off for this %(level)s'
    code = 403
    refusal_kind = RefusalKind.ACCESS


class TooManySpectators(SerialProxyException):
    msg_fmt = 'This console already has %(limit)d spectators'
    code = 429
    refusal_kind = RefusalKind.MAX_SPECTATORS


class SessionNotFound(NotFound):
    msg_fmt = 'Console session %(session_id)s could not be found.'


class HypervisorUnavailable(SerialProxyException):
    msg_fmt = 'The compute host %(host)s cannot reach its hypervisor.'
    tenant_msg = ('The compute host of this server cannot reach its '
                  'hypervisor; try again later.')
    code = 503
    refusal_kind = RefusalKind.UNAVAILABLE
    refusal_reason = 'Console service unavailable'


class ServiceUnavailable(SerialProxyException):
    msg_fmt = 'The %(service)s service did not answer in time.'
    code = 503
    refusal_kind = RefusalKind.UNAVAILABLE
    refusal_reason = 'Console service unavailable'


class DatabaseUnavailable(ServiceUnavailable):
    msg_fmt = ('The console service cannot reach its database; try again '
               'later.')


class InvalidAPIVersion(Invalid):
    msg_fmt = ('API version %(version)s is not in the form "X.Y" or '
               '"latest".')

    def __init__(self, message=None, **kwargs):
        # A header value echoed back: keep it short.
        version = str(kwargs.get('version', ''))
        if len(version) > 32:
            kwargs['version'] = version[:32] + '...'
        super().__init__(message, **kwargs)


class VersionNotAcceptable(SerialProxyException):
    msg_fmt = ('Version %(version)s is not supported by the API. Minimum '
               'is %(min_version)s and maximum is %(max_version)s.')
    code = 406


class ValidationError(Invalid):
    msg_fmt = 'Invalid input: %(detail)s'


class RequestTooLarge(SerialProxyException):
    msg_fmt = 'Request body is larger than %(limit)d bytes.'
    code = 413


class PolicyNotAuthorized(SerialProxyException):
    msg_fmt = 'Policy does not allow %(action)s to be performed.'
    code = 403


class Unauthorized(SerialProxyException):
    msg_fmt = 'Authentication required.'
    code = 401


class ConsoleOutputUnavailable(SerialProxyException):
    msg_fmt = ('Compute host %(host)s cannot return console output of '
               'instance %(instance_uuid)s.')
    tenant_msg = ('The compute host of this server cannot return its '
                  'console output.')
    code = 501


class InvalidContentType(SerialProxyException):
    msg_fmt = 'Unsupported Content-Type %(content_type)r: send JSON.'
    code = 415


class ServerActionNotFound(Invalid):
    msg_fmt = 'There is no such action: %(action)s'


class FeatureUnavailable(SerialProxyException):
    msg_fmt = ('The %(service)s service of this deployment does not offer '
               '%(feature)s yet.')
    code = 501


class InvalidSSHKey(Invalid):
    msg_fmt = 'Invalid SSH public key: %(reason)s'


class InvalidConsoleUser(Invalid):
    msg_fmt = 'Bad console user name: %(reason)s'


class SSHKeyRefused(SerialProxyException):
    # Says why without the key: a key is public, but its owner is not the
    # business of whoever tries it.
    msg_fmt = ('No live one-time key for this console matches: push a '
               'public key for it through the API (it is good for '
               '%(ttl)d seconds, once).')
    code = 401
    refusal_kind = RefusalKind.INVALID_TOKEN


class SSHConsolesDisabled(SerialProxyException):
    msg_fmt = 'Serial consoles over SSH are disabled on this cloud.'
    code = 501
