"""Extraction confirmation over the API and the form: validation, history, recompute."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from web_seed import PASSWORD

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


def test_confirmations_in_a_burst_give_one_recompute_and_one_digest_without_redis(
    seed, app_settings, factory
):
    """Issue 14 items 3 and 13: without Redis, three confirmations within the quiet time give
    one snapshot and one digest per recipient; the recompute runs after the responses."""
    from fastapi.testclient import TestClient

    from db.models import OutboxEmail
    from services.web import create_app

    settings = app_settings.model_copy(update={"recompute_debounce_seconds": 3.0})
    app = create_app(settings)
    client = TestClient(app, follow_redirects=False)
    client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
    signed = client.post("/api/session", json={"email": "alice@example.org", "password": PASSWORD})
    client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
    url = f"/api/reviews/{seed.slug}/studies/{seed.included_study}/extractions"
    with factory() as session:
        snapshots_before = session.scalar(select(func.count(EstimateSnapshot.id)))
    current = None
    for events in ("20", "22", "24"):
        body = {"values": {**GOOD, "n_resorbed": events}, "expected_current_id": current}
        r = client.post(url, json=body)
        assert r.status_code == 201, r.text
        current = r.json()["id"]
    assert app.state.recompute.wait_idle(60)
    with factory() as session:
        new = list(session.scalars(
            select(EstimateSnapshot).where(EstimateSnapshot.id > 0).order_by(EstimateSnapshot.id)
        ))[snapshots_before:]
        assert [s.trigger for s in new] == ["confirmation"]
        assert new[0].k == 4
        digests = session.scalars(select(OutboxEmail).where(OutboxEmail.snapshot_id == new[0].id))
        assert [d.recipient for d in digests] == ["followers@example.org"]
    client.close()
    app.state.engine.dispose()


def test_in_process_recompute_waits_for_the_review_lock(seed, make_client, factory, app_settings):
    """Issue 12 item 8: the web process's recompute takes the review's lock (the one an
    in-process update holds); while another holder has it, no snapshot is written."""
    from services.locks import FileReviewLock

    alice = make_client("alice")
    app = make_client.app
    update_lock = FileReviewLock(app_settings.data_dir / "locks")
    update_lock.acquire(seed.review_id, "update:test")
    with factory() as session:
        before = session.scalar(select(func.count(EstimateSnapshot.id)))
    r = alice.post(
        f"/api/reviews/{seed.slug}/studies/{seed.included_study}/extractions",
        json={"values": GOOD},
    )
    assert r.status_code == 201
    assert not app.state.recompute.wait_idle(1.5)  # postponed: the review is busy
    with factory() as session:
        assert session.scalar(select(func.count(EstimateSnapshot.id))) == before
    update_lock.release(seed.review_id, "update:test")
    app.state.recompute.delay = 0.05
    assert app.state.recompute.wait_idle(60)
    with factory() as session:
        assert session.scalar(select(func.count(EstimateSnapshot.id))) == before + 1


def test_worker_calls_use_the_apps_settings_not_the_environment(app_settings, monkeypatch):
    """Issue 12 item 8: with a broker in the app's settings, the tasks it enqueues use that
    broker and runtime, whatever the environment says."""
    import workers.celery_app as celery_app
    from services.web import create_app

    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(celery_app, "_runtime", None)
    broker = "redis://127.0.0.1:6379/6"
    previous = celery_app.app.conf.broker_url
    settings = app_settings.model_copy(update={"redis_url": broker})
    app = create_app(settings)
    try:
        assert celery_app.runtime().settings.redis_url == broker
        assert celery_app.app.conf.broker_url == broker
    finally:
        celery_app.app.conf.broker_url = previous
        app.state.engine.dispose()
