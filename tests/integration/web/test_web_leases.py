"""Single screening with two reviewers at once: each is served a record the other does not hold
(issue 18, item 9), through the real server (uvicorn) on SQLite and PostgreSQL.

The structure reproduced: two reviewers of one review, each in their own browser session,
screening the same queue at the same time in single screening (one reviewer per record).
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, update
from web_seed import seed_database

from db.models import Review, ScreeningDecision, ScreeningLease

pytestmark = pytest.mark.integration
SLUG = "ldh_resorption"


def next_id(client) -> int | None:  # type: ignore[no-untyped-def]
    response = client.get(f"/api/reviews/{SLUG}/queue/next")
    assert response.status_code == 200, response.text
    record = response.json()["record"]
    return None if record is None else int(record["review_record_id"])


def decide(client, rr_id: int):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/reviews/{SLUG}/decisions",
        json={"review_record_id": rr_id, "stage": "title_abstract", "decision": "include"},
    )


def two_reviewers(factory, live_server, **seeding):  # type: ignore[no-untyped-def]
    """Seed the review, start the server, sign alice and bob in."""
    seed = seed_database(factory, **seeding)
    server = live_server()
    return seed, server.client("alice"), server.client("bob")


def test_two_reviewers_are_served_different_records(factory, live_server):
    seed, alice, bob = two_reviewers(factory, live_server, n_queued=8)
    first = next_id(alice)
    assert first == seed.queued[0]
    assert next_id(bob) == seed.queued[1]  # the first is leased to alice
    assert next_id(alice) == first  # asking again keeps her record (her lease is renewed)
    assert next_id(bob) == seed.queued[1]


def test_n_decisions_each_at_the_same_time_give_no_conflict(factory, live_server):
    per_reviewer = 6
    seed_database(factory, n_queued=2 * per_reviewer + 2)
    server = live_server()
    clients = {name: server.client(name) for name in ("alice", "bob")}
    statuses: dict[str, list[int]] = {name: [] for name in clients}
    barrier = threading.Barrier(2)

    def screen(name: str) -> None:
        client = clients[name]
        barrier.wait()
        for _ in range(per_reviewer):
            rr_id = next_id(client)
            assert rr_id is not None
            statuses[name].append(decide(client, rr_id).status_code)

    threads = [threading.Thread(target=screen, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == {"alice": [201] * per_reviewer, "bob": [201] * per_reviewer}
    with factory() as session:
        decided = session.scalars(
            select(ScreeningDecision.review_record_id).where(ScreeningDecision.source == "human")
        ).all()
        assert len(decided) == len(set(decided)) == 2 * per_reviewer
        assert session.scalars(select(ScreeningLease)).all() == []  # each decision ended its lease


def test_expired_lease_is_served_again(factory, live_server):
    seed, alice, bob = two_reviewers(factory, live_server, n_queued=4)
    assert next_id(alice) == seed.queued[0]
    with factory() as session, session.begin():
        session.execute(
            update(ScreeningLease).values(
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            )
        )
    assert next_id(bob) == seed.queued[0]  # alice left it: her lease ran out
    with factory() as session:
        holder = session.get_one(ScreeningLease, seed.queued[0]).user_id
    assert holder == seed.users["bob"]


def test_decision_on_a_record_leased_to_another_reviewer_is_kept(factory, live_server):
    seed, alice, bob = two_reviewers(factory, live_server, n_queued=4)
    leased = next_id(alice)
    assert leased == seed.queued[0]
    # bob decides it anyway (a page opened before the lease): nobody decided it, so it is kept
    assert decide(bob, leased).status_code == 201
    late = decide(alice, leased)  # the true double decision is still refused
    assert late.status_code == 409
    assert "detail" in late.json()
    with factory() as session:
        assert session.get(ScreeningLease, leased) is None


def test_dual_screening_serves_both_reviewers_the_same_record(factory, live_server):
    seed, alice, bob = two_reviewers(factory, live_server, reviewers_per_record=2, n_queued=4)
    assert next_id(alice) == next_id(bob) == seed.queued[0]
    assert decide(alice, seed.queued[0]).status_code == 201
    assert decide(bob, seed.queued[0]).status_code == 201
    with factory() as session:
        assert session.scalars(select(ScreeningLease)).all() == []
        review = session.get_one(Review, seed.review_id)
        assert review.protocol["screening"]["reviewers_per_record"] == 2
