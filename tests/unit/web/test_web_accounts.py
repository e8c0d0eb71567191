"""Password hashing and the checks on new accounts (no database needed for refusals)."""

from __future__ import annotations

import pytest

from services.accounts import InvalidAccountInput, add_user, hash_password, verify_password


def test_hash_is_argon2id_salted_and_verifies():
    first, second = hash_password("a long password"), hash_password("a long password")
    assert first.startswith("$argon2id$") and first != second
    assert verify_password(first, "a long password")
    assert not verify_password(first, "a long passwore")
    assert not verify_password("not a hash", "a long password")


@pytest.mark.parametrize(
    ("email", "password", "role", "field"),
    [
        ("nobody", "long enough pw", "reviewer", "email"),
        ("a@b.org", "short", "reviewer", "password"),
        ("a@b.org", "long enough pw", "owner", "role"),
        ("a@b.org", " " * 10, "reviewer", "password"),
        ("a@b.org", "a" * 10, "reviewer", "password"),
        ("a@b.org", "abababababab", "reviewer", "password"),
        ("someone@example.org", "someone@example.org", "reviewer", "password"),
        ("someone@example.org", "Someone@Example.org", "reviewer", "password"),
        ("longname@example.org", "longname1!", "reviewer", "password"),
        ("a@b.org", "Password123", "reviewer", "password"),
        ("a@b.org", "1234567890", "reviewer", "password"),
        ("a@b.org", "qwertyuiop", "reviewer", "password"),
        ("a@b.org", "x" * 1025 + "yzwvu", "reviewer", "password"),
        ("a" * 320 + "@b.org", "long enough pw", "reviewer", "email"),
    ],
)
def test_bad_accounts_are_refused_naming_the_field(email, password, role, field):
    with pytest.raises(InvalidAccountInput) as caught:
        add_user(
            session=None,
            email=email,
            name="X",
            password=password,
            role=role,  # type: ignore[arg-type]
            review=None,
        )
    assert caught.value.field == field


def test_a_long_name_is_refused_naming_the_field():
    with pytest.raises(InvalidAccountInput) as caught:
        add_user(
            session=None,  # type: ignore[arg-type]
            email="a@b.org",
            name="N" * 201,
            password="long enough pw",
            role="reviewer",
            review=None,
        )
    assert caught.value.field == "name" and "200" in str(caught.value)
