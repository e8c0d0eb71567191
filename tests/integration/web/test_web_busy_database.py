"""A reviewer's request while an update holds the database (issue 18, item 4): retried, then
answered 503 in the API's JSON shape, never a plain-text 500 nor a dropped connection; through
the real server (uvicorn) on SQLite and PostgreSQL.

The structure reproduced: ``living-review update`` storing or pre-screening thousands of
records in one long write transaction while reviewers screen — on SQLite it holds the
database's write lock, on PostgreSQL the row locks of the review's records it writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from web_seed import seed_database

from db.models import ScreeningDecision

pytestmark = pytest.mark.integration
SLUG = "ldh_resorption"
FAST = {"web_db_busy_timeout": 0.3, "web_db_attempts": 3}


@contextmanager
def long_write(db_url: str, review_id: int) -> Iterator[threading.Event]:
    """Another connection holds a write transaction until the event is set (or 60 s pass)."""
    release, holding = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        try:
            url = make_url(db_url)
            if url.get_backend_name() == "sqlite":
                import sqlite3

                conn = sqlite3.connect(str(url.database), isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("UPDATE review_records SET updated_at = updated_at WHERE review_id = ?",
                             (review_id,))
            else:
                import psycopg

                conn = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
                conn.execute("UPDATE review_records SET updated_at = now() WHERE review_id = %s",
                             (review_id,))
            holding.set()
            release.wait(60)
            conn.rollback() if hasattr(conn, "rollback") else None
            conn.close()
        except BaseException as exc:  # surfaced by the test below
            failure.append(exc)
            holding.set()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert holding.wait(30)
    assert not failure, failure
    try:
        yield release
    finally:
        release.set()
        thread.join(30)


def decide(client, rr_id: int):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/reviews/{SLUG}/decisions",
        json={"review_record_id": rr_id, "stage": "title_abstract", "decision": "include"},
    )


def stored(factory) -> list[int]:  # type: ignore[no-untyped-def]
    with factory() as session:
        return list(
            session.scalars(
                select(ScreeningDecision.review_record_id).where(
                    ScreeningDecision.source == "human"
                )
            )
        )


def test_decision_waits_out_a_short_write_and_is_stored_once(
    db_url, factory, live_server, caplog
):
    seed = seed_database(factory)
    alice = live_server(**FAST).client("alice")
    caplog.set_level(logging.WARNING, logger="services.web.retry")
    answers: list[int] = []
    with long_write(db_url, seed.review_id) as release:
        sender = threading.Thread(target=lambda: answers.append(decide(alice, seed.queued[0]).status_code))
        sender.start()
        deadline = time.monotonic() + 40
        while not any("database busy" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the decision was never retried"
            time.sleep(0.05)
        release.set()  # the update's transaction ends while the reviewer's request is retried
        sender.join(60)
    assert answers == [201]
    assert stored(factory) == [seed.queued[0]]


def test_database_busy_too_long_gets_503_json_and_nothing_stored(db_url, factory, live_server):
    seed = seed_database(factory)
    alice = live_server(**FAST).client("alice")
    alice.timeout = 40  # the old code waited 30 s (SQLite) or for ever (PostgreSQL)
    with long_write(db_url, seed.review_id):
        response = decide(alice, seed.queued[0])
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/json")
    assert "try again" in response.json()["detail"]
    assert int(response.headers["retry-after"]) > 0
    assert stored(factory) == []
    again = decide(alice, seed.queued[0])  # same client, same connection: it was not reset
    assert again.status_code == 201, again.text
    assert stored(factory) == [seed.queued[0]]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unexpected_error_on_the_api_is_the_json_error_shape(db_url, factory, live_server):
    seed_database(factory)

    def boom() -> None:
        raise RuntimeError("a bug")

    server = live_server(hook=lambda app: app.add_api_route("/api/_test/boom", boom))
    alice = server.client("alice")
    response = alice.get("/api/_test/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert "internal error" in response.json()["detail"]
    assert alice.get(f"/api/reviews/{SLUG}/queue/next").status_code == 200  # connection kept
