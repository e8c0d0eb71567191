"""The run engine on SQLite and PostgreSQL: states, one failure policy, held runs, the window kept.

Every test runs real updates against the replay server over HTTP; nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from harvest_helpers import init_review, ldh_protocol, options, record_count, update
from sqlalchemy import func, select, text

from db.models import AuditLog, ReviewRecord, SearchRun
from services import runs
from services import update as steps
from services.pipeline import run_update
from services.pubmed.errors import EntrezUnavailableError, PubMedError
from services.pubmed.replay import ReplayServer
from services.pubmed.xmlbuild import write_synthetic_snapshot

pytestmark = pytest.mark.integration
WEEK1_END, WEEK2_END = dt.date(2024, 1, 7), dt.date(2024, 1, 14)


def statuses(factory) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    with factory() as session:
        return [(r.status, r.error) for r in session.scalars(select(SearchRun).order_by(SearchRun.id))]


def audit_actions(factory, prefix: str) -> list[str]:  # type: ignore[no-untyped-def]
    with factory() as session:
        return list(session.scalars(select(AuditLog.action).where(AuditLog.action.like(f"{prefix}%"))
                                    .order_by(AuditLog.id)))


def test_a_run_moves_only_to_its_next_state(session_factory) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with session_factory.begin() as session:
        run = runs.begin(session, protocol, WEEK1_END, today=WEEK1_END)
        assert run.status == "started" and run.protocol_hash == protocol.digest_hash()
        with pytest.raises(runs.RunError, match="the next state is harvested, not screened"):
            runs.advance(run, runs.RunStatus.SCREENED)
        run_id = run.id
    assert runs.settle(session_factory, run_id, ValueError("boom")) == runs.RunStatus.FAILED
    assert runs.settle(session_factory, run_id, ValueError("again")) is None  # written once
    with session_factory.begin() as session:
        run = session.get_one(SearchRun, run_id)
        with pytest.raises(runs.RunClosedError):
            runs.advance(run, runs.RunStatus.HARVESTED)
    assert statuses(session_factory) == [("failed", "ValueError: boom")]


def test_the_database_refuses_a_state_outside_the_enum(session_factory) -> None:
    from sqlalchemy.exc import IntegrityError

    init_review(session_factory, ldh_protocol(), baseline=False)
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        session.add(SearchRun(review_id=1, status="running", query="q", window_start=WEEK1_END,
                              window_end=WEEK1_END, windows=[], stats={}))


def test_a_failed_attempt_then_a_retry_succeeds_without_a_stale_error(session_factory, demo_snapshot) -> None:
    """Defect 3: a transient failure does not mark the run; the retry finishes it cleanly."""
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with session_factory.begin() as session:
        run_id = runs.begin(session, protocol, WEEK1_END).id
    dead = options("http://127.0.0.1:9/entrez/eutils/", tries=1).make_client()
    with pytest.raises(EntrezUnavailableError):
        steps.harvest(session_factory, run_id, dead)
    assert statuses(session_factory) == [("started", None)]  # the step layer never marks it
    with ReplayServer(demo_snapshot) as server:
        steps.harvest(session_factory, run_id, options(server.url).make_client())
    steps.prescreen(session_factory, run_id)
    steps.propose(session_factory, run_id)
    steps.recompute(session_factory, run_id)
    steps.finish(session_factory, run_id)
    assert statuses(session_factory) == [("succeeded", None)]
    assert audit_actions(session_factory, "run.") == ["run.started", "run.harvested"]


def test_a_step_retried_after_its_run_failed_cannot_revive_it(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with session_factory.begin() as session:
        run_id = runs.begin(session, protocol, WEEK1_END).id
    runs.settle(session_factory, run_id, EntrezUnavailableError("esearch failed 6 times"))
    with ReplayServer(demo_snapshot) as server, pytest.raises(runs.RunClosedError):
        steps.harvest(session_factory, run_id, options(server.url).make_client())
    assert statuses(session_factory) == [("failed", "EntrezUnavailableError: esearch failed 6 times")]
    assert record_count(session_factory) == 0


def test_any_pubmed_error_fails_the_run_and_the_next_one_asks_for_the_window_again(
        session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot, faults="truncate@efetch:*") as server, \
            pytest.raises(PubMedError):
        update(session_factory, protocol, options(server.url, tries=2), WEEK1_END)
    [(status, error)] = statuses(session_factory)
    assert status == "failed" and error is not None and "Error: " in error
    with ReplayServer(demo_snapshot) as server:
        again = update(session_factory, protocol, options(server.url), WEEK1_END)
    assert (again.status, again.window_start, again.new) == ("succeeded", "2023-10-01", 10)


def test_zero_found_where_every_earlier_window_found_some_holds_the_run(
        session_factory, demo_snapshot, tmp_path: Path) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot) as server:
        assert update(session_factory, protocol, options(server.url), WEEK1_END).found == 10
    # PubMed answering nothing for the new window (records only from long ago): a broken search
    empty = write_synthetic_snapshot(tmp_path / "old", 5, dt.date(2001, 1, 1), 10)
    with ReplayServer(empty) as server:
        held = update(session_factory, protocol, options(server.url), WEEK2_END)
    assert held.status == "held" and "found 0 records for 2024-01-04..2024-01-14" in (held.error or "")
    assert audit_actions(session_factory, "run.held") == ["run.held"]
    with ReplayServer(demo_snapshot) as server:
        after = update(session_factory, protocol, options(server.url), WEEK2_END)
    assert (after.status, after.window_start, after.new) == ("succeeded", "2024-01-04", 9)
    with ReplayServer(empty) as server:  # a person checked: this window is really empty
        accepted = run_update(session_factory, protocol, options(server.url),
                              until=dt.date(2024, 1, 21), accept_empty=True)
    assert (accepted.status, accepted.found, accepted.window_start) == ("succeeded", 0, "2024-01-11")


def test_a_step_failing_after_harvest_ends_the_run_failed_with_its_reason(
        session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with session_factory.begin() as session:  # the recompute step will find no table to write
        cascade = " CASCADE" if session.get_bind().dialect.name == "postgresql" else ""
        session.execute(text(f"DROP TABLE outbox_emails{cascade}"))
        session.execute(text(f"DROP TABLE estimate_snapshots{cascade}"))
    with ReplayServer(demo_snapshot) as server, pytest.raises(Exception, match="estimate_snapshots"):
        update(session_factory, protocol, options(server.url), WEEK1_END)
    [(status, error)] = statuses(session_factory)
    assert status == "failed" and "estimate_snapshots" in (error or "")
    with session_factory() as session:  # what harvest stored is kept
        assert session.scalar(select(func.count()).select_from(ReviewRecord)) == 10


def test_an_until_after_today_is_refused_and_no_window_starts_in_the_future(session_factory) -> None:
    today = dt.date(2024, 1, 10)
    future = ldh_protocol(start_date=dt.date(2024, 6, 1))
    init_review(session_factory, future, baseline=False)
    with session_factory.begin() as session, pytest.raises(runs.WindowError, match="after today"):
        runs.begin(session, future, dt.date(2024, 1, 11), today=today)
    with session_factory.begin() as session:
        run = runs.begin(session, future, today, today=today)
        assert (run.window_start, run.window_end) == (today, today)
