"""A guest's console log as one stream of bytes, by offset since its boot.

virtlogd writes serial port 0's output to <log>. When <log> would grow
past max_size it renames <log>.(K-2) to <log>.(K-1), ..., <log> to
<log>.0 (the oldest, <log>.(K-1), is overwritten: dropped) and starts a
new <log>; K is max_backups. At each start of the domain (append='off')
it deletes them all. The kept files, oldest first, are the tail of the
stream the guest printed since boot; this module reads them as one
stream (any <log>.N counts, highest N oldest, so a .1-based scheme reads
the same).

Offsets. What the files cannot say is how many bytes were dropped before
the oldest one. A small offset record per console (JSON, under the
agent's state path) remembers, for each file seen, its inode, the first
bytes it holds and the stream offset of its first byte. A rename keeps
the inode and a file's head never changes once written, so a file keeps
its offset while it moves down the backups; a file ends where the next
begins (backups no longer grow). The offsets of all kept files therefore
follow from any one the record knows. The record is brought up to date
on every read and by the agent's scan of running guests every
[compute] console_log_scan_interval seconds: offsets stay exact as long
as the guest prints less than about max_backups * max_size between two
looks (6 MiB with virtlogd's defaults; a serial port is far slower).

When no kept file is known:
- first look, or the domain booted again (libvirt's domain id changed):
  the oldest kept file starts at 0, for the log began at this boot;
- same boot: every file the record knew was dropped unseen. The stream
  goes on at the end the record knew: readers see a gap (logged), never
  a repeat, for offsets never go back.
"""

import base64
import json
import os
import re
import threading
import time

from oslo_log import log as logging

from serialproxy import exception

LOG = logging.getLogger(__name__)

# Bytes of a file's beginning the record keeps to tell a renamed file
# from a new one that got a dropped file's inode number.
HEAD_BYTES = 32
# The most one read returns, whatever the caller asks: the API's own cap
# ([api] console_history_max_bytes) is lower; this bounds the agent's
# memory against any caller.
READ_LIMIT = 16 * 1024 * 1024
# Attempts at a listing that no rotation changed while it was taken.
_LISTING_ATTEMPTS = 20


class Segment:
    """One kept file of the stream, opened: a rotation no longer moves
    what it reads."""

    def __init__(self, name, fd, inode, size, head):
        self.name = name
        self.fd = fd
        self.inode = inode
        self.size = size
        self.head = head
        self.start = None

    @property
    def end(self):
        return self.start + self.size


def _backup_number(base, name):
    """N of a backup named base.N, None for any other name."""
    match = re.fullmatch(re.escape(base) + r'\.([0-9]{1,6})', name)
    return int(match.group(1)) if match else None


def _names(path):
    """The kept files of the log at path, oldest first."""
    directory, base = os.path.split(path)
    try:
        entries = os.listdir(directory or '.')
    except FileNotFoundError:
        return []
    backups = sorted(((n, e) for e in entries
                      for n in [_backup_number(base, e)] if n is not None),
                     reverse=True)
    names = [os.path.join(directory, e) for _, e in backups]
    if base in entries:
        names.append(path)
    return names


def _open(names):
    segments = []
    try:
        for name in names:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                st = os.fstat(fd)
                head = os.pread(fd, HEAD_BYTES, 0)
            except BaseException:
                os.close(fd)
                raise
            segments.append(Segment(name, fd, st.st_ino, st.st_size, head))
    except BaseException:
        close(segments)
        raise
    return segments


def close(segments):
    for segment in segments:
        os.close(segment.fd)


def _unchanged(path, segments):
    """Whether every name still is the file opened under it."""
    if [s.name for s in segments] != _names(path):
        return False
    try:
        return all(os.stat(s.name).st_ino == s.inode for s in segments)
    except FileNotFoundError:
        return False


def open_segments(path):
    """The kept files of the log at path, oldest first, opened together
    between two rotations (a rotation renames them one by one)."""
    for attempt in range(_LISTING_ATTEMPTS):
        segments = _open(_names(path))
        if _unchanged(path, segments):
            return segments
        close(segments)
        time.sleep(0.005 * (attempt + 1))
    raise exception.ConsoleHistoryUnavailable(
        reason='the log kept rotating while it was read; try again')


class OffsetRecord:
    """Where the stream's kept files begin, as last seen; a JSON file."""

    def __init__(self, path, log_path):
        self.path = path
        self.log_path = log_path
        self.boot = None
        self.end = 0
        # inode -> {'start': offset, 'head': hex of the first bytes}
        self.files = {}
        self._saved = None

    def load(self):
        try:
            with open(self.path) as f:
                data = json.load(f)
            if data.get('log') != self.log_path:
                # The instance logs elsewhere now: another stream.
                return self
            self.boot = data.get('boot')
            self.end = int(data.get('end', 0))
            self.files = {int(k): v for k, v in data['files'].items()}
            self._saved = self._document()
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            LOG.warning('Ignoring the damaged console offset record %s: %s',
                        self.path, exc)
        return self

    def _document(self):
        return {'log': self.log_path, 'boot': self.boot, 'end': self.end,
                'files': {str(k): v for k, v in self.files.items()}}

    def save(self):
        """Write the record if it changed, atomically."""
        document = self._document()
        if document == self._saved:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = '%s.%d.tmp' % (self.path, threading.get_ident())
        with open(tmp, 'w') as f:
            json.dump(document, f)
        os.replace(tmp, self.path)
        self._saved = document

    def start_of(self, segment):
        """The offset the record knows for this file, or None."""
        known = self.files.get(segment.inode)
        if known is None:
            return None
        head = bytes.fromhex(known['head'])
        # The record saw the head of a file that has grown since.
        size = min(len(head), len(segment.head))
        if head[:size] != segment.head[:size]:
            return None
        return known['start']


