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
