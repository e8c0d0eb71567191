"""Proposals kept with their records (SQLite and PostgreSQL), and ``extract --pmid`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ExtractionProposal, Record, Review, ReviewRecord
from services.extraction import load_schema, propose
from services.extraction.store import propose_included, store_proposal

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LDH = load_schema(ROOT / "reviews" / "ldh_resorption" / "protocol.toml")  # the review's vocabularies
ABSTRACT = (
    "Methods: Forty patients (18 men and 22 women) were followed with MRI for 12 months. "
    "Results: Resorption was observed in 30 of 40 patients (75%)."
)


def _seed(session: Session, state: str = "included") -> tuple[int, int]:
    review = Review(slug="ldh_resorption", title="t", protocol={}, protocol_hash="x")
    record = Record(
        pmid=999001,
        title="Resorption of LDH",
        abstract=ABSTRACT,
        content_hash="h",
        affiliations=["Dept of Spine, Kyoto University, Kyoto, Japan"],
    )
    session.add_all([review, record])
    session.flush()
    session.add(ReviewRecord(review_id=review.id, record_id=record.id, state=state))
    session.flush()
    return review.id, record.id


def test_store_is_idempotent(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        review_id, record_id = _seed(session)
        proposal = propose("Resorption of LDH", ABSTRACT, schema=LDH)
        store_proposal(session=session, review_id=review_id, record_id=record_id, proposal=proposal)
        store_proposal(session=session, review_id=review_id, record_id=record_id, proposal=proposal)
    with session_factory() as session:
        rows = session.scalars(select(ExtractionProposal)).all()
        assert len(rows) == 1
        assert rows[0].fields["n_resorbed"]["value"] == 30
        assert rows[0].fields["n_total"]["value"] == 40
        assert rows[0].extractor_version == proposal.extractor_version


def test_propose_included_only_once(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        review_id, _ = _seed(session)
        assert propose_included(session=session, review_id=review_id, schema=LDH) == 1
    with session_factory.begin() as session:
        assert propose_included(session=session, review_id=review_id, schema=LDH) == 0
        count = session.scalar(select(func.count()).select_from(ExtractionProposal))
        assert count == 1
        fields = session.scalars(select(ExtractionProposal.fields)).one()
        assert fields["country"]["value"] == "Japan"


def test_queued_records_get_no_proposal(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        review_id, _ = _seed(session, state="queued")
        assert propose_included(session=session, review_id=review_id, schema=LDH) == 0


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=db_url)
    return subprocess.run(
        [sys.executable, "-c", "from services.cli import main; main()", "extract", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_extract_pmid_json_and_store(db_url: str, session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        _seed(session)
    done = _cli(db_url, "--pmid", "999001", "--json", "--store")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["source"] == {"pmid": 999001} and data["stored"] is True
    assert data["fields"]["n_resorbed"]["value"] == 30
    assert data["fields"]["sex"]["value"] == {"male": 18, "female": 22}
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(ExtractionProposal)) == 1
    missing = _cli(db_url, "--pmid", "1")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "error: no stored record with PMID 1 (harvest it first: living-review update)"
    )
