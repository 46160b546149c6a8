"""Terminal queries in console output that is replayed, not live.

Guests print questions for the terminal (busybox asks for the cursor
position after each prompt). Live, the user's terminal answers them and
the guest reads the answer; replayed later, the answer would reach the
guest's shell as typed input. The proxy's replay (proxy/replay.py) and
serialproxy-console's resumed history remove them; one pattern serves
both.
"""

import re

# Device status and cursor position reports (CSI n), device attributes
# (CSI c, with optional > or = parameters), and DECID (ESC Z).
PATTERN = re.compile(rb'\x1b\[[0-9;?]*n|\x1b\[[>=]?[0-9;]*c|\x1bZ')
# What could still become a query when more bytes come: an ESC, or a CSI
# with the parameters a query may have, at the end of what came so far.
_BEGUN = re.compile(rb'\x1b(?:\[[>=]?[0-9;?]*)?\Z')
# A begun query longer than this is none: it is passed on as it is.
MAX_BEGUN_BYTES = 32


def remove(data):
    """data without terminal queries."""
    return PATTERN.sub(b'', data)


class QueryRemover:
    """Removes terminal queries from bytes that come in pieces: a query
    cut in two by a frame boundary is held until its end arrives."""

    def __init__(self):
        self._held = b''

    def feed(self, data):
        """What of data (after what was held) may be written now."""
        data = self._held + data
        begun = _BEGUN.search(data, max(0, len(data) - MAX_BEGUN_BYTES))
        cut = len(data) if begun is None else begun.start()
        self._held = data[cut:]
        return remove(data[:cut])

    def end(self):
        """What was held, when no more comes (it was no query)."""
        held, self._held = self._held, b''
        return held
