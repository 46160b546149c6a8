"""One-time public keys as users push them, and the proxy's host keys.

Only public halves pass through here: a user's private key never leaves
the user, and the host keys' private halves stay with the proxy.
"""

import os
import re

import asyncssh

from serialproxy import exception

# Key types a user may push: those OpenSSH makes by default or on request,
# with signatures the proxy can check. DSA and the certificate forms are
# refused.
ACCEPTED_KEY_TYPES = ('ssh-ed25519', 'ecdsa-sha2-nistp256',
                      'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
                      'ssh-rsa')
# An RSA key of 16384 bits is about 2.8 kB in base64; more is not a key.
MAX_PUBLIC_KEY_CHARS = 4096
MIN_RSA_BITS = 2048
HOST_KEY_TYPES = ('ssh-ed25519', 'ecdsa-sha2-nistp256')
_HOST_KEY_FILES = {'ssh-ed25519': 'ssh_host_ed25519_key',
                   'ecdsa-sha2-nistp256': 'ssh_host_ecdsa_key'}
# "<server uuid>.port<N>", then what the session asks for, each after a
# dot: the SSH user name that names a console.
_CONSOLE_USER = re.compile(
    r'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'
    r'\.port([0-9]{1,2})((?:\.[^.]*)*)')
MAX_CONSOLE_USER_CHARS = 128
# A console user name with this suffix watches the console read-only (a
# spectator's seat), as a console URL's mode=view does.
VIEW_SUFFIX = '.view'
# Most a whole-number option's value may have: more is no count of lines
# or bytes anybody means.
_MAX_DIGITS = 18


def _whole_number(name, text):
    if not text.isdigit() or not text.isascii() or len(text) > _MAX_DIGITS:
        raise exception.InvalidConsoleUser(
            reason='%s takes a whole number, 0 or more, not %r'
                   % (name, text[:_MAX_DIGITS + 2]))
    return int(text)


# The name=value options a console user name may carry after its port
# (<server uuid>.port0.replay-lines=500, as GCP's serial console names
# them): option -> how its value is read, (name, text) -> value or
# InvalidConsoleUser.
USER_OPTIONS = {
    # Lines of recent output replayed before live output (0: none).
    'replay-lines': _whole_number,
    # The stream from this byte offset since boot, then live output.
    'resume': _whole_number,
}


class PublicKey:
    """A user's public key, parsed and checked: its type and fingerprint."""

    def __init__(self, key):
        self.key = key
        self.algorithm = key.get_algorithm()
        self.fingerprint = key.get_fingerprint('sha256')

    @classmethod
    def parse(cls, text):
        """From an OpenSSH public key line; InvalidSSHKey when it is not
        one, or not of an accepted type."""
        if not isinstance(text, str) or not text.strip():
            raise exception.InvalidSSHKey(reason='no public key given')
        if len(text) > MAX_PUBLIC_KEY_CHARS:
            raise exception.InvalidSSHKey(
                reason='longer than %d characters' % MAX_PUBLIC_KEY_CHARS)
        key_type = text.split(None, 1)[0]
        if key_type not in ACCEPTED_KEY_TYPES:
            raise exception.InvalidSSHKey(
                reason='type %r is not accepted (accepted: %s)' % (
                    key_type[:40], ', '.join(ACCEPTED_KEY_TYPES)))
        try:
            key = asyncssh.import_public_key(text.strip())
        except (asyncssh.KeyImportError, ValueError, TypeError):
            raise exception.InvalidSSHKey(
                reason='not an OpenSSH public key line')
        if key.get_algorithm() != key_type:
            raise exception.InvalidSSHKey(
                reason='its type %r does not match its data' % key_type)
        if (key_type == 'ssh-rsa' and
                key.pyca_key.key_size < MIN_RSA_BITS):
            raise exception.InvalidSSHKey(
                reason='an RSA key needs %d bits at least' % MIN_RSA_BITS)
        return cls(key)

    def openssh(self):
        """The key as one OpenSSH line, without a comment."""
        return self.key.export_public_key('openssh').decode().strip()


def fingerprint_of(key):
    """The SHA-256 fingerprint ssh prints, of an asyncssh public key."""
    return key.get_fingerprint('sha256')


def _console_user_match(username):
    if not isinstance(username, str) or \
            len(username) > MAX_CONSOLE_USER_CHARS:
        return None
    return _CONSOLE_USER.fullmatch(username)


def parse_console_user(username):
    """(instance uuid, port index) an SSH user name names, or None; a
    name with options (console_user_options) names the same console."""
    match = _console_user_match(username)
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def console_user_options(username):
    """What a console user name asks for after its port: {'view': True}
    for a watcher (VIEW_SUFFIX), and each USER_OPTIONS option given, by
    name, with its value; {} for none. InvalidConsoleUser, with a reason
    for the user, for an option that is unknown, given twice or has a bad
    value. The user name must name a console (parse_console_user)."""
    match = _console_user_match(username)
    if match is None:
        raise exception.InvalidConsoleUser(reason='it names no console')
    options = {}
    for part in match.group(3).split('.')[1:]:
        name, equals, text = part.partition('=')
        if not (part == 'view' or equals and name in USER_OPTIONS):
            raise exception.InvalidConsoleUser(
                reason='unknown option %r (known: view, %s)' % (
                    part[:40], ', '.join('%s=N' % known
                                         for known in USER_OPTIONS)))
        if name in options:
            raise exception.InvalidConsoleUser(
                reason='%s given twice' % name)
        options[name] = USER_OPTIONS[name](name, text) if equals else True
    return options


def watches(username):
    """Whether a console user name asks to watch read-only."""
    try:
        return console_user_options(username).get('view', False)
    except exception.InvalidConsoleUser:
        return False


def console_user(instance_uuid, index, watching=False):
    return '%s.port%d%s' % (instance_uuid, index,
                            VIEW_SUFFIX if watching else '')


def host_key_paths(key_dir):
    return [os.path.join(key_dir, _HOST_KEY_FILES[t]) for t in HOST_KEY_TYPES]


def ensure_host_keys(key_dir):
    """The host keys' paths, each made (mode 0600) when missing."""
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    paths = []
    for key_type, path in zip(HOST_KEY_TYPES, host_key_paths(key_dir)):
        if not os.path.exists(path):
            key = asyncssh.generate_private_key(key_type)
            # Written to a new name first: a reader never sees half a key.
            partial = path + '.new'
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600)
            with os.fdopen(fd, 'wb') as out:
                out.write(key.export_private_key('openssh'))
            with open(path + '.pub', 'wb') as out:
                out.write(key.export_public_key('openssh'))
            os.replace(partial, path)
        paths.append(path)
    return paths


def host_public_keys(key_dir):
    """The host keys' public halves found in key_dir, as asyncssh keys
    (the API reads these; it needs no private key)."""
    found = []
    for path in host_key_paths(key_dir):
        try:
            found.append(asyncssh.read_public_key(path + '.pub'))
        except (OSError, asyncssh.KeyImportError):
            continue
    return found


def host_key_fingerprints(key_dir):
    """SHA-256 fingerprints of the host keys found in key_dir."""
    return [fingerprint_of(key) for key in host_public_keys(key_dir)]


def known_hosts_line(host, port, public_key_lines):
    """An OpenSSH known_hosts line trusting those keys for host:port."""
    name = host if port == 22 else '[%s]:%d' % (host, port)
    return ''.join('%s %s\n' % (name, ' '.join(line.split()[:2]))
                   for line in public_key_lines)
