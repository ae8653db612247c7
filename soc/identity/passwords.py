"""Password hashing (argon2id) and the password policy.

Hashes use argon2-cffi's defaults (argon2id, RFC 9106 low-memory profile); when those
defaults grow in a later release, a successful login rehashes the password.
"""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from soc.i18n import register
from soc.identity.errors import IdentityError

MIN_LENGTH = 12
MAX_LENGTH = 1024
"""Longer inputs are refused before hashing: argon2 would hash megabytes all the same."""

register({
    "passwords.too_short": (
        "Mật khẩu phải có ít nhất {min} ký tự (hiện có {length})",
        "The password must have at least {min} characters (it has {length})",
    ),
    "passwords.too_long": ("Mật khẩu dài quá {max} ký tự", "The password is longer than {max} characters"),
    "passwords.is_username": (
        "Mật khẩu không được trùng tên đăng nhập",
        "The password must not be the username",
    ),
})

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    """A hash no password matches, verified for unknown users so that a login for a
    name that does not exist costs as much as one for a name that does."""
    return _hasher.hash(secrets.token_urlsafe(32))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``None`` (no such user, no password) still pays
    for one verification and answers ``False``."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_policy(password: str, username: str) -> None:
    """Refuse a password the policy does not accept (422 with the reason)."""
    if len(password) < MIN_LENGTH:
        raise IdentityError(422, "passwords.too_short", min=MIN_LENGTH, length=len(password))
    if len(password) > MAX_LENGTH:
        raise IdentityError(422, "passwords.too_long", max=MAX_LENGTH)
    if password.strip().casefold() == username.strip().casefold():
        raise IdentityError(422, "passwords.is_username")


def generate_password() -> str:
    """A random password for a new account or a reset (shown to the operator once)."""
    return secrets.token_urlsafe(15)
