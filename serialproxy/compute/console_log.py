"""The last lines of a guest's serial console log.

virtlogd writes the log (see domain_xml.serial_devices); we only read its
tail, never more than max_bytes, whatever the caller asks for.
"""

import os

from serialproxy import exception


def validate_length(length):
    """None (every line within the cap) or a count of lines, at least 0."""
    if length is None:
        return None
    if isinstance(length, bool) or not isinstance(length, int):
        try:
            length = int(str(length).strip())
        except ValueError:
            raise exception.Invalid(
                'Console output length must be a whole number of lines, '
                'not %r.' % (length,))
    if length < 0:
        raise exception.Invalid(
            'Console output length must be 0 or more lines, not %d.'
            % length)
    return length


def tail(path, length, max_bytes, instance_uuid):
    """The last length lines of the file at path, as text.

    Reads at most max_bytes from the end; a line cut by that bound is
    dropped rather than shown half. Bytes that are not UTF-8 (guests print
    anything) become U+FFFD.
    """
    length = validate_length(length)
    try:
        with open(path, 'rb') as log:
            size = log.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            log.seek(start)
            data = log.read(max_bytes)
    except FileNotFoundError:
        raise exception.ConsoleLogNotFound(
            instance_uuid=instance_uuid,
            reason='%s does not exist (the guest has not started since '
                   'its serial log was configured)' % path)
    except OSError as exc:
        raise exception.ConsoleLogNotFound(
            instance_uuid=instance_uuid,
            reason='%s cannot be read: %s' % (path, exc.strerror))
    if start > 0:
        _, _, data = data.partition(b'\n')
    lines = data.decode('utf-8', errors='replace').splitlines(keepends=True)
    if length is not None:
        lines = lines[len(lines) - length:] if length else []
    return ''.join(lines)
