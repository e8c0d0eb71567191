"""Sign-in costs the same for unknown, inactive and active accounts (no timing oracle), and the
longest password an account accepts can be used to sign in (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from db.models import Review
from services import accounts
from services.accounts import MAX_PASSWORD_LENGTH, add_user, disable_user

pytestmark = pytest.mark.integration


def test_every_failed_sign_in_verifies_one_hash(seed, make_client, factory, monkeypatch):
    """Counting argon2 verifications (the real ones run): the cost that made an inactive
    account answer ~20x faster than an active one was the verification it skipped."""
    with factory() as session, session.begin():
        disable_user(session=session, email="bob@example.org")
    calls: list[str] = []
    real = accounts.verify_password

    def counting(password_hash: str, password: str) -> bool:
        calls.append(password_hash[:9])
        return real(password_hash, password)

    monkeypatch.setattr(accounts, "verify_password", counting)
    client = make_client()
    for email in ("bob@example.org", "alice@example.org", "nobody@example.org"):
        r = client.post("/api/session", json={"email": email, "password": "a wrong password"})
        assert r.status_code == 401 and r.json()["detail"] == "email or password is wrong"
    assert calls == ["$argon2id"] * 3


def test_the_longest_accepted_password_signs_in(seed, make_client, factory):
    longest = ("a long passphrase " * 100)[:MAX_PASSWORD_LENGTH]
    with factory() as session, session.begin():
        add_user(
            session=session,
            email="long@example.org",
            name="Long",
            password=longest,
            role="reviewer",
            review=session.get(Review, seed.review_id),
        )
    api = make_client().post(
        "/api/session", json={"email": "long@example.org", "password": longest}
    )
    assert api.status_code == 200
    browser = make_client()
    form = browser.post(
        "/login",
        data={
            "email": "long@example.org",
            "password": longest,
            "csrf_token": browser.headers["X-CSRF-Token"],
        },
    )
    assert form.status_code == 303 and form.headers["location"] == "/"
