"""Dual screening over the API: blind decisions, conflicts, adjudication, Cohen's kappa."""

from __future__ import annotations

import pytest

from db.models import Review, ReviewRecord

pytestmark = pytest.mark.integration
REASON = "Case report"


@pytest.fixture
def dual(seed, factory):
    with factory() as session, session.begin():
        review = session.get(Review, seed.review_id)
        protocol = dict(review.protocol)
        protocol["screening"] = {**protocol["screening"], "reviewers_per_record": 2}
        review.protocol = protocol
    return seed


def decide(client, slug, rr, decision, reason=None):
    body = {"review_record_id": rr, "decision": decision}
    if reason:
        body["reason"] = reason
    r = client.post(f"/api/reviews/{slug}/decisions", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_two_reviewers_disagree_admin_resolves(dual, make_client, factory):
    slug = dual.slug
    alice, bob, admin = make_client("alice"), make_client("bob"), make_client("admin")
    # agree on 0 (include) and 2 (exclude), disagree on 1 and 3
    plan = {
        0: ("include", "include"),
        1: ("include", "exclude"),
        2: ("exclude", "exclude"),
        3: ("exclude", "maybe"),
    }
    for i, (a, b) in plan.items():
        rr = dual.queued[i]
        first = decide(alice, slug, rr, a, REASON if a == "exclude" else None)
        assert first["record_state"] == "queued" and first["record_stage"] == "title_abstract"
        # bob still gets the record: alice's decision is not shown and does not settle it
        assert bob.get(f"/api/reviews/{slug}/queue/next").json()["record"]["review_record_id"] == rr
        decide(bob, slug, rr, b, REASON if b == "exclude" else None)
    with factory() as session:
        states = {
            i: (
                session.get(ReviewRecord, dual.queued[i]).state,
                session.get(ReviewRecord, dual.queued[i]).stage,
            )
            for i in plan
        }
    assert states[0] == ("queued", "full_text")
    assert states[2] == ("excluded", "title_abstract")
    assert states[1] == states[3] == ("queued", "title_abstract")
    assert bob.get(f"/api/reviews/{slug}/conflicts").status_code == 403
    conflicts = admin.get(f"/api/reviews/{slug}/conflicts").json()
    assert [c["review_record_id"] for c in conflicts] == [dual.queued[1], dual.queued[3]]
    assert {d["reviewer"]: d["decision"] for d in conflicts[0]["decisions"]} == {
        "Alice": "include",
        "Bob": "exclude",
    }
    # kappa counts settled records only (0 and 2; 1 and 3 wait for the admin), and "maybe"
    # counts with include, as in conflict detection: a = b = [send on, exclude] → κ = 1
    kappa = alice.get(f"/api/reviews/{slug}/agreement").json()
    assert len(kappa) == 1 and kappa[0]["n"] == 2
    assert kappa[0]["kappa"] == pytest.approx(1.0)
    assert kappa[0]["table"] == {
        "exclude": {"exclude": 1, "include/maybe": 0},
        "include/maybe": {"exclude": 0, "include/maybe": 1},
    }
    assert (
        bob.post(
            f"/api/reviews/{slug}/conflicts/{dual.queued[1]}/resolve", json={"decision": "include"}
        ).status_code
        == 403
    )
    r = admin.post(
        f"/api/reviews/{slug}/conflicts/{dual.queued[1]}/resolve",
        json={"decision": "exclude", "reason": REASON},
    )
    assert r.status_code == 201
    assert (r.json()["record_state"], r.json()["source"]) == ("excluded", "resolution")
    again = admin.post(
        f"/api/reviews/{slug}/conflicts/{dual.queued[1]}/resolve", json={"decision": "include"}
    )
    assert again.status_code == 409
    not_conflict = admin.post(
        f"/api/reviews/{slug}/conflicts/{dual.queued[0]}/resolve", json={"decision": "include"}
    )
    assert not_conflict.status_code == 409
    assert [c["review_record_id"] for c in admin.get(f"/api/reviews/{slug}/conflicts").json()] == [
        dual.queued[3]
    ]
    # record 1 is settled now: a = [on, on, ex], b = [on, ex, ex] → p_o = 2/3,
    # p_e = (2*1 + 1*2)/9 = 4/9, κ = (2/3 − 4/9) / (5/9) = 0.4
    kappa = alice.get(f"/api/reviews/{slug}/agreement").json()
    assert kappa[0]["n"] == 3 and kappa[0]["kappa"] == pytest.approx(0.4)
    page = admin.get(f"/reviews/{slug}/conflicts").text
    assert 'κ = <span class="kappa">0.40</span>' in page
    assert "maybe counts with include" in page


def test_third_decision_in_dual_mode_is_refused(dual, make_client):
    slug = dual.slug
    decide(make_client("alice"), slug, dual.queued[0], "include")
    decide(make_client("bob"), slug, dual.queued[0], "exclude", REASON)
    admin = make_client("admin")
    assert (
        admin.get(f"/api/reviews/{slug}/queue/next").json()["record"]["review_record_id"]
        == dual.queued[1]
    )
    r = admin.post(
        f"/api/reviews/{slug}/decisions",
        json={"review_record_id": dual.queued[0], "decision": "include"},
    )
    assert r.status_code == 409


def test_agreement_is_blind_to_records_still_open(dual, make_client):
    """Issue 17 item 3: the other reviewer's vote on an open record does not show in κ."""
    slug = dual.slug
    alice, bob = make_client("alice"), make_client("bob")
    decide(alice, slug, dual.queued[0], "include")
    decide(bob, slug, dual.queued[0], "include")  # settled: both send it on
    decide(alice, slug, dual.queued[1], "include")
    before = alice.get(f"/api/reviews/{slug}/agreement").json()
    assert before[0]["n"] == 1
    decide(bob, slug, dual.queued[1], "exclude", REASON)  # a conflict: still open
    assert alice.get(f"/api/reviews/{slug}/agreement").json() == before


def test_decision_changed_after_the_other_reviewer_is_a_conflict(dual, make_client, factory):
    """Issue 17 item 3: undo-then-redecide (or a change) cannot turn a disagreement into a
    silent exclusion; the record goes to the admin."""
    slug = dual.slug
    alice, bob, admin = make_client("alice"), make_client("bob"), make_client("admin")
    rr = dual.queued[0]
    decide(alice, slug, rr, "include")
    decide(bob, slug, rr, "exclude", REASON)
    assert [c["review_record_id"] for c in admin.get(f"/api/reviews/{slug}/conflicts").json()] == [
        rr
    ]
    undone = alice.post(f"/api/reviews/{slug}/decisions/undo")
    assert undone.status_code == 200 and undone.json()["review_record_id"] == rr
    again = decide(alice, slug, rr, "exclude", REASON)  # now both say exclude
    assert (again["record_state"], again["record_stage"]) == ("queued", "title_abstract")
    assert [c["review_record_id"] for c in admin.get(f"/api/reviews/{slug}/conflicts").json()] == [
        rr
    ]
    # the same through "my decisions": bob changes his vote on another record after alice's
    other = dual.queued[1]
    decide(alice, slug, other, "exclude", REASON)
    mine = decide(bob, slug, other, "include")
    with factory() as session:
        assert session.get(ReviewRecord, other).stage == "title_abstract"
    changed = bob.post(
        f"/api/reviews/{slug}/decisions/{mine['id']}", json={"decision": "exclude", "reason": REASON}
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()["record_state"] == "queued"
    ids = [c["review_record_id"] for c in admin.get(f"/api/reviews/{slug}/conflicts").json()]
    assert ids == [rr, other]
    log = admin.get(f"/api/reviews/{slug}/audit-log").json()
    change = next(row for row in log if row["action"] == "decision.changed")
    assert change["detail"]["before"] == "include" and change["detail"]["after"] == "exclude"
    assert change["detail"]["after_other_reviewer"] is True
