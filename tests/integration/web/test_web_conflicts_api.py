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
    # kappa over 4 common records: table include/include 1, include/exclude 1,
    # exclude/exclude 1, exclude/maybe 1 → p_o = .5, p_e = (2*1 + 2*2)/16 = .375, κ = .2
    kappa = alice.get(f"/api/reviews/{slug}/agreement").json()
    assert len(kappa) == 1 and kappa[0]["n"] == 4
    assert kappa[0]["kappa"] == pytest.approx(0.2)
    assert kappa[0]["table"]["exclude"]["maybe"] == 1
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
    page = admin.get(f"/reviews/{slug}/conflicts").text
    assert 'κ = <span class="kappa">0.20</span>' in page


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
