"""Recent console output, replayed to a user on connect.

The guest's console log holds what it printed before the user came; the
page would otherwise stay blank until the guest prints again. The log
also holds the guest's terminal queries (busybox asks for the cursor
position after each prompt): replayed, the user's terminal would answer
them and the answers would reach the guest's shell as typed input. They
are removed (terminal_queries).
"""

from serialproxy import terminal_queries

BANNER = b'\r\n\x1b[2m[recent console output]\x1b[0m\r\n'
END = b'\r\n\x1b[2m[live]\x1b[0m\r\n'


def history(text):
    """Bytes to send before live output, or b'' for none."""
    if not text:
        return b''
    data = terminal_queries.remove(text.encode('utf-8', 'replace'))
    # The log keeps what the guest wrote; a terminal needs CR LF.
    data = data.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
    return BANNER + data + END
