"""esearch answers PubMed gives with HTTP 200 for a query it did not search as written: the run
fails with the reason and keeps its window (replay server over real HTTP, SQLite and PostgreSQL).

The replay server's answer kinds reproduce structures of real E-utilities output: ErrorList/
PhraseNotFound and FieldNotFound, WarningList/QuotedPhraseNotFound and PhraseIgnored, a
QueryTranslation without a word of the query, an answer without WebEnv, an <ERROR> element.
"""

from __future__ import annotations

import datetime as dt

import pytest
from harvest_helpers import init_review, ldh_protocol, options, record_count, update
from sqlalchemy import select

from db.models import SearchRun
from services.pubmed.errors import PubMedError
from services.pubmed.replay import ReplayServer

pytestmark = pytest.mark.integration
WEEK1_END = dt.date(2024, 1, 7)


def failing_update(factory, protocol, opts) -> str:  # type: ignore[no-untyped-def]
    """The reason an update gave, whether it raised it or returned it."""
    try:
        result = update(factory, protocol, opts, WEEK1_END)
    except PubMedError as exc:
        return str(exc)
    return result.error or ""


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("phrasenotfound", "PhraseNotFound 'Intervertebral'"),
        ("fieldnotfound", "FieldNotFound 'Titel'"),
        ("quotednotfound", "QuotedPhraseNotFound"),
        ("phraseignored", "PhraseIgnored 'Intervertebral'"),
        ("lostterm", "translation of the query lost 'intervertebral'"),
        ("nowebenv", "without a WebEnv"),
        ("error", "esearch refused the query: Search Backend failed"),
    ],
)
def test_an_altered_search_fails_the_run_and_the_next_run_asks_the_window_again(
    session_factory, demo_snapshot, kind: str, reason: str
) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot, faults=f"{kind}:*") as server:
        opts = options(server.url, tries=2)
        said = failing_update(session_factory, protocol, opts)
        assert reason in said and "\n" not in said and "Traceback" not in said
        with session_factory() as session:
            run = session.scalars(select(SearchRun)).one()
            assert run.status in ("failed", "held")
            assert reason in (run.error or "")
        assert record_count(session_factory) == 0
        server.set_faults(None)
        healthy = update(session_factory, protocol, opts, WEEK1_END)
    assert (healthy.status, healthy.window_start, healthy.new) == ("succeeded", "2023-10-01", 10)


def test_an_http_dtd_in_the_answer_is_read_without_fetching_it(
    session_factory, demo_snapshot
) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot, faults="httpdtd:*") as server:
        result = update(session_factory, protocol, options(server.url), WEEK1_END)
    assert (result.status, result.new) == ("succeeded", 10)
