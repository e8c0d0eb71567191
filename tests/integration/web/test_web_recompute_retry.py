"""The web process's recompute after a confirmation, when the database is busy (SQLite and
PostgreSQL): it is tried again, not lost with its timer thread.

The structure reproduced: a reviewer confirms an extraction while a long write holds the
database (an update storing thousands of records into SQLite, or a PostgreSQL table lock), so the
recompute's write waits past its lock timeout and the driver raises ``database is locked`` /
``LockNotAvailable``. Before, that exception ended the timer thread and the confirmation had no
estimate until the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from web_seed import Seed

import services.web.recompute as recompute_module
from db.models import EstimateSnapshot
from db.session import make_engine, make_sessionmaker
from services.locks import FileReviewLock
from services.web.recompute import LocalRecompute
from tests.integration.workers.wk_parts import wait_for

pytestmark = pytest.mark.integration


@contextmanager
def database_held(db_url: str) -> Iterator[None]:
    """Another transaction holds what the recompute must write until the block ends."""
    engine = make_engine(db_url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the one write lock SQLite has
        else:
            connection.execute(text("LOCK TABLE estimate_snapshots IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


def snapshots(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count(EstimateSnapshot.id))) or 0)


def wait_for_log(caplog: pytest.LogCaptureFixture, words: str, timeout: float = 60) -> None:
    wait_for(lambda: any(words in r.getMessage() for r in caplog.records), timeout,
             f"a log line saying {words!r}", every=0.05)


@pytest.fixture
def recompute(db_url: str, tmp_path: Path) -> Iterator[LocalRecompute]:
    engine = make_engine(db_url, lock_wait=0.3)  # a short wait, as the web's own
    local = LocalRecompute(make_sessionmaker(engine), FileReviewLock(tmp_path / "locks"), 0)
    yield local
    local.close()
    engine.dispose()


def test_a_recompute_that_meets_a_busy_database_is_tried_again(
    seed: Seed, factory: sessionmaker[Session], recompute: LocalRecompute, db_url: str,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recompute_module, "RETRY_WAIT", 0.2)
    caplog.set_level(logging.INFO, logger="services.web.recompute")
    before = snapshots(factory)
    with database_held(db_url):
        recompute.request(seed.review_id)
        wait_for_log(caplog, "met a database error")
        assert snapshots(factory) == before
    assert recompute.wait_idle(60)
    assert snapshots(factory) == before + 1
    with factory() as session:
        last = session.scalars(select(EstimateSnapshot).order_by(EstimateSnapshot.id.desc())).first()
        assert last is not None and last.trigger == "confirmation"


def test_tries_run_out_with_an_error_line_and_nothing_half_written(
    seed: Seed, factory: sessionmaker[Session], recompute: LocalRecompute, db_url: str,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recompute_module, "RETRY_WAIT", 0.05)
    monkeypatch.setattr(recompute_module, "RETRIES", 1)
    caplog.set_level(logging.INFO, logger="services.web.recompute")
    before = snapshots(factory)
    with database_held(db_url):
        recompute.request(seed.review_id)
        wait_for_log(caplog, "left after 2 database errors")
        assert recompute.wait_idle(60)
    assert snapshots(factory) == before
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "next confirmation or update recomputes it" in errors[0].getMessage()


def test_close_waits_for_the_recompute_under_way_and_schedules_nothing_after(
    seed: Seed, factory: sessionmaker[Session], recompute: LocalRecompute, db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recompute_module, "RETRY_WAIT", 0.05)
    before = snapshots(factory)
    with database_held(db_url):
        recompute.request(seed.review_id)
        recompute.close()  # runs the waiting recompute (or waits for the one under way)
    assert recompute.wait_idle(0)  # nothing scheduled after close
    recompute.request(seed.review_id)  # a confirmation after shutdown schedules nothing
    assert recompute.wait_idle(0)
    assert snapshots(factory) == before
