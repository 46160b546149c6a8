"""Console recordings: one asciicast v2 file per session.

Only what the guest printed is kept (typed passwords the guest does not
echo stay out). Files are named by instance, serial index and session id,
never by token; they are capped in size and pruned by age, and readable
by the proxy's user alone, since consoles show secrets.
"""

import codecs
import json
import os
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

SUFFIX = '.cast'
TRUNCATED = '\r\n[serialproxy: recording stopped at its size limit]\r\n'


class SessionRecorder:
    def __init__(self, directory, instance_uuid, index, session_id,
                 max_bytes, clock=time.time):
        self.clock = clock
        self.started = clock()
        self.max_bytes = max_bytes
        self.path = os.path.join(directory, '%s-%d-%s%s' % (
            instance_uuid, index, session_id, SUFFIX))
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.file = os.fdopen(fd, 'w', encoding='utf-8')
        # Bytes may split a UTF-8 character between two reads.
        self.decoder = codecs.getincrementaldecoder('utf-8')('replace')
        self.size = 0
        self.full = False
        self._write(json.dumps({
            'version': 2, 'width': 80, 'height': 24,
            'timestamp': int(self.started),
            'title': 'instance %s serial %d' % (instance_uuid, index)}))

    def _write(self, line):
        self.file.write(line + '\n')
        self.size += len(line) + 1

    def output(self, data):
        """Record bytes the guest printed."""
        if self.full:
            return
        text = self.decoder.decode(data)
        if not text:
            return
        event = json.dumps([round(self.clock() - self.started, 6), 'o',
                            text])
        if self.size + len(event) + 1 > self.max_bytes:
            self.full = True
            event = json.dumps([round(self.clock() - self.started, 6), 'o',
                                TRUNCATED])
        self._write(event)

    def close(self):
        self.file.close()


def prune(directory, retention_seconds, now=None):
    """Delete recordings older than the retention; return how many."""
    cutoff = (now or time.time()) - retention_seconds
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.endswith(SUFFIX) and entry.is_file() and \
                entry.stat().st_mtime < cutoff:
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError as exc:
                LOG.warning('Cannot prune recording %s: %s', entry.path, exc)
    if removed:
        LOG.info('Pruned %d console recordings older than %d days',
                 removed, retention_seconds // 86400)
    return removed
