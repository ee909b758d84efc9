"""Secrets handling: password hashes, opaque tokens and stream keys stored as keyed hashes.

Tokens and stream keys are 256-bit random values, so a keyed SHA-256 (HMAC with the pepper) is
enough to store them: a leaked database reveals neither, and lookup stays an index probe.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_passwords = PasswordHasher()
# Verifying against this keeps login timing the same for unknown users.
_DUMMY_HASH = _passwords.hash("not a real password")

# Prefixes tell a leaked value's kind at a glance (and to secret scanners); not secrets.
SESSION_TOKEN_PREFIX = "stu_"  # noqa: S105
NODE_TOKEN_PREFIX = "stn_"  # noqa: S105
STREAM_KEY_PREFIX = "sk_"


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _passwords.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def keyed_hash(pepper: str, value: str) -> bytes:
    return hmac.new(pepper.encode(), value.encode(), hashlib.sha256).digest()


def same_secret(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
