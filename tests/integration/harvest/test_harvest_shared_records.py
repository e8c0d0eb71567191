"""Two reviews storing the same PMIDs at the same moment on PostgreSQL (issue 12 defect 4).

Records are shared by all reviews and the update lock is per review, so two reviews' harvests
may write the same PMIDs at once. The second transaction must wait for the first and then
link the records the first stored, never fail with UniqueViolation on uq_records_pmid.
Also through the update path: two reviews updated in parallel threads from one replay server.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from harvest_helpers import init_review, ldh_protocol, options, record_count, update
from sqlalchemy import func, select, text

from db.models import Record, ReviewRecord, SearchRun
from db.session import make_engine, make_sessionmaker
from services.harvest import StoreCounts, store_records
from services.pubmed.parse import PubMedRecord, parse_article_set
from services.pubmed.replay import ReplayServer
from services.pubmed.xmlbuild import article_xml, synthetic_articles
from services.reviews import ensure_review

pytestmark = pytest.mark.integration


def parsed(first: int, n: int) -> list[PubMedRecord]:
    articles = synthetic_articles(n, dt.date(2024, 1, 2), 3, first_pmid=first)
    body = "<PubmedArticleSet>" + "".join(article_xml(a) for a in articles) + "</PubmedArticleSet>"
    return parse_article_set(body.encode()).records


def two_reviews(factory) -> list[int]:  # type: ignore[no-untyped-def]
    runs = []
    with factory.begin() as session:
        for slug in ("ldh_resorption", "ldh_second_look"):
            protocol = ldh_protocol().model_copy(update={"slug": slug})
            review = ensure_review(session, protocol)
            run = SearchRun(
                review_id=review.id,
                status="started",
                query="q",
                window_start=dt.date(2024, 1, 1),
                window_end=dt.date(2024, 1, 9),
            )
            session.add(run)
            session.flush()
            runs.append(run.id)
    return runs


def test_overlapping_pmids_stored_at_once_by_two_reviews(pg_url: str) -> None:
    engine = make_engine(pg_url)
    factory = make_sessionmaker(engine)
    run_a, run_b = two_reviews(factory)
    records = parsed(90_500_000, 60)
    first, second = records[:40], records[20:]  # 20 PMIDs in common, same content
    outcome: dict[str, object] = {}
    with factory() as session_a:
        run = session_a.get_one(SearchRun, run_a)
        counts_a = store_records(session_a, review_id=run.review_id, run=run, records=first)
        session_a.flush()  # review A's rows are written, not committed

        def other_review() -> None:
            try:
                with factory.begin() as session_b:
                    run_b_row = session_b.get_one(SearchRun, run_b)
                    outcome["b"] = store_records(
                        session_b, review_id=run_b_row.review_id, run=run_b_row, records=second
                    )
            except Exception as exc:
                outcome["error"] = exc

        lock_waits = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        # Wait until B really waits on A's uncommitted rows. Autocommit: inside one transaction
        # PostgreSQL answers pg_stat_activity from the snapshot its first read took, so a
        # watcher that first looked before B blocked never saw it block (the CI failure, when
        # B was slow to start). The first look is taken before B starts, to keep that guarded.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            assert watcher.execute(lock_waits).scalar() == 0
            thread = threading.Thread(target=other_review)
            thread.start()
            waiting = 0
            deadline = time.monotonic() + 60
            while not waiting and thread.is_alive() and time.monotonic() < deadline:
                waiting = watcher.execute(lock_waits).scalar()
                if not waiting:
                    thread.join(timeout=0.05)
            activity = watcher.execute(
                text(
                    "SELECT state, wait_event_type, wait_event, left(query, 60) FROM "
                    "pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
        assert "error" not in outcome, outcome.get("error")
        assert (waiting, thread.is_alive()) == (1, True), f"B never waited on A's rows: {activity}"
        session_a.commit()
    thread.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    counts_b = outcome["b"]
    assert isinstance(counts_b, StoreCounts)
    assert (counts_a.new, counts_b.new, counts_b.unchanged, counts_b.updated) == (40, 20, 20, 0)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Record)) == 60
        links = dict(
            session.execute(
                select(ReviewRecord.review_id, func.count()).group_by(ReviewRecord.review_id)
            ).all()
        )
        assert sorted(links.values()) == [40, 40]
    engine.dispose()


def test_two_reviews_updated_in_parallel_share_records(pg_url: str, demo_snapshot) -> None:
    engine = make_engine(pg_url)
    factory = make_sessionmaker(engine)
    protocols = [
        ldh_protocol().model_copy(update={"slug": s}) for s in ("ldh_resorption", "ldh_second_look")
    ]
    for protocol in protocols:
        init_review(factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot) as server:
        opts = options(server.url)
        results: list[object] = []
        errors: list[BaseException] = []

        def run(protocol) -> None:  # type: ignore[no-untyped-def]
            try:
                results.append(update(factory, protocol, opts, dt.date(2024, 1, 14)))
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(p,)) for p in protocols]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == [] and len(results) == 2
    assert sorted(r.status for r in results) == ["succeeded", "succeeded"]  # type: ignore[attr-defined]
    assert sum(r.new for r in results) == 19  # type: ignore[attr-defined]
    assert record_count(factory) == 19
    engine.dispose()
