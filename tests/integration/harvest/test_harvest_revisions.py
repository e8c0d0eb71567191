"""Revised records keep their history; retractions of included studies are flagged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from harvest_helpers import init_review, ldh_protocol, options, update
from sqlalchemy import select

from db.models import AuditLog, Record, RecordVersion, ReviewRecord, Study
from services.pubmed.replay import ReplayServer
from services.pubmed.xmlbuild import Article, write_article_set

pytestmark = pytest.mark.integration
DAY = dt.date(2024, 1, 5)


def snapshot(path: Path, articles: list[Article]) -> Path:
    path.mkdir()
    write_article_set(path / "set.xml", articles)
    return path


def test_a_revised_record_updates_the_row_and_keeps_the_old_version(
    session_factory, tmp_path
) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    v1 = Article(
        pmid=99100001,
        created=DAY,
        title="Resorption of disc herniation",
        abstract=[("", "Of 40 patients, 30 resorbed.")],
    )
    v2 = Article(
        pmid=99100001,
        created=DAY,
        title="Resorption of lumbar disc herniation",
        abstract=[("", "Of 40 patients, 31 resorbed.")],
        version=1,
        revised=DAY + dt.timedelta(days=3),
    )
    with ReplayServer(snapshot(tmp_path / "a", [v1])) as server:
        update(session_factory, protocol, options(server.url), DAY + dt.timedelta(days=1))
    with ReplayServer(snapshot(tmp_path / "b", [v2])) as server:
        second = update(session_factory, protocol, options(server.url), DAY + dt.timedelta(days=2))
    assert (second.new, second.updated) == (0, 1)
    with session_factory() as session:
        record = session.scalars(select(Record)).one()
        assert record.revision == 2 and "31 resorbed" in record.abstract
        old = session.scalars(select(RecordVersion)).one()
        assert old.revision == 1 and "30 resorbed" in old.data["abstract"]
        assert session.scalar(select(ReviewRecord.id)) is not None


def test_a_retraction_notice_flags_the_linked_included_study(session_factory, tmp_path) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    dup = Article(
        pmid=99100002,
        created=DAY,
        doi="10.1186/s12891-020-03723-2",
        year=2020,
        title="Non-surgical treatment with XSHHD for ruptured lumbar disc herniation",
    )
    notice = Article(
        pmid=99100003,
        created=DAY + dt.timedelta(days=1),
        title="Retraction Note: Non-surgical treatment with XSHHD",
        publication_types=["Retraction of Publication"],
        corrections=[("RetractionOf", "BMC Musculoskelet Disord. 2020", 99100002)],
    )
    with ReplayServer(snapshot(tmp_path / "a", [dup])) as server:
        update(session_factory, protocol, options(server.url), DAY)
    with ReplayServer(snapshot(tmp_path / "b", [dup, notice])) as server:
        update(session_factory, protocol, options(server.url), DAY + dt.timedelta(days=2))
    with session_factory() as session:
        study = session.scalars(select(Study).where(Study.ref_no == 20)).one()
        assert study.status == "retracted"
        assert study.flags[0]["pmid"] == 99100002 and study.flags[0]["notice_pmid"] == 99100003
        assert session.scalars(select(Record).where(Record.pmid == 99100002)).one().is_retracted
        assert session.scalars(select(AuditLog).where(AuditLog.action == "study.retracted")).one()


def test_a_retracted_background_reference_is_not_an_included_study(
    session_factory, tmp_path
) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    # reference 2 of the seed is cited, not included; the retraction here is made up for the test
    ref = Article(
        pmid=99100010,
        created=DAY,
        doi="10.1016/s0140-6736(21)00733-9",
        year=2021,
        title="Low back pain",
        publication_types=["Journal Article", "Retracted Publication"],
    )
    with ReplayServer(snapshot(tmp_path / "a", [ref])) as server:
        update(session_factory, protocol, options(server.url), DAY)
    with session_factory() as session:
        study = session.scalars(select(Study).where(Study.ref_no == 2)).one()
        assert study.status == "reference" and study.flags == []
        link = session.scalars(select(ReviewRecord)).one()
        assert link.state == "linked" and "retracted" in link.flags
