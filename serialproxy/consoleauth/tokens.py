"""The token rules: how tokens are made and how they are stored."""

import hashlib
import secrets

# 32 bytes from the OS CSPRNG: 256 bits, 43 URL-safe characters.
TOKEN_BYTES = 32


def new_token():
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token):
    """The only form of a token that is ever stored or compared."""
    return hashlib.sha256(token.encode('utf-8')).hexdigest()
