"""API tests of the screening queue on real PostgreSQL and SQLite (db_url runs each twice)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import AuditLog, ReviewRecord, ScreeningDecision

pytestmark = pytest.mark.integration
REASON = "Case report"


def count_decisions(factory) -> int:
    with factory() as session:
        return session.scalar(select(func.count(ScreeningDecision.id))) or 0


def test_queue_follows_priority_and_decisions_move_it(seed, make_client, factory):
    alice = make_client("alice")
    first = alice.get(f"/api/reviews/{seed.slug}/queue/next").json()
    assert first["record"]["review_record_id"] == seed.queued[0]
    assert first["progress"]["left_for_user"] == 6
    assert REASON in first["exclusion_reasons"]
    r = alice.post(
        f"/api/reviews/{seed.slug}/decisions",
        json={
            "review_record_id": seed.queued[0],
            "decision": "exclude",
            "reason": REASON,
            "note": "single patient",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["record_state"] == "excluded"
    r = alice.post(
        f"/api/reviews/{seed.slug}/decisions",
        json={"review_record_id": seed.queued[1], "decision": "include"},
    )
    assert r.json()["record_state"] == "queued" and r.json()["record_stage"] == "full_text"
    nxt = alice.get(f"/api/reviews/{seed.slug}/queue/next").json()
    assert nxt["record"]["review_record_id"] == seed.queued[2]
    assert nxt["progress"]["done_by_user"] == 2
    assert nxt["progress"]["left_for_user"] == 4
    undone = alice.post(f"/api/reviews/{seed.slug}/decisions/undo")
    assert undone.status_code == 200
    assert undone.json()["review_record_id"] == seed.queued[1]
    assert undone.json()["undone"] is True and undone.json()["record_stage"] == "title_abstract"
    nxt = alice.get(f"/api/reviews/{seed.slug}/queue/next").json()
    assert nxt["record"]["review_record_id"] == seed.queued[1]
    with factory() as session:
        actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions[-3:] == ["decision", "decision", "undo"]


def test_full_text_inclusion_creates_a_study_and_undo_removes_it(seed, make_client, factory):
    alice = make_client("alice")
    rr = seed.queued[0]
    alice.post(
        f"/api/reviews/{seed.slug}/decisions", json={"review_record_id": rr, "decision": "maybe"}
    )
    r = alice.post(
        f"/api/reviews/{seed.slug}/decisions",
        json={"review_record_id": rr, "stage": "full_text", "decision": "include"},
    )
    assert r.status_code == 201 and r.json()["record_state"] == "included"
    study_id = r.json()["study_id"]
    assert study_id is not None
    alice.post(f"/api/reviews/{seed.slug}/decisions/undo")
    with factory() as session:
        row = session.get(ReviewRecord, rr)
        assert (row.state, row.stage, row.study_id) == ("queued", "full_text", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "exclude"}, "reason"),
        ({"decision": "exclude", "reason": "Because I say so"}, "reason"),
        ({"decision": "include", "reason": REASON}, "reason"),
        ({"decision": "perhaps"}, "decision"),
        ({"decision": "maybe", "stage": "full_text"}, "decision"),
        ({"decision": "include", "stage": "abstract"}, "stage"),
        ({"decision": "include", "note": "x" * 5000}, "note"),
    ],
)
def test_bad_decisions_are_refused_with_the_field_named(seed, make_client, factory, body, field):
    alice = make_client("alice")
    r = alice.post(
        f"/api/reviews/{seed.slug}/decisions", json={"review_record_id": seed.queued[0], **body}
    )
    assert r.status_code == 422
    assert r.json()["field"] == field
    assert count_decisions(factory) == 0


def test_single_mode_second_reviewer_gets_a_conflict(seed, make_client, factory):
    alice, bob = make_client("alice"), make_client("bob")
    body = {"review_record_id": seed.queued[0], "decision": "include"}
    assert alice.post(f"/api/reviews/{seed.slug}/decisions", json=body).status_code == 201
    # bob's page still showed the record: his decision arrives after alice's
    r = bob.post(
        f"/api/reviews/{seed.slug}/decisions",
        json={**body, "decision": "exclude", "reason": REASON},
    )
    assert r.status_code == 409
    assert "no longer waiting" in r.json()["detail"] or "another reviewer" in r.json()["detail"]
    again = alice.post(
        f"/api/reviews/{seed.slug}/decisions",
        json={"review_record_id": seed.queued[2], "decision": "include"},
    )
    assert again.status_code == 201
    dup = alice.post(
        f"/api/reviews/{seed.slug}/decisions",
        json={"review_record_id": seed.queued[2], "decision": "include"},
    )
    assert dup.status_code == 409
    assert count_decisions(factory) == 2
    assert (
        bob.get(f"/api/reviews/{seed.slug}/queue/next").json()["record"]["review_record_id"]
        == seed.queued[1]
    )


def test_nothing_to_undo_is_404(seed, make_client):
    r = make_client("bob").post(f"/api/reviews/{seed.slug}/decisions/undo")
    assert r.status_code == 404 and r.json()["detail"] == "nothing to undo"


def test_screen_page_shows_record_escaped_with_keywords(seed, make_client):
    alice = make_client("alice")
    alice.post(
        f"/api/reviews/{seed.slug}/decisions",
        json={"review_record_id": seed.queued[0], "decision": "include"},
    )
    page = alice.get(f"/reviews/{seed.slug}/screen")
    assert page.status_code == 200
    html = page.text
    assert f'data-review-record="{seed.xss_rr}"' in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert '<mark class="kw">resorption</mark>' in html
    assert "https://pubmed.ncbi.nlm.nih.gov/30000001/" in html
    assert 'data-key="i"' in html and 'data-key="1"' in html
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_form_posts_decide_and_undo(seed, make_client, factory):
    alice = make_client("alice")
    page = alice.get(f"/reviews/{seed.slug}/screen")
    token = alice.headers.pop("X-CSRF-Token")
    assert f'value="{token}"' in page.text
    form = {
        "csrf_token": token,
        "review_record_id": str(seed.queued[0]),
        "stage": "title_abstract",
        "choice": f"exclude::{REASON}",
        "note": "",
    }
    r = alice.post(f"/reviews/{seed.slug}/screen", data=form)
    assert r.status_code == 303
    with factory() as session:
        d = session.scalars(select(ScreeningDecision)).one()
        assert (d.decision, d.reason, d.source) == ("exclude", REASON, "human")
    r = alice.post(
        f"/reviews/{seed.slug}/screen/undo", data={"csrf_token": token, "stage": "title_abstract"}
    )
    assert r.status_code == 303
    assert "Undone: exclude" in alice.get(r.headers["location"]).text
