"""Snapshots from the database (SQLite and PostgreSQL) and the DB-backed commands end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import EstimateSnapshot, Extraction, Review, Study
from services.meta_analysis import pool
from services.meta_analysis.audit import Headline
from services.meta_analysis.snapshots import Thresholds
from services.meta_analysis.store import load_studies, record_snapshot

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
ROWS = [
    ("A 2001", 2001, 4, 20),
    ("B 2003", 2003, 12, 40),
    ("C 2005", 2005, 9, 25),
    ("D 2010", 2010, 111, 14),
]


def _seed(session: Session) -> Review:
    review = Review(slug="meta_t", title="t", protocol={}, protocol_hash="x")
    session.add(review)
    session.flush()
    for label, year, x, n in ROWS:
        study = Study(review_id=review.id, label=label, year=year, source="baseline")
        session.add(study)
        session.flush()
        session.add(
            Extraction(
                study_id=study.id,
                kind="outcome",
                status="published",
                source="seed:table1",
                data={"n_resorbed": x, "n_total": n},
            )
        )
    session.flush()
    return review


def _snapshot(session: Session, review: Review) -> tuple[EstimateSnapshot, object]:
    snap, changes, _ = record_snapshot(
        session,
        review,
        outcome="resorption",
        options={"method": "REML"},
        headline=Headline(k=4),
        thresholds=Thresholds(),
        trigger="manual",
        events_field="n_resorbed",
        total_field="n_total",
    )
    return snap, changes


def test_snapshots_and_what_changed(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        review = _seed(session)
        first, changes = _snapshot(session, review)
        assert changes.first and changes.notify  # type: ignore[attr-defined]
        expected = pool([4, 12, 9], [20, 40, 25])
        assert first.k == 3 and first.estimate == pytest.approx(expected.estimate, rel=1e-12)
        assert any(f["code"] == "events_exceed_total" for f in first.audit)
        review_id = review.id
    with session_factory.begin() as session:
        review = session.get(Review, review_id)
        study = Study(review_id=review_id, label="E 2020", year=2020, source="screening")
        session.add(study)
        session.flush()
        session.add(
            Extraction(
                study_id=study.id,
                kind="outcome",
                status="confirmed",
                source="reviewer",
                data={"n_resorbed": 35, "n_total": 40},
            )
        )
        session.flush()
        second, changes = _snapshot(session, review)  # type: ignore[arg-type]
        assert second.k == 4 and second.study_ids[-1] == study.id
        assert changes.studies_added == (study.id,)  # type: ignore[attr-defined]
        assert any(r.startswith("k 3 → 4") for r in changes.reasons)  # type: ignore[attr-defined]
    with session_factory() as session:
        rows = session.scalars(select(EstimateSnapshot).order_by(EstimateSnapshot.id)).all()
        assert [r.k for r in rows] == [3, 4]
        assert rows[1].changes["k_before"] == 3 and rows[1].result["studies"][0]["label"]


def test_confirmed_extraction_wins_and_text_is_reported(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        review = _seed(session)
        study = session.scalars(select(Study).where(Study.label == "A 2001")).one()
        session.add(
            Extraction(
                study_id=study.id,
                kind="outcome",
                status="confirmed",
                source="reviewer",
                data={"n_resorbed": "five", "n_total": 20},
            )
        )
        session.flush()
        studies = {s.label: s for s in load_studies(session, review.id, events_field="n_resorbed", total_field="n_total")}
        assert studies["A 2001"].events is None
        assert studies["A 2001"].extra["raw_events"] == "five"
        assert [s.year for s in studies.values()] == sorted(s.year for s in studies.values())


def _cli(args: list[str], db: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db, "DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-c", "from services.cli import main; main()", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_commands_on_the_seed_review(db_url: str, tmp_path: Path) -> None:
    assert _cli(["init"], db_url, tmp_path).returncode == 0
    audit = _cli(["audit", "--json"], db_url, tmp_path)
    assert audit.returncode == 0, audit.stderr
    data = json.loads(audit.stdout)
    assert list(data["excluded"]) == ["Ellenberg et al., 1993"]
    codes = {(f["code"], f["study"]) for f in data["findings"]}
    assert ("events_exceed_total", "Ellenberg et al., 1993") in codes
    duplicates = {study for code, study in codes if code == "duplicate_cohort"}
    assert len(duplicates) == 2 and any(s.startswith("Ahn et al.") for s in duplicates)
    assert any(code == "headline_mismatch" for code, _ in codes)
    est = _cli(["estimates", "--json", "--save"], db_url, tmp_path)
    assert est.returncode == 0, est.stderr
    result = json.loads(est.stdout)["result"]
    assert result["k"] == 30 and 0.6 < result["estimate"] < 0.85
    assert result["pi_low"] < result["ci_low"] < result["estimate"] < result["ci_high"]
    out = tmp_path / "forest.png"
    assert _cli(["plot", "forest", "--out", str(out)], db_url, tmp_path).returncode == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    bad = _cli(["plot", "forest", "--out", str(tmp_path / "f.pdf")], db_url, tmp_path)
    assert bad.returncode == 1 and "error: --out must end in .png or .svg" in bad.stderr
