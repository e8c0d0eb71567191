"""No record lost, no review stuck: short efetch batches, staging and the chunked apply.

Over real HTTP against the replay server, on SQLite and PostgreSQL. The short answers stand for
what NCBI sends under load with HTTP 200: a ``PubmedArticleSet`` holding fewer articles than the
``retmax`` asked for (``short=N``), or none at all (``emptyset``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from harvest_helpers import ROOT, init_review, ldh_protocol, options, record_count, update
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db.models import HarvestStaging, ReviewRecord, SearchRun, Study
from services import runs
from services import update as steps
from services.pubmed.errors import EntrezUnavailableError, IncompleteFetchError
from services.pubmed.replay import ReplayServer
from services.pubmed.xmlbuild import Article, write_article_set

pytestmark = pytest.mark.integration
WEEK1_END, WEEK2_END = dt.date(2024, 1, 7), dt.date(2024, 1, 14)
HERE = Path(__file__).resolve().parent


def staged_rows(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(HarvestStaging)) or 0)


def links(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(ReviewRecord)) or 0)


def last_run(factory: sessionmaker[Session]) -> SearchRun:
    with factory() as session:
        run = session.scalars(select(SearchRun).order_by(SearchRun.id.desc())).first()
        assert run is not None
        return run


def by_id_requests(server: ReplayServer) -> list[list[str]]:
    return [e["params"]["id"].split(",") for e in server.state.log
            if e["utility"] == "efetch" and "id" in e["params"]]


FIRST_BATCH = [str(p) for p in range(99000101, 99000106)]


@pytest.mark.parametrize(("fault", "asked_again"), [
    ("short=2@efetch:1", FIRST_BATCH[3:]),  # the first batch of 5 answers 3 articles
    ("emptyset@efetch:1", FIRST_BATCH),  # the first batch answers none
])
def test_a_short_batch_is_made_up_by_asking_for_the_missing_pmids(
        session_factory, demo_snapshot, fault: str, asked_again: list[str]) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot, faults=fault) as server:
        result = update(session_factory, protocol, options(server.url, batch=5), WEEK1_END)
        assert by_id_requests(server) == [asked_again]
    assert (result.status, result.found, result.fetched, result.new) == ("succeeded", 10, 10, 10)
    assert record_count(session_factory) == 10 and links(session_factory) == 10
    missing = len(asked_again)
    assert last_run(session_factory).stats["efetch"] == {
        "asked": 10, "answered": 10 - missing, "short_batches": 1, "reasked": missing,
        "recovered": missing}
    assert staged_rows(session_factory) == 0  # cleared once harvested


def test_records_that_stay_missing_fail_the_run_store_nothing_and_keep_the_window(
        session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot) as server:
        opts = options(server.url, batch=5, tries=2)
        update(session_factory, protocol, opts, WEEK1_END)
        server.set_faults("short=1@efetch:*")  # every answer, by PMID too, lacks its last article
        with pytest.raises(IncompleteFetchError, match=r"efetch left out 1 of the \d+ records esearch "
                           r"found for 2024-01-04\.\.2024-01-14, also when asked for them by PMID 2 times"):
            update(session_factory, protocol, opts, WEEK2_END)
        failed = last_run(session_factory)
        assert failed.status == "failed" and "PMIDs 99000" in (failed.error or "")
        assert record_count(session_factory) == 10 and links(session_factory) == 10
        server.set_faults(None)
        healthy = update(session_factory, protocol, opts, WEEK2_END)
    assert (healthy.window_start, healthy.status, healthy.new) == ("2024-01-04", "succeeded", 9)
    assert record_count(session_factory) == 19
    assert staged_rows(session_factory) == 0  # the failed run's staged batches were cleared


def test_a_harvest_failing_mid_fetch_stores_nothing_in_records(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with session_factory.begin() as session:
        run_id = runs.begin(session, protocol, WEEK1_END).id
    # the first batch of 5 arrives and is staged, then efetch keeps failing
    with ReplayServer(demo_snapshot, faults="slow=0@efetch:1,500@efetch:*") as server, \
            pytest.raises(EntrezUnavailableError, match="HTTP 500"):
        steps.harvest(session_factory, run_id, options(server.url, batch=5, tries=2).make_client())
    assert staged_rows(session_factory) == 5  # streamed: the batch was staged as it arrived
    assert record_count(session_factory) == 0 and links(session_factory) == 0
    with ReplayServer(demo_snapshot) as server:  # the step again: the fetch is redone whole
        steps.harvest(session_factory, run_id, options(server.url, batch=5).make_client())
    assert record_count(session_factory) == 10 and links(session_factory) == 10
    assert staged_rows(session_factory) == 0


def test_a_harvest_killed_while_applying_resumes_without_duplicates(
        session_factory, db_url, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with session_factory.begin() as session:
        run_id = runs.begin(session, protocol, WEEK1_END).id
    with ReplayServer(demo_snapshot) as server:
        killed = subprocess.run(
            [sys.executable, "-m", "killed_harvest", db_url, server.url, str(run_id), "6", "3"],
            cwd=HERE, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
            text=True, timeout=120,
        )
        assert killed.returncode == -9, killed.stderr
        assert record_count(session_factory) == 6  # two chunks of 3 applied, then the kill
        assert staged_rows(session_factory) == 10
        seen = len(server.state.log)
        stats = steps.harvest(session_factory, run_id, options(server.url).make_client(), chunk=3)
        assert len(server.state.log) == seen  # resumed from staging: nothing asked again
    run = last_run(session_factory)
    assert (run.status, run.n_fetched, run.n_new, stats["unchanged"]) == ("harvested", 10, 10, 0)
    assert record_count(session_factory) == 10 and links(session_factory) == 10
    assert staged_rows(session_factory) == 0


def test_a_retraction_notice_applied_before_the_record_it_retracts_flags_it(
        session_factory, tmp_path) -> None:
    """A notice and the paper it retracts in one window, the notice in an earlier chunk
    (a lower PMID): the paper is an included study of the seed (ref 20, by DOI)."""
    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    day = dt.date(2024, 1, 5)
    notice = Article(pmid=99100001, created=day, title="Retraction Note: XSHHD for disc herniation",
                     publication_types=["Retraction of Publication"],
                     corrections=[("RetractionOf", "BMC Musculoskelet Disord. 2020", 99100002)])
    paper = Article(pmid=99100002, created=day, doi="10.1186/s12891-020-03723-2", year=2020,
                    title="Non-surgical treatment with XSHHD for ruptured lumbar disc herniation")
    (tmp_path / "snap").mkdir()
    write_article_set(tmp_path / "snap" / "set.xml", [notice, paper])
    with session_factory.begin() as session:
        run_id = runs.begin(session, protocol, day + dt.timedelta(days=1)).id
    with ReplayServer(tmp_path / "snap") as server:
        stats = steps.harvest(session_factory, run_id, options(server.url).make_client(), chunk=1)
    with session_factory() as session:
        study = session.scalars(select(Study).where(Study.ref_no == 20)).one()
        assert study.status == "retracted" and study.flags[0]["notice_pmid"] == 99100001
        assert stats["retracted_studies"] == [study.id]


def test_a_writer_beside_the_harvest_commits_between_its_chunks(sqlite_url, demo_snapshot) -> None:
    """SQLite, the embedded default: a reviewer's write while an update stores its window.

    The harvest is held between two of its chunks (its progress callback) while another
    connection, with a 2-second busy timeout, writes and commits: it would fail with "database
    is locked" if the harvest kept a write transaction open across chunks.
    """
    from db.session import make_engine, make_sessionmaker

    engine = make_engine(sqlite_url)
    factory = make_sessionmaker(engine)
    protocol = ldh_protocol()
    init_review(factory, protocol, baseline=False)
    with factory.begin() as session:
        run_id = runs.begin(session, protocol, WEEK1_END).id
    path = str(make_url(sqlite_url).database)
    written: list[int] = []
    errors: list[BaseException] = []

    def reviewer() -> None:
        try:
            with sqlite3.connect(path, timeout=2) as db:
                db.execute("INSERT INTO audit_log (review_id, action, entity, entity_id, detail) "
                           "VALUES (1, 'reviewer.note', 'review', 1, '{}')")
                written.append(db.execute("SELECT count(*) FROM records").fetchone()[0])
            db.close()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def progress(message: str) -> None:
        if message.startswith("stored ") and not written and not errors:
            writer = threading.Thread(target=reviewer)
            writer.start()
            writer.join(timeout=30)

    with ReplayServer(demo_snapshot) as server:
        stats = steps.harvest(factory, run_id, options(server.url, batch=2).make_client(),
                              progress, chunk=2)
    stored = record_count(factory)
    engine.dispose()
    assert errors == [] and len(written) == 1
    assert 0 < written[0] < 10  # the reviewer wrote while the harvest was part-way through
    assert stats["unaccounted"] == 0 and stored == 10


def test_the_cli_reports_fetched_and_fails_with_one_line_when_a_record_stays_lost(
        sqlite_url, tmp_path) -> None:
    from test_harvest_cli import _env, cli

    env = _env(sqlite_url, tmp_path)  # ENTREZ_MAX_TRIES=3
    assert cli("init", env=env).returncode == 0
    lost = cli("update", "--snapshot", "demo", "--until", "2024-01-07",
               "--fault", "short=1@efetch:*", env=env)
    assert lost.returncode == 1 and "Traceback" not in lost.stderr
    assert lost.stderr.strip().splitlines()[-1].startswith(
        "error: update failed: efetch left out 1 of the 10 records esearch found for "
        "2023-10-01..2024-01-07, also when asked for them by PMID 3 times (PMIDs 99000")
    made_up = cli("update", "--snapshot", "demo", "--until", "2024-01-07",
                  "--fault", "short=2@efetch:1", "--json", env=env)
    assert made_up.returncode == 0, made_up.stderr
    answer = json.loads(made_up.stdout)
    assert (answer["window_start"], answer["found"], answer["fetched"], answer["new"]) == (
        "2023-10-01", 10, 10, 10)
