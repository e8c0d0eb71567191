"""Security over HTTP: sign-in, cookies, CSRF, rate limiting, authorisation on every route."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import ScreeningDecision

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"


def test_session_cookie_flags_and_wrong_password(seed, make_client):
    client = make_client()
    bad = client.post("/api/session", json={"email": "alice@example.org", "password": "nope"})
    assert bad.status_code == 401 and bad.json()["detail"] == "email or password is wrong"
    ok = client.post("/api/session", json={"email": "Alice@Example.org", "password": PASSWORD})
    assert ok.status_code == 200
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie


def test_secure_cookie_over_https(seed, app_settings):
    from fastapi.testclient import TestClient

    from services.web import create_app

    app = create_app(app_settings.model_copy(update={"base_url": "https://review.example"}))
    with TestClient(app, base_url="https://testserver") as client:
        r = client.get("/api/session")
        assert "secure" in r.headers["set-cookie"].lower()
    app.state.engine.dispose()


def test_login_is_rate_limited_per_account_and_address(seed, make_client):
    client = make_client()
    for _ in range(5):
        assert (
            client.post(
                "/api/session", json={"email": "bob@example.org", "password": "wrong"}
            ).status_code
            == 401
        )
    blocked = client.post("/api/session", json={"email": "bob@example.org", "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert make_client("alice").get("/api/reviews").status_code == 200  # others unaffected


def test_csrf_is_required_for_state_changes(seed, make_client, factory):
    alice = make_client("alice")
    token = alice.headers.pop("X-CSRF-Token")
    body = {"review_record_id": seed.queued[0], "decision": "include"}
    assert alice.post(f"/api/reviews/{seed.slug}/decisions", json=body).status_code == 403
    alice.headers["X-CSRF-Token"] = "forged" + token[6:]
    assert alice.post(f"/api/reviews/{seed.slug}/decisions", json=body).status_code == 403
    form = alice.post(
        f"/reviews/{seed.slug}/screen/undo",
        data={"stage": "title_abstract"},
        headers={"X-CSRF-Token": ""},
    )
    assert form.status_code == 403
    anonymous_login = make_client()
    anonymous_login.headers.pop("X-CSRF-Token")
    assert (
        anonymous_login.post(
            "/login", data={"email": "alice@example.org", "password": PASSWORD}
        ).status_code
        == 403
    )
    with factory() as session:
        assert session.scalar(select(func.count(ScreeningDecision.id))) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/reviews/ldh_resorption",
        "/reviews/ldh_resorption/screen",
        "/reviews/ldh_resorption/conflicts",
        "/reviews/ldh_resorption/studies",
        "/reviews/ldh_resorption/prisma.svg",
        "/reviews/ldh_resorption/export/studies.csv",
    ],
)
def test_anonymous_pages_redirect_to_login(seed, make_client, path):
    r = make_client().get(path)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/reviews"),
        ("GET", "/api/reviews/ldh_resorption/queue/next"),
        ("POST", "/api/reviews/ldh_resorption/decisions/undo"),
        ("GET", "/api/reviews/ldh_resorption/conflicts"),
        ("GET", "/api/reviews/ldh_resorption/estimates"),
    ],
)
def test_anonymous_api_gets_401(seed, make_client, method, path):
    assert make_client().request(method, path).status_code == 401


def test_reviewer_sees_only_their_reviews(seed, make_client):
    carol = make_client("carol")
    assert [r["slug"] for r in carol.get("/api/reviews").json()] == ["other_review"]
    for path in (
        "/api/reviews/ldh_resorption/queue/next",
        "/reviews/ldh_resorption",
        f"/reviews/ldh_resorption/studies/{seed.included_study}/extraction",
        "/reviews/ldh_resorption/export/studies.csv",
    ):
        assert carol.get(path).status_code == 404, path
    r = carol.post(
        "/api/reviews/ldh_resorption/decisions",
        json={"review_record_id": seed.queued[0], "decision": "include"},
    )
    assert r.status_code == 404
    # a record of another review cannot be decided through one's own review
    assert (
        carol.post(
            "/api/reviews/other_review/decisions",
            json={"review_record_id": seed.queued[0], "decision": "include"},
        ).status_code
        == 404
    )


def test_admin_pages_are_refused_to_reviewers(seed, make_client):
    alice = make_client("alice")
    for path in (
        "/reviews/ldh_resorption/conflicts",
        "/api/reviews/ldh_resorption/audit-log",
        "/reviews/ldh_resorption/export/records.csv",
    ):
        assert alice.get(path).status_code == 403, path
    assert "Audit log" not in alice.get("/reviews/ldh_resorption").text
    admin = make_client("admin")
    assert admin.get("/reviews/ldh_resorption/conflicts").status_code == 200
    assert "Audit log" in admin.get("/reviews/ldh_resorption").text


def test_open_redirect_after_login_is_refused(seed, make_client):
    client = make_client()
    token = client.headers.pop("X-CSRF-Token")
    r = client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": "alice@example.org",
            "password": PASSWORD,
            "next": "//evil.example/x",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
