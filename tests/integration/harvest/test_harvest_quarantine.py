"""One malformed article never fails the run (issue 16 item 1), books are stored (issue 12 #6),
and the same values give the same result on SQLite and PostgreSQL (issue 16 item 2).

The snapshot is the demo's first week plus a file written here: one article of each malformed
kind (each a real PubMed structure with one value broken), a PubmedBookArticle (real structure:
BookDocument + PubmedBookData), and an article with a MedlineDate over 40 characters and a DOI
over 255. The run goes through the replay server over real HTTP and the update path.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harvest_helpers import ROOT, init_review, ldh_protocol, options, update
from sqlalchemy import select

from db.models import OutboxEmail, QuarantinedRecord, Record, SearchRun
from services.pubmed.replay import PUBMED_DOCTYPE, ReplayServer
from services.pubmed.xmlbuild import Article, article_xml

pytestmark = pytest.mark.integration
CREATED = dt.date(2024, 1, 5)  # inside the second run's overlap (2024-01-04..)
LONG_DATE = "2023 Winter-2024 Spring (a combined issue with its supplement)"
LONG_DOI = "10.5555/" + "lumbar-" * 50

BROKEN = {  # PMID -> (how the article is broken, the reason the quarantine must give)
    99000301: (
        ("<Year>2024</Year></PubDate>", "<Year>²⁰²⁴</Year></PubDate>"),
        "year '²⁰²⁴' is not a number",
    ),
    99000302: (
        ('<PMID Version="1">99000302</PMID>', '<PMID Version="1">99000302xb</PMID>'),
        "PMID '99000302xb' is not a number",
    ),
    99000303: (
        ("<Year>2024</Year></PubDate>", "<Year>2024</Year><Month>14</Month></PubDate>"),
        "month 14 is out of range",
    ),
    99000304: (
        ("<Year>2024</Year></PubDate>", "<Year>202400000000000000000</Year></PubDate>"),
        "is not a four-digit year",
    ),
    99000305: (
        ('<PMID Version="1">77</PMID>', '<PMID Version="1">n/a</PMID>'),
        "PMID 'n/a' is not a number",
    ),
    99000306: (
        ('<PMID Version="1">99000306</PMID>', '<PMID Version="two">99000306</PMID>'),
        "PMID Version 'two' is not a number",
    ),
}


def broken(pmid: int, change: tuple[str, str]) -> str:
    xml = article_xml(
        Article(
            pmid=pmid,
            title=f"Malformed record {pmid}",
            created=CREATED,
            corrections=[("CommentOn", "Spine Notes 2020", 77)],
        )
    )
    assert change[0] in xml
    return xml.replace(change[0], change[1], 1)


def book(pmid: int) -> str:
    return (
        f'<PubmedBookArticle><BookDocument><PMID Version="1">{pmid}</PMID><Book><Publisher>'
        "<PublisherName>Open Clinical Press</PublisherName></Publisher><BookTitle>Open "
        "Spine Handbook</BookTitle><PubDate><Year>2024</Year></PubDate></Book><ArticleTitle>"
        "Disc herniation that regresses</ArticleTitle><Language>eng</Language>"
        '<AuthorList Type="authors"><Author><LastName>Writer</LastName></Author></AuthorList>'
        "<Abstract><AbstractText>Lumbar extrusions often resorb.</AbstractText></Abstract>"
        '</BookDocument><PubmedBookData><History><PubMedPubDate PubStatus="entrez"><Year>2024'
        "</Year><Month>1</Month><Day>5</Day></PubMedPubDate></History></PubmedBookData>"
        "</PubmedBookArticle>"
    )


def long_values(pmid: int) -> str:
    xml = article_xml(Article(pmid=pmid, title="Long values", created=CREATED, doi=LONG_DOI))
    return xml.replace(
        "<PubDate><Year>2024</Year></PubDate>",
        f"<PubDate><MedlineDate>{LONG_DATE}</MedlineDate></PubDate>",
    )


@pytest.fixture
def snapshot(tmp_path: Path, demo_snapshot: Path) -> Path:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    shutil.copy(demo_snapshot / "week1.xml", folder / "week1.xml")
    parts = [broken(p, change) for p, (change, _) in BROKEN.items()]
    parts += [book(99000310), long_values(99000311)]
    (folder / "odd.xml").write_text(
        f'<?xml version="1.0" encoding="UTF-8" ?>\n{PUBMED_DOCTYPE}\n<PubmedArticleSet>\n'
        + "\n".join(parts)
        + "\n</PubmedArticleSet>\n",
        encoding="utf-8",
    )
    return folder


def test_malformed_articles_are_quarantined_and_the_run_goes_on(
    session_factory, db_url: str, snapshot: Path, tmp_path: Path
) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    with ReplayServer(snapshot) as server:
        result = update(session_factory, protocol, options(server.url), dt.date(2024, 1, 7))
        # The next update's window overlaps the first by the protocol's 3 days, so it meets the
        # malformed articles again (no demo record was created on 2024-01-08).
        again = update(session_factory, protocol, options(server.url), dt.date(2024, 1, 8))
    assert result.status == "succeeded" and again.status == "succeeded"
    assert (result.found, result.new) == (18, 12)  # 10 demo + the book + the long values
    with session_factory() as session:
        stored = set(session.scalars(select(Record.pmid)))
        held = session.scalars(select(QuarantinedRecord).order_by(QuarantinedRecord.id)).all()
        run = session.get_one(SearchRun, result.run_id)
        met_again = len(session.get_one(SearchRun, again.run_id).stats["quarantined"])
        long = session.scalars(select(Record).where(Record.pmid == 99000311)).one()
        chapter = session.scalars(select(Record).where(Record.pmid == 99000310)).one()
        digest = session.scalars(select(OutboxEmail)).first()
    assert stored.isdisjoint(BROKEN) and {99000310, 99000311} <= stored and len(stored) == 12
    assert met_again == len(held) == len(BROKEN)  # the second run met them again: no copy
    for row in held:
        pmid = int("".join(c for c in (row.pmid or "") if c.isdigit()) or 0)
        expected = next(reason for p, (_, reason) in BROKEN.items() if str(p) in row.xml)
        assert expected in row.reason, (pmid, row.reason)
        assert row.xml.startswith("<PubmedArticle>") and row.search_run_id == result.run_id
    assert len(run.stats["quarantined"]) == len(BROKEN) and run.stats["unaccounted"] == 0
    assert (long.pub_date, long.doi) == (LONG_DATE, LONG_DOI)  # same on both databases
    assert (chapter.journal, chapter.title) == (
        "Open Spine Handbook",
        "Disc herniation that regresses",
    )
    assert digest is not None
    assert "could not be read: see quarantine" in digest.body_text
    assert "Could not be read, held in quarantine: 6" in digest.body_text

    env = {**os.environ, "DATABASE_URL": db_url, "DATA_DIR": str(tmp_path / "var")}
    runs = subprocess.run(
        [sys.executable, "-m", "services.cli", "runs", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert runs.returncode == 0, runs.stderr
    first = next(r for r in json.loads(runs.stdout) if r["id"] == result.run_id)
    assert sorted(q["pmid"] for q in first["quarantined"]) == sorted(
        ["99000301", "99000302xb", "99000303", "99000304", "99000305", "99000306"]
    )
    assert all(q["reason"] for q in first["quarantined"]) and first["status"] == "succeeded"


def test_a_pmid_the_database_cannot_hold_is_refused_alike(session_factory, tmp_path: Path) -> None:
    """A negative PMID or one past BIGINT: refused at parse time on both databases, and the
    CHECK constraint refuses a negative one written by any other path."""
    from sqlalchemy.exc import IntegrityError

    from services.pubmed.parse import MAX_PMID, parse_article_set

    for pmid in ("-99000400", str(MAX_PMID + 1)):
        body = (
            f"<PubmedArticleSet>{article_xml(Article(pmid=1, title='x', created=CREATED))}"
            "</PubmedArticleSet>"
        ).replace('<PMID Version="1">1</PMID>', f"<PMID>{pmid}</PMID>")
        parsed = parse_article_set(body.encode())
        assert parsed.records == [] and len(parsed.quarantined) == 1
    with (
        pytest.raises(IntegrityError, match=r"pmid_positive|CHECK"),
        session_factory.begin() as session,
    ):
        session.add(Record(pmid=-5, title="x", content_hash="0" * 64))
        session.flush()