def place(segments, record, boot=None):
    """Give each segment its stream offset, and the record what it now
    knows (see the module's docstring). segments are oldest first."""
    if boot is not None and record.boot is not None and boot != record.boot:
        record.files, record.end = {}, 0
        anchor = None
    else:
        anchor = next((i for i, s in enumerate(segments)
                       if record.start_of(s) is not None), None)
    if anchor is None:
        start = record.end if record.files else 0
        if segments and record.files:
            LOG.warning('Console log %s rotated more than it keeps between '
                        'two looks: its offsets go on at %d, past a gap',
                        segments[-1].name, start)
        anchor = 0
    else:
        start = record.start_of(segments[anchor])
    if segments:
        segments[anchor].start = start
        for i in range(anchor - 1, -1, -1):
            segments[i].start = segments[i + 1].start - segments[i].size
        for i in range(anchor + 1, len(segments)):
            segments[i].start = segments[i - 1].end
        if segments[0].start < 0:
            # Only a damaged record gets here; never hand out negatives.
            shift = -segments[0].start
            for segment in segments:
                segment.start += shift
    if boot is not None:
        record.boot = boot
    record.files = {s.inode: {'start': s.start, 'head': s.head.hex()}
                    for s in segments}
    record.end = max(record.end, segments[-1].end) if segments \
        else record.end


def read_range(segments, start, count):
    """count bytes of the stream from start, from the opened segments."""
    chunks = []
    end = start + count
    for segment in segments:
        if segment.end <= start or segment.start >= end:
            continue
        offset = max(start, segment.start)
        size = min(end, segment.end) - offset
        chunk = os.pread(segment.fd, size, offset - segment.start)
        chunks.append(chunk)
        if len(chunk) < size:
            # A file shorter than when it was opened: truncated under us.
            break
    return b''.join(chunks)


def validate_page(start, max_bytes):
    """(start, max_bytes) as integers; Invalid with a reason otherwise.

    start: None or negative for that many bytes before the end (None:
    max_bytes); max_bytes at least 1.
    """
    def integer(value, name):
        if value is None:
            return None
        if isinstance(value, bool):
            raise exception.Invalid('%s must be an integer.' % name)
        try:
            return int(str(value).strip())
        except ValueError:
            raise exception.Invalid('%s must be an integer, not %r.'
                                    % (name, str(value)[:32]))
    start = integer(start, 'start')
    max_bytes = integer(max_bytes, 'max_bytes')
    if max_bytes is not None and max_bytes < 1:
        raise exception.Invalid('max_bytes must be at least 1, not %d.'
                                % max_bytes)
    return start, max_bytes


def page(segments, start, max_bytes):
    """The answer to a history request, from placed segments.

    {'data': bytes, 'start': where data begins, 'next': the offset after
    it, 'first_available': the oldest kept offset, 'end': the stream's
    end when read}.
    """
    first = segments[0].start if segments else 0
    end = segments[-1].end if segments else 0
    if start is None:
        start = end - max_bytes
    elif start < 0:
        start = end + start
    start = min(max(start, first), end)
    data = read_range(segments, start, min(max_bytes, end - start))
    return {'data': data, 'start': start, 'next': start + len(data),
            'first_available': first, 'end': end}


class ConsoleHistories:
    """The console logs of this host's guests, read by offset.

    One lock per console serialises its record; different consoles are
    read in parallel.
    """

    def __init__(self, record_dir, max_bytes=READ_LIMIT):
        self.record_dir = record_dir
        self.max_bytes = max_bytes
        self._locks = {}
        self._locks_lock = threading.Lock()

    def _lock(self, instance_uuid):
        with self._locks_lock:
            return self._locks.setdefault(instance_uuid, threading.Lock())

    def _placed(self, instance_uuid, log_path, boot):
        segments = open_segments(log_path)
        try:
            record = OffsetRecord(os.path.join(
                self.record_dir, '%s.json' % instance_uuid), log_path).load()
            place(segments, record, boot)
            try:
                record.save()
            except OSError as exc:
                LOG.warning('Cannot save the console offset record of '
                            'instance %s: %s', instance_uuid, exc)
        except BaseException:
            close(segments)
            raise
        return segments

    def observe(self, instance_uuid, log_path, boot=None):
        """Bring the offset record of a console up to date."""
        with self._lock(instance_uuid):
            close(self._placed(instance_uuid, log_path, boot))

    def forget_others(self, instance_uuids):
        """Remove the records of consoles other than these (of domains
        that are gone), so that records do not pile up."""
        keep = {'%s.json' % u for u in instance_uuids}
        try:
            names = os.listdir(self.record_dir)
        except FileNotFoundError:
            return
        for name in names:
            if name.endswith('.json') and name not in keep:
                try:
                    os.unlink(os.path.join(self.record_dir, name))
                except FileNotFoundError:
                    pass

    def read(self, instance_uuid, log_path, start=None, max_bytes=None,
             boot=None):
        """A page of the console's history, base64 in 'data' for RPC.

        ConsoleLogNotFound (a reason naming no path) when the log has no
        file at all.
        """
        start, max_bytes = validate_page(start, max_bytes)
        max_bytes = min(max_bytes or self.max_bytes, self.max_bytes)
        with self._lock(instance_uuid):
            segments = self._placed(instance_uuid, log_path, boot)
        try:
            if not segments:
                raise exception.ConsoleLogNotFound(
                    instance_uuid=instance_uuid,
                    reason='the guest has written no console log since '
                           'its serial log was configured')
            answer = page(segments, start, max_bytes)
        finally:
            close(segments)
        answer['data'] = base64.b64encode(answer['data']).decode('ascii')
        return answer
