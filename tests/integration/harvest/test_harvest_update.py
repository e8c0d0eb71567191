"""Incremental harvest against the replay server over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from harvest_helpers import init_review, ldh_protocol, options, record_count, update
from sqlalchemy import func, select

from db.models import Extraction, Record, ReviewRecord, SearchRun, Study
from services.pubmed.errors import EntrezUnavailableError
from services.pubmed.replay import ReplayServer
from services.runs import WindowCoveredError

pytestmark = pytest.mark.integration
WEEK1_END, WEEK2_END = dt.date(2024, 1, 7), dt.date(2024, 1, 14)
CRDT = re.compile(r"(\d{4}/\d{2}/\d{2}):(\d{4}/\d{2}/\d{2})\[crdt\]")


def crdt_windows(server: ReplayServer, since: int = 0) -> list[tuple[str, str]]:
    """The create-date windows searched (the re-check of older records searches by [mdat])."""
    return [CRDT.search(e["params"]["term"]).groups()  # type: ignore[union-attr]
            for e in server.state.log[since:]
            if e["utility"] == "esearch" and "[crdt]" in e["params"]["term"]]


def recheck_requests(server: ReplayServer, since: int = 0) -> list[dict[str, object]]:
    """The requests of the re-check of older records: esearches by [uid], efetches by id."""
    return [e for e in server.state.log[since:]
            if "[uid]" in e["params"].get("term", "") or "id" in e["params"]]


def test_baseline_import_counts(session_factory) -> None:
    init_review(session_factory, ldh_protocol())
    init_review(session_factory, ldh_protocol())  # re-running init adds nothing
    with session_factory() as session:
        kinds = dict(session.execute(
            select(Extraction.kind, func.count()).group_by(Extraction.kind)).all())
        # The three directions the seed states in its text (Table 2 prints none): see
        # reviews/ldh_resorption/baseline/table2_directions.csv.
        assert kinds == {
            "outcome": 31,
            "predictors": 17,
            "mechanisms": 22,
            "predictor_directions": 3,
        }
        assert session.scalar(select(func.count()).select_from(Study)) == 90
        ellenberg = session.scalars(
            select(Extraction)
            .join(Study)
            .where(Study.ref_no == 14, Extraction.kind == "outcome")
        ).one()
        # imported as printed: 111 resorbed of 14 is impossible, and kept for the audit to find
        assert (ellenberg.data["n_total"], ellenberg.data["n_resorbed"]) == (14, 111)
        assert ellenberg.provenance["file"] == "table1_prevalence.csv"


def test_two_updates_are_incremental_and_a_third_adds_nothing(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    with ReplayServer(demo_snapshot) as server:
        opts = options(server.url)
        first = update(session_factory, protocol, opts, WEEK1_END)
        assert crdt_windows(server) == [("2023/10/01", "2024/01/07")]
        assert (first.status, first.new) == ("succeeded", 10)
        seen = len(server.state.log)
        second = update(session_factory, protocol, opts, WEEK2_END)
        # only the new window, starting the protocol's overlap (3 days) before the last bound
        assert crdt_windows(server, seen) == [("2024/01/04", "2024/01/14")]
        assert second.new == 9
        with session_factory() as session:
            new_pmids = set(session.scalars(
                select(Record.pmid).join(ReviewRecord).where(ReviewRecord.search_run_id == second.run_id)))
        assert new_pmids == {p for p in range(99000201, 99000210)}
        with pytest.raises(WindowCoveredError, match=f"run {second.run_id} searched up to 2024-01-14"):
            update(session_factory, protocol, opts, WEEK2_END)  # a third run has nothing to ask
        # the window's esearch and efetch, and the re-check of the first update's records
        assert len(server.state.log) == seen + len(crdt_windows(server, seen)) + 1 + len(
            recheck_requests(server, seen))
    assert record_count(session_factory) == 19


def test_baseline_duplicates_are_linked_not_queued(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    with ReplayServer(demo_snapshot) as server:
        update(session_factory, protocol, options(server.url), WEEK2_END)
    with session_factory() as session:
        links = {rr.record.pmid: rr for rr in session.scalars(select(ReviewRecord))}
        by_doi, by_title = links[99000106], links[99000204]
        assert by_doi.state == "linked" and "DOI" in (by_doi.reason or "")
        assert by_title.state == "linked" and "title" in (by_title.reason or "")
        assert session.get_one(Study, by_doi.study_id).ref_no == 19
        assert session.get_one(Study, by_title.study_id).ref_no == 1
        assert {p for p, rr in links.items() if rr.state == "linked"} == {99000106, 99000204}


def test_transient_faults_are_retried(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    faults = "429:2,500:1,truncate@efetch:1"
    with ReplayServer(demo_snapshot, faults=faults) as server:
        result = update(session_factory, protocol, options(server.url), WEEK2_END)
        statuses = len(server.state.log)
    assert result.status == "succeeded" and result.new == 19
    assert statuses == 2 + 4  # esearch + efetch, and four answers replaced by faults
    assert result.requests == 6


def test_persistent_fault_fails_the_run_and_the_next_run_refetches(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot) as server:
        opts = options(server.url, batch=5, tries=3)
        update(session_factory, protocol, opts, WEEK1_END)
        # the second week's first efetch batch succeeds, then every efetch fails
        server.set_faults("slow=0@efetch:1,500@efetch:*")
        with pytest.raises(EntrezUnavailableError, match="HTTP 500"):
            update(session_factory, protocol, opts, WEEK2_END)
        with session_factory() as session:
            failed = session.scalars(select(SearchRun).order_by(SearchRun.id.desc())).first()
            assert failed is not None and failed.status == "failed"
            assert "HTTP 500" in (failed.error or "") and "failed 3 times" in (failed.error or "")
        assert record_count(session_factory) == 10  # nothing of the failed window was stored
        server.set_faults(None)
        healthy = update(session_factory, protocol, opts, WEEK2_END)
    assert (healthy.window_start, healthy.window_end) == ("2024-01-04", "2024-01-14")
    assert healthy.status == "succeeded" and healthy.new == 9
    assert record_count(session_factory) == 19


def test_unreachable_entrez_fails_with_a_clear_reason(session_factory) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    opts = options("http://127.0.0.1:9/entrez/eutils/", tries=2)  # port 9: nothing listens
    with pytest.raises(EntrezUnavailableError, match=r"failed 2 times.*URLError"):
        update(session_factory, protocol, opts, WEEK1_END)
    with session_factory() as session:
        run = session.scalars(select(SearchRun)).one()
        assert run.status == "failed" and "127.0.0.1:9" in (run.error or "")


def test_a_second_update_of_the_same_review_is_refused(session_factory, demo_snapshot) -> None:
    import threading

    from services.runs import UpdateInProgressError

    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot, faults="slow=3:1") as server:
        opts = options(server.url)
        results: list[object] = []
        first = threading.Thread(target=lambda: results.append(update(session_factory, protocol, opts, WEEK1_END)))
        first.start()
        while not server.state.log:  # the first update is waiting for its slow esearch
            threading.Event().wait(0.05)
        with pytest.raises(UpdateInProgressError, match="another update of ldh_resorption is running"):
            update(session_factory, protocol, opts, WEEK1_END)
        first.join(timeout=60)
    assert results and results[0].status == "succeeded"  # type: ignore[attr-defined]
    with session_factory() as session:
        assert [r.status for r in session.scalars(select(SearchRun))] == ["succeeded"]


def test_an_interrupted_run_is_resumed_with_its_window(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with session_factory.begin() as session:  # a process died in the middle of an update
        session.add(SearchRun(review_id=1, status="started", query=protocol.search.term,
                              window_start=dt.date(2023, 10, 1), window_end=WEEK1_END, windows=[],
                              stats={}))
    with ReplayServer(demo_snapshot) as server:
        result = update(session_factory, protocol, options(server.url), WEEK2_END)
        # the interrupted run's own window first, then (same update) the rest up to --until
        assert crdt_windows(server) == [("2023/10/01", "2024/01/07"), ("2024/01/04", "2024/01/14")]
    assert result.resumed is not None
    assert (result.resumed["run_id"], result.resumed["status"], result.resumed["window_end"],
            result.resumed["new"]) == (1, "succeeded", "2024-01-07", 10)
    assert (result.run_id, result.status, result.window_end) == (2, "succeeded", "2024-01-14")
    with session_factory() as session:
        assert [r.status for r in session.scalars(select(SearchRun))] == ["succeeded"] * 2
