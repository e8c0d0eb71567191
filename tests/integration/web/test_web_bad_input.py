"""Bad input gets a 4xx, never a 500, and nothing unstorable is saved (SQLite and PostgreSQL):
ids beyond the integer range, non-ASCII CSRF tokens, NUL characters, lone surrogates, bodies
past the size limit; plus ``Allow`` on 405 and ``Cache-Control: no-store`` on exports."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import Extraction, ScreeningDecision
from services.web.guard import MAX_BODY_BYTES

pytestmark = pytest.mark.integration
HUGE = 2**31  # one past PostgreSQL's integer


def _stored(factory) -> tuple[int, int]:
    with factory() as session:
        return (
            session.scalar(select(func.count(ScreeningDecision.id))) or 0,
            session.scalar(select(func.count(Extraction.id))) or 0,
        )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/reviews/{slug}/studies/{id}/extraction"),
        ("POST", "/api/reviews/{slug}/studies/{id}/extractions"),
        ("POST", "/api/reviews/{slug}/conflicts/{id}/resolve"),
        ("POST", "/reviews/{slug}/conflicts/{id}"),
    ],
)
def test_ids_beyond_the_integer_range_are_404(seed, make_client, method, path):
    admin = make_client("admin")
    url = path.format(slug=seed.slug, id=HUGE)
    body = {"values": {}} if "extractions" in path else {"decision": "include"}
    r = admin.request(method, url, json=body if method == "POST" else None)
    assert r.status_code == 404, r.text


def test_ids_beyond_the_integer_range_in_a_body_are_422(seed, make_client, factory):
    r = make_client("alice").post(
        f"/api/reviews/{seed.slug}/decisions",
        json={"review_record_id": 2**40, "decision": "include"},
    )
    assert r.status_code == 422 and r.json()["field"] == "review_record_id"
    assert _stored(factory) == (0, 3)


@pytest.mark.parametrize("token", ["jeton-forgé-é", "токен", "\U0001f511" * 8])
def test_non_ascii_csrf_tokens_get_403(seed, make_client, token):
    anonymous = make_client()
    r = anonymous.post(
        "/api/session",
        json={"email": "alice@example.org", "password": "x"},
        headers={"X-CSRF-Token": token.encode()},
    )
    assert r.status_code == 403
    form = anonymous.post(
        "/login",
        data={"email": "alice@example.org", "password": "x", "csrf_token": token},
        headers={"X-CSRF-Token": ""},
    )
    assert form.status_code == 403


def test_nul_in_a_note_is_refused_and_nothing_stored(seed, make_client, factory):
    alice = make_client("alice")
    body = {"review_record_id": seed.queued[0], "decision": "exclude", "note": "ok\x00then"}
    r = alice.post(f"/api/reviews/{seed.slug}/decisions", json=body)
    assert r.status_code == 422 and r.json()["field"] == "note"
    form = alice.post(
        f"/reviews/{seed.slug}/screen",
        data={
            "review_record_id": str(seed.queued[0]),
            "decision": "include",
            "note": "a\x00b",
            "csrf_token": alice.headers["X-CSRF-Token"],
        },
    )
    assert form.status_code == 422 and form.json()["field"] == "note"
    assert _stored(factory) == (0, 3)
    assert alice.get(f"/api/reviews/{seed.slug}/queue/next?stage=%00").status_code == 422
    assert alice.get(f"/reviews/{seed.slug}%00/screen").status_code == 404


@pytest.mark.parametrize("value", ["\\ud800", "abc\\udfff", "\\udc00\\ud800"])
def test_lone_surrogates_in_extraction_values_are_refused(seed, make_client, factory, value):
    alice = make_client("alice")
    url = f"/api/reviews/{seed.slug}/studies/{seed.included_study}/extractions"
    raw = (
        '{"values": {"n_total": "80", "n_resorbed": "20", "design": "Prospective", '
        f'"country": "{value}"}}}}'
    )
    r = alice.post(url, content=raw.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "values.country", r.text
    assert _stored(factory) == (0, 3)
    page = alice.get(f"/reviews/{seed.slug}/studies/{seed.included_study}/extraction")
    assert page.status_code == 200


def test_a_paired_surrogate_escape_is_an_ordinary_character(seed, make_client, factory):
    """The JSON escape of one emoji (a valid pair) is not refused."""
    alice = make_client("alice")
    url = f"/api/reviews/{seed.slug}/studies/{seed.included_study}/extractions"
    raw = (
        '{"values": {"n_total": "80", "n_resorbed": "20", "design": "Prospective", '
        '"country": "Japan", "notes": "ok \\ud83d\\ude00"}}'
    )
    r = alice.post(url, content=raw.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code != 500 and r.json().get("field") != "values.notes", r.text


def test_bodies_past_the_limit_get_413(seed, make_client, factory):
    alice = make_client("alice")
    note = "n" * (MAX_BODY_BYTES + 1)
    body = {"review_record_id": seed.queued[0], "decision": "include", "note": note}
    r = alice.post(f"/api/reviews/{seed.slug}/decisions", json=body)
    assert r.status_code == 413
    assert _stored(factory) == (0, 3)


def test_405_names_the_allowed_methods(seed, make_client):
    r = make_client("alice").put("/api/session")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST", "DELETE"}


@pytest.mark.parametrize("name", ["studies.csv", "records.csv", "records.ris", "prisma.csv"])
def test_exports_are_not_cached(seed, make_client, name):
    r = make_client("admin").get(f"/reviews/{seed.slug}/export/{name}")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
