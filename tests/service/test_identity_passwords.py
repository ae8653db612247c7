"""Passwords: argon2id hashes, the policy, and rehashing on login."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from soc.config import AuthConfig
from soc.db import Database
from soc.identity.errors import IdentityError
from soc.identity.login import login
from soc.identity.models import UserRow
from soc.identity.passwords import check_policy, hash_password, verify_password
from tests.service.identity_fixtures import PASSWORD, Account, make_user

__all__ = ["make_user"]


@pytest.mark.real_argon2
def test_password_hashes_are_argon2id() -> None:
    assert hash_password(PASSWORD).startswith("$argon2id$")


def test_a_hash_verifies_its_password_and_no_other() -> None:
    digest = hash_password(PASSWORD)
    assert verify_password(digest, PASSWORD)
    assert not verify_password(digest, PASSWORD + "x")


def test_no_hash_never_verifies() -> None:
    assert not verify_password(None, PASSWORD)


def test_a_corrupt_hash_does_not_verify() -> None:
    assert not verify_password("$argon2id$broken", PASSWORD)


def test_stored_user_keeps_a_hash_not_the_password(db: Database, make_user: Callable[..., Account]) -> None:
    account = make_user("hashed")
    with db.read() as session:
        stored = session.get_one(UserRow, account.id).password_hash
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored


def test_policy_refuses_passwords_shorter_than_twelve_characters() -> None:
    with pytest.raises(IdentityError) as refused:
        check_policy("short-pass1", "someone")
    assert refused.value.status == 422 and refused.value.key == "passwords.too_short"


def test_policy_accepts_twelve_characters() -> None:
    check_policy("exactly12chr", "someone")


def test_policy_refuses_the_username_whatever_its_case() -> None:
    with pytest.raises(IdentityError) as refused:
        check_policy("Nguyen.Van.An", "nguyen.van.an")
    assert refused.value.key == "passwords.is_username"


@pytest.mark.real_argon2
def test_login_rehashes_a_password_hashed_with_weaker_parameters(db: Database,
                                                               make_user: Callable[..., Account]) -> None:
    account = make_user("oldhash")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with db.write() as session:
        session.execute(update(UserRow).where(UserRow.id == account.id).values(password_hash=weak))
    login(db, AuthConfig(), account.username, PASSWORD)
    with db.read() as session:
        stored = session.get_one(UserRow, account.id).password_hash
    assert stored is not None and stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)
    assert verify_password(stored, PASSWORD)
