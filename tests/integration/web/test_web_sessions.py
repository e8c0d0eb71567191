"""Sign-in sessions end when they should: a cookie captured before sign-out, a password change
or deactivation gets 401 afterwards, and no cookie outlives the absolute lifetime however often
it is re-signed. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import time

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from db.models import Review, User
from services.accounts import add_user, disable_user, remove_member
from services.web.security import SESSION_LIFETIME

pytestmark = pytest.mark.integration
NEW_PASSWORD = "another passphrase entirely"


def _replay(make_client, cookie: str):
    """A fresh client presenting only the captured cookie."""
    client = make_client()
    client.cookies.clear()
    client.cookies.set("lr_session", cookie)
    return client


def test_cookie_captured_before_api_sign_out_is_refused_after(seed, make_client):
    alice = make_client("alice")
    captured = alice.cookies["lr_session"]
    assert _replay(make_client, captured).get("/api/reviews").status_code == 200
    assert alice.delete("/api/session").status_code == 204
    assert _replay(make_client, captured).get("/api/reviews").status_code == 401


def test_cookie_captured_before_form_sign_out_is_refused_after(seed, make_client):
    alice = make_client("alice")
    captured = alice.cookies["lr_session"]
    token = alice.headers["X-CSRF-Token"]
    assert alice.post("/logout", data={"csrf_token": token}).status_code == 303
    replayed = _replay(make_client, captured)
    assert replayed.get("/api/reviews").status_code == 401
    assert replayed.get(f"/reviews/{seed.slug}").status_code == 303  # to the login page


def test_password_change_ends_existing_sessions(seed, make_client, factory):
    bob = make_client("bob")
    captured = bob.cookies["lr_session"]
    with factory() as session, session.begin():
        add_user(
            session=session,
            email="bob@example.org",
            name="",
            password=NEW_PASSWORD,
            role="reviewer",
            review=session.get(Review, seed.review_id),
        )
    assert bob.get("/api/reviews").status_code == 401
    assert _replay(make_client, captured).get("/api/reviews").status_code == 401
    fresh = make_client()
    ok = fresh.post("/api/session", json={"email": "bob@example.org", "password": NEW_PASSWORD})
    assert ok.status_code == 200


def test_deactivation_ends_existing_sessions(seed, make_client, factory):
    alice = make_client("alice")
    captured = alice.cookies["lr_session"]
    with factory() as session, session.begin():
        disable_user(session=session, email="alice@example.org")
    assert _replay(make_client, captured).get("/api/reviews").status_code == 401
    with factory() as session:
        user = session.scalars(select(User).where(User.email == "alice@example.org")).one()
        assert user.is_active is False and user.session_version == 1


def test_removed_member_loses_the_review_at_once(seed, make_client, factory):
    alice = make_client("alice")
    assert alice.get(f"/api/reviews/{seed.slug}/progress").status_code == 200
    with factory() as session, session.begin():
        review = session.get(Review, seed.review_id)
        assert remove_member(session=session, email="alice@example.org", review=review)
    assert alice.get(f"/api/reviews/{seed.slug}/progress").status_code == 404
    assert alice.get("/api/reviews").json() == []


def _signed(secret: str, payload: dict) -> str:
    data = base64.b64encode(json.dumps(payload).encode())
    return TimestampSigner(secret).sign(data).decode()


def test_sessions_have_an_absolute_lifetime(seed, make_client, app_settings):
    """A cookie re-signed on every request still ends SESSION_LIFETIME after sign-in."""
    secret = app_settings.secret_key.get_secret_value()
    uid = seed.users["alice"]
    now = int(time.time())
    fresh = _signed(secret, {"uid": uid, "sv": 0, "iat": now - 60, "csrf": "c" * 43})
    old = _signed(
        secret, {"uid": uid, "sv": 0, "iat": now - SESSION_LIFETIME - 1, "csrf": "c" * 43}
    )
    timeless = _signed(secret, {"uid": uid, "sv": 0, "csrf": "c" * 43})
    assert _replay(make_client, fresh).get("/api/reviews").status_code == 200
    assert _replay(make_client, old).get("/api/reviews").status_code == 401
    assert _replay(make_client, timeless).get("/api/reviews").status_code == 401


def test_a_reissued_cookie_keeps_its_sign_in_time(seed, make_client):
    alice = make_client("alice")
    first = alice.cookies["lr_session"]
    alice.get("/api/reviews")
    later = alice.cookies["lr_session"]

    def issued_at(cookie: str) -> int:
        data = cookie.split(".")[0]
        return int(json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))["iat"])

    assert issued_at(later) == issued_at(first)
