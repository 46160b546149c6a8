"""The console page's Download log: the kept history as one file.

The page holds a console token, not a Keystone token, so it cannot read
the API's history (GET .../serial-console/output). It asks its proxy
instead, with a plain GET of its own console URL that carries

    X-Serialproxy-Download: log

and the proxy checks the token as the page's check is checked (admission,
token, access switch; any seat the token opens shows the console's
output, so being in use is no reason to refuse) and answers the history
of serial port 0 from the oldest kept byte, raw, as an attachment named
console-<instance uuid>.log.

LogPages pages through compute's get_console_history without I/O: the
first read (start 0, moved to first_available) fixes the end, so the
answer has a Content-Length and is a snapshot of what was kept when it
was asked for; each next read starts where the last ended. A read that
does not start where asked (a rotation dropped the bytes meanwhile, or
the guest rebooted and its log began again) cannot continue the file:
BrokenHistory, and the layer cuts the answer short, which the client
sees as a failed download rather than a file with a hole in it.
"""

from serialproxy import exception
from serialproxy.proxy import handshake
from serialproxy.proxy import refusals
from serialproxy.proxy.refusals import Refusal
from serialproxy.proxy.refusals import RefusalKind
from serialproxy import rpc

DOWNLOAD_HEADER = 'X-Serialproxy-Download'
DOWNLOAD_LOG = 'log'
# Bytes asked of the compute agent per read: what one download holds in
# memory at a time (and its base64 in the RPC answer), whatever the
# history's size. 16 reads for virtlogd's 4 MiB.
PAGE_BYTES = 256 * 1024
# Downloads one proxy process streams at once; more are refused (503)
# until one ends. Each holds about a page and an RPC thread per read.
DOWNLOADS_AT_ONCE = 4
BUSY_REASON = ('Too many console logs are being downloaded from this '
               'proxy: try again in a moment')
UNKNOWN_REASON = ('Unknown download: ask for %s: %s'
                  % (DOWNLOAD_HEADER, DOWNLOAD_LOG))


class BrokenHistory(Exception):
    """The history moved under a download: it cannot go on."""


def file_name(instance_uuid):
    return 'console-%s.log' % instance_uuid


class LogPages:
    """What to read next, and the bytes each answer adds to the file."""

    def __init__(self, instance_uuid, page_bytes=PAGE_BYTES):
        self.instance_uuid = instance_uuid
        self.page_bytes = page_bytes
        # Set by the first answer: where the file begins and ends.
        self.first = None
        self.end = None
        self.next_start = 0
        self.sent = 0

    @property
    def done(self):
        return self.end is not None and self.next_start >= self.end

    def next_read(self):
        """(start, max_bytes) of the next get_console_history call."""
        if self.end is None:
            return 0, self.page_bytes
        return self.next_start, min(self.page_bytes,
                                    self.end - self.next_start)

    def take(self, answer):
        """The file's bytes in an answer (get_console_history's dict,
        data as bytes); BrokenHistory when they do not follow on."""
        data = answer['data']
        if self.end is None:
            self.first = self.next_start = answer['start']
            self.end = max(answer['end'], self.first)
        elif answer['start'] != self.next_start:
            raise BrokenHistory(
                'asked for offset %d, the log now starts at %d (rotated '
                'or begun again)' % (self.next_start, answer['start']))
        data = data[:self.end - self.next_start]
        if not data and not self.done:
            raise BrokenHistory('the log ended at %d, before %d'
                                % (self.next_start, self.end))
        self.next_start += len(data)
        self.sent += len(data)
        return data

    def head(self, security_headers=()):
        """The answer's status line and headers, once the first answer
        told the size."""
        headers = [('Content-Type', 'text/plain'),
                   ('Content-Disposition', 'attachment; filename="%s"'
                    % file_name(self.instance_uuid)),
                   ('X-Serialproxy-Log-Start', str(self.first)),
                   ('X-Serialproxy-Log-End', str(self.end))]
        return handshake.response_head(200, list(headers) +
                                       list(security_headers),
                                       self.end - self.first)


def wants_download(request):
    """Whether a plain GET asks for the Download log (the header's value
    checked by check_download)."""
    return request.headers.get(DOWNLOAD_HEADER) is not None


def check_download(request):
    """Refusal (400) for a download of anything but the log."""
    if request.headers.get(DOWNLOAD_HEADER, '').strip().lower() != \
            DOWNLOAD_LOG:
        raise Refusal(400, UNKNOWN_REASON)


def refusal_of(error, client_address='-'):
    """The answer to a download that failed before its first byte: the
    check's refusals, and the history's own errors in words that name no
    host or path."""
    if isinstance(error, exception.ConsoleLogNotFound):
        return Refusal(404, error.tenant_message())
    if isinstance(error, exception.ConsoleHistoryUnavailable):
        return Refusal(503, error.message, RefusalKind.UNAVAILABLE)
    if isinstance(error, rpc.UNSUPPORTED_METHOD_ERRORS) and \
            rpc.is_unsupported_method(error):
        return Refusal(501, 'The compute host of this server cannot '
                            'return its console log yet',
                       RefusalKind.UNAVAILABLE)
    if isinstance(error, BrokenHistory):
        return Refusal(503, 'The console log changed while it was read: '
                            'try again', RefusalKind.UNAVAILABLE)
    return refusals.from_error(error, client_address)
