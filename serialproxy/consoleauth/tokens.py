"""The token rules: how tokens are made and how they are stored."""

import hashlib
import secrets

# 32 bytes from the OS CSPRNG: 256 bits, 43 URL-safe characters.
TOKEN_BYTES = 32

# Typing in the console: the writer's seat (the default mode) and
# take_over, which takes that seat. A watch-only token or key lacks it.
WRITE = 'write'
# Connection modes a token may allow beyond the writer's.
CONNECT_MODES = frozenset(('view', 'take_over'))
# What a writer's session may send besides console bytes: the console
# page's menu (serialproxy/proxy/page/commands.py) and an SSH user's
# break and key (serialproxy/proxy/ssh_server.py).
PAGE_PERMISSIONS = frozenset(('sysrq', 'nmi'))
# Every mode a token may carry; its modes column (64 characters) holds
# them all, space-separated.
TOKEN_MODES = CONNECT_MODES | PAGE_PERMISSIONS
# What a watch-only token may carry: watching is all it does.
WATCH_ONLY_MODES = frozenset(('view',))
# Stored in the modes column of a watch-only token or key. Rows issued
# before 'write' was a mode (by an older consoleauth too) name neither it
# nor this marker, and were all writers' (their URL or key needed the
# writer's policy): a row reads as a writer's unless it is marked.
WATCH_ONLY_MARK = 'watch_only'


def new_token():
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token):
    """The only form of a token that is ever stored or compared."""
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


def modes_column(modes, allowed=TOKEN_MODES, write=True):
    """The modes column of a token or one-time key: those of modes that
    are allowed, space-separated, with 'write' when write, else only
    those a watch-only token may carry and the watch-only mark; anything
    else is dropped."""
    if not write:
        kept = set(modes or ()) & allowed & WATCH_ONLY_MODES
        kept.add(WATCH_ONLY_MARK)
    else:
        kept = set(modes or ()) & allowed
        kept.add(WRITE)
    return ' '.join(sorted(kept))


def modes_of(column):
    """The modes a token or key row allows, from its modes column:
    'write' among them unless the row is marked watch-only."""
    modes = set((column or '').split())
    if WATCH_ONLY_MARK in modes:
        modes -= {WATCH_ONLY_MARK, WRITE}
    else:
        modes.add(WRITE)
    return sorted(modes)


def is_watch_only(column):
    return WRITE not in modes_of(column)


def console_is_watch_only(console):
    """Whether a console consoleauth answered is a watch-only token's:
    it says so from 1.11 on; before, its modes hold the stored mark."""
    return bool(console.get('watch_only') or
                WATCH_ONLY_MARK in console.get('modes', ()))
