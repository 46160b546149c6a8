"""What the console page may ask of the proxy besides console bytes.

The page holds a console token, not a Keystone token, so it cannot call
the API's SysRq and NMI calls. Instead the API records on the token
whether its policy lets the requester send SysRq ('sysrq') and NMIs
('nmi'). The page asks the proxy what its token allows and sends its
commands, all as text frames:

    page -> proxy  {"permissions": true}
    proxy -> page  {"permissions": ["sysrq", "nmi"]}   ([] for spectators;
                   with "watch_only": true when the URL may only watch)
    page -> proxy  {"sysrq": "h"}   or   {"nmi": true}
    proxy -> page  {"sent": {"sysrq": "h"}}   or   {"error": "..."}

The page asks rather than being told unasked: websocket clients that
know nothing of this (CLIs, scripts, Nova-era clients) send no text and
so get none of it in their console stream. Console bytes stay binary
frames both ways. This module checks a command and words the notes; it
does no I/O.
"""

import dataclasses
import json

import oslo_messaging as messaging

from serialproxy import exception
from serialproxy import rpc
from serialproxy import sysrq

SYSRQ = 'sysrq'
NMI = 'nmi'
# The page's question: what may I send?
ASK_PERMISSIONS = 'permissions'
# In the order the page lists them.
PERMISSIONS = (SYSRQ, NMI)
# A command is a few bytes; anything much longer is not one, and is not
# parsed.
MAX_COMMAND_LENGTH = 256
USAGE = ('send {"sysrq": KEY}, {"nmi": true} or {"permissions": '
         'true}')
_WHAT = {SYSRQ: 'SysRq', NMI: 'NMI'}


class CommandRefused(ValueError):
    """A text frame that is not a command this page may send; its text is
    what the page is told."""


@dataclasses.dataclass(frozen=True)
class Command:
    kind: str                # SYSRQ or NMI
    key: str = None          # the SysRq key

    @property
    def note(self):
        """The command as the page wrote it."""
        return {SYSRQ: self.key} if self.kind == SYSRQ else {NMI: True}

    def __str__(self):
        return 'SysRq %s' % self.key if self.kind == SYSRQ else 'NMI'


def permissions_of(modes):
    """The page's permissions among a token's modes, in PERMISSIONS order."""
    return tuple(name for name in PERMISSIONS if name in (modes or ()))


def parse(text, permissions):
    """The Command a text frame asks for; CommandRefused if it is none,
    or one that permissions (permissions_of the token) do not allow.
    Command(ASK_PERMISSIONS) is a question, not a command to run."""
    if len(text) > MAX_COMMAND_LENGTH:
        raise CommandRefused('Command too long (over %d characters): %s'
                             % (MAX_COMMAND_LENGTH, USAGE))
    try:
        asked = json.loads(text)
    except ValueError:
        raise CommandRefused('Not a command (JSON expected): %s' % USAGE)
    if not isinstance(asked, dict) or len(asked) != 1:
        raise CommandRefused('One command per message: %s' % USAGE)
    (kind, value), = asked.items()
    if kind == SYSRQ:
        if not isinstance(value, str) or value not in sysrq.KEYCODES:
            raise CommandRefused(exception.SysRqKeyInvalid(
                key=value, keys=sysrq.KEYS).message)
        command = Command(SYSRQ, value)
    elif kind == NMI:
        if value is not True:
            raise CommandRefused('An NMI is asked for with {"nmi": true}')
        command = Command(NMI)
    elif kind == ASK_PERMISSIONS:
        if value is not True:
            raise CommandRefused('Permissions are asked for with '
                                 '{"permissions": true}')
        # Anyone may ask; the answer says what they may do.
        return Command(ASK_PERMISSIONS)
    else:
        raise CommandRefused('Unknown command %r: %s' % (kind[:40], USAGE))
    if kind not in permissions:
        raise CommandRefused('%s is not allowed with this console URL'
                             % _WHAT[kind])
    return command


def failure_reason(command, error):
    """What the page is told when the compute agent did not carry out
    command: the error's own message when it is one of ours, never a
    remote traceback."""
    if isinstance(error, exception.SerialProxyException):
        reason = error.message
    elif isinstance(error, rpc.UNSUPPORTED_METHOD_ERRORS) and \
            rpc.is_unsupported_method(error):
        reason = 'the compute host is too old for it'
    elif isinstance(error, messaging.MessagingTimeout):
        reason = 'the compute host did not answer in time'
    elif isinstance(error, messaging.MessagingException):
        reason = 'the console service is unavailable'
    else:
        reason = 'internal error in the console proxy'
    return '%s not sent: %s' % (command, reason)


def page_script():
    """sysrq-keys.js: the keys the page's menu lists, in its order, with
    what each does and, for those it confirms first, why."""
    keys = [{'key': key, 'label': label,
             'confirm': sysrq.CONSEQUENCES.get(key)}
            for key, label in sysrq.LABELS.items()]
    return ('// Generated by the console proxy from serialproxy/sysrq.py.\n'
            'window.SERIALPROXY_SYSRQ_KEYS = %s;\n'
            % json.dumps(keys)).encode('utf-8')


def permissions_note(permissions, watch_only=False):
    """watch_only: the token may only watch; the page then offers
    neither taking over nor typing."""
    note = {'permissions': list(permissions)}
    if watch_only:
        note['watch_only'] = True
    return json.dumps(note)


def sent_note(command):
    return json.dumps({'sent': command.note})


def error_note(message):
    return json.dumps({'error': message})
