"""The token rules: how tokens are made and how they are stored."""

import hashlib
import secrets

# 32 bytes from the OS CSPRNG: 256 bits, 43 URL-safe characters.
TOKEN_BYTES = 32

# Connection modes a token may allow beyond the writer's.
CONNECT_MODES = frozenset(('view', 'take_over'))
# What a writer's session may send besides console bytes: the console
# page's menu (serialproxy/proxy/page_commands.py) and an SSH user's
# break and key (serialproxy/proxy/ssh_server.py).
PAGE_PERMISSIONS = frozenset(('sysrq', 'nmi'))
# Every mode a token may carry; its modes column (64 characters) holds
# them all, space-separated.
TOKEN_MODES = CONNECT_MODES | PAGE_PERMISSIONS


def new_token():
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token):
    """The only form of a token that is ever stored or compared."""
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


def modes_column(modes, allowed=TOKEN_MODES):
    """The modes column of a token or one-time key: those of modes that
    are allowed, space-separated, or None; anything else is dropped."""
    return ' '.join(sorted(set(modes or ()) & allowed)) or None
