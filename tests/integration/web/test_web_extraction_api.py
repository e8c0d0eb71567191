"""Extraction confirmation over the API and the form: validation, history, recompute."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import EstimateSnapshot, Extraction

pytestmark = pytest.mark.integration


def counts(factory) -> tuple[int, int]:
    with factory() as session:
        return (
            session.scalar(select(func.count(Extraction.id))) or 0,
            session.scalar(select(func.count(EstimateSnapshot.id))) or 0,
        )


GOOD = {
    "n_total": "80",
    "n_resorbed": "20",
    "design": "Prospective",
    "country": "Japan",
    "predictors": ["Modic change", "Extrusion"],
}


@pytest.mark.parametrize(
    ("change", "field", "text"),
    [
        ({"n_resorbed": "81"}, "n_resorbed", "more than the total"),
        ({"n_resorbed": "-3"}, "n_resorbed", "negative"),
        ({"n_total": "eighty"}, "n_total", "not a whole number"),
        ({"n_total": "80.5"}, "n_total", "not a whole number"),
        ({"n_total": ""}, "n_total", "required"),
        ({"design": "Anecdote"}, "design", "unknown value"),
        ({"predictors": ["Moon phase"]}, "predictors", "unknown value"),
        ({"colour": "blue"}, "colour", "not a field"),
    ],
)
def test_invalid_values_are_refused_per_field(seed, make_client, factory, change, field, text):
    before = counts(factory)
    r = make_client("alice").post(
        f"/api/reviews/{seed.slug}/studies/{seed.included_study}/extractions",
        json={"values": {**GOOD, **change}},
    )
    assert r.status_code == 422
    assert field in r.json()["errors"] and text in r.json()["errors"][field]
    assert counts(factory) == before


def test_confirmation_supersedes_keeps_history_and_recomputes(seed, make_client, factory):
    alice = make_client("alice")
    url = f"/api/reviews/{seed.slug}/studies/{seed.included_study}/extractions"
    first_estimates = alice.get(f"/api/reviews/{seed.slug}/estimates").json()
    assert len(first_estimates) == 1 and first_estimates[0]["k"] == 3
    r = alice.post(url, json={"values": GOOD})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["data"]["n_total"] == 80 and first["status"] == "confirmed"
    assert first["user_id"] == seed.users["alice"]
    assert make_client.app.state.recompute.wait_idle(60)  # the recompute runs after the response
    estimates = alice.get(f"/api/reviews/{seed.slug}/estimates").json()
    assert len(estimates) == 2 and estimates[0]["k"] == 4
    # 20/80 is far below the baseline studies (75%, 50%, 80%): the estimate goes down
    assert estimates[0]["estimate"] < first_estimates[0]["estimate"] - 0.03
    stale = alice.post(
        url, json={"values": {**GOOD, "n_resorbed": "24"}, "expected_current_id": first["id"] - 1}
    )
    assert stale.status_code == 409
    r = alice.post(
        url, json={"values": {**GOOD, "n_resorbed": "24"}, "expected_current_id": first["id"]}
    )
    assert r.status_code == 201 and r.json()["supersedes_id"] == first["id"]
    history = alice.get(url).json()
    assert [h["data"]["n_resorbed"] for h in history] == [24, 20]
    assert [h["superseded"] for h in history] == [False, True]


def test_form_shows_proposal_evidence_and_field_errors(seed, make_client, factory):
    alice = make_client("alice")
    page = alice.get(f"/reviews/{seed.slug}/studies/{seed.included_study}/extraction")
    assert page.status_code == 200
    html = page.text
    assert (
        '<mark class="evidence" data-field="n_resorbed">Resorption was seen in 20 of 80' in html
        or '<mark class="evidence" data-field="n_total">Resorption was seen' in html
    )
    assert 'name="n_total" id="in-n_total" value="80"' in html
    token = alice.headers.pop("X-CSRF-Token")
    before = counts(factory)
    bad = alice.post(
        f"/reviews/{seed.slug}/studies/{seed.included_study}/extraction",
        data={"csrf_token": token, "n_total": "80", "n_resorbed": "90", "design": "Prospective"},
    )
    assert bad.status_code == 422
    assert "90 is more than the total (80)" in bad.text and "Nothing was saved" in bad.text
    assert counts(factory) == before
    ok = alice.post(
        f"/reviews/{seed.slug}/studies/{seed.included_study}/extraction",
        data={"csrf_token": token, "n_total": "80", "n_resorbed": "20", "design": "Prospective"},
    )
    assert ok.status_code == 303
    assert "being recomputed" in alice.get(ok.headers["location"]).text
    assert make_client.app.state.recompute.wait_idle(60)
    assert alice.get(f"/api/reviews/{seed.slug}/estimates").json()[0]["k"] == 4


def test_other_review_study_is_not_found(seed, make_client):
    r = make_client("carol").post(
        f"/api/reviews/other_review/studies/{seed.included_study}/extractions",
        json={"values": GOOD},
    )
    assert r.status_code == 404
