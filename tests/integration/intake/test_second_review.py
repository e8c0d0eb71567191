"""A second review, end to end through the command line: new → import → update, on both databases.

The material (snapshot, RIS of includes, Rayyan RIS, ASReview CSV) is built by
``second_review.py``; the E-utilities are the replay server over real HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import Record, Review, ReviewRecord, ScreeningDecision, Study
from db.session import make_engine, make_sessionmaker
from tests.integration.intake.second_review import QUERY, Material

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
SLUG = "dry_eye_cl"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def new_review(env: dict[str, str], material: Material) -> subprocess.CompletedProcess[str]:
    return cli("new", SLUG, "--title", "Dry eye among contact lens wearers", "--query", QUERY,
               "--start-date", "2024-01-01", "--outcome", "dry eye",
               "--inclusion", "Contact lens wearers", "--exclusion", "Case reports",
               "--exclude-type", "Case Reports", "--snapshot", str(material.snapshot), env=env)


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        out = {
            "records": session.scalar(select(func.count(Record.id))) or 0,
            "links": session.scalar(select(func.count(ReviewRecord.id))) or 0,
            "decisions": session.scalar(select(func.count(ScreeningDecision.id))) or 0,
            "studies": session.scalar(select(func.count(Study.id))) or 0,
        }
    engine.dispose()
    return out


def test_new_import_update_prescreens_with_a_trained_model(
    env: dict[str, str], material: Material, db_url: str, tmp_path: Path
) -> None:
    created = new_review(env, material)
    assert created.returncode == 0, created.stderr
    protocol = tmp_path / "reviews" / SLUG / "protocol.toml"
    assert protocol.is_file()
    assert "finds 100 PubMed records, 70 of them before 2024-01-01" in created.stdout
    snap = str(material.snapshot)

    dry = cli("import", "includes", str(material.includes_ris), "-r", SLUG, "--snapshot", snap,
              "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "7 included studies read; 6 resolved to PubMed records, 1 not found" in dry.stdout
    assert "dry run: nothing was written" in dry.stdout
    assert counts(db_url)["studies"] == 0

    includes = cli("import", "includes", str(material.includes_ris), "-r", SLUG, "--snapshot",
                   snap, env=env)
    assert includes.returncode == 0, includes.stderr
    rayyan = cli("import", "decisions", str(material.rayyan_ris), "-r", SLUG, "--snapshot", snap,
                 env=env)
    assert rayyan.returncode == 0, rayyan.stderr
    assert "22 decisions (2 include, 20 exclude" in rayyan.stdout
    assert "5 by title+year+first author" in rayyan.stdout
    asreview = cli("import", "decisions", str(material.asreview_csv), "-r", SLUG, "--snapshot",
                   snap, env=env)
    assert asreview.returncode == 0, asreview.stderr
    assert "16 decisions (0 include, 16 exclude" in asreview.stdout
    assert "4 rows without a decision skipped" in asreview.stdout

    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        review = session.scalars(select(Review).where(Review.slug == SLUG)).one()
        studies = list(session.scalars(select(Study).where(Study.review_id == review.id)))
        assert len(studies) == 7 and sum(s.record_id is not None for s in studies) == 6
        states = dict(session.execute(
            select(ReviewRecord.state, func.count()).where(ReviewRecord.review_id == review.id)
            .group_by(ReviewRecord.state)).all())
        assert states == {"linked": 6, "excluded": 36, "queued": 2}
        sources = set(session.scalars(select(ScreeningDecision.source)))
        assert sources == {"import"}  # no imported decision poses as a person's
    engine.dispose()

    update = cli("update", "-r", SLUG, "--snapshot", snap, "--until", "2024-01-31", "--json",
                 env=env)
    assert update.returncode == 0, update.stderr
    result = json.loads(update.stdout)
    assert result["new"] == 30
    prescreen = result["steps"]["prescreen"]
    assert prescreen["mode"] == "model", prescreen
    assert prescreen["model_version"]
    assert prescreen["records"] == 30


def test_new_refuses_a_query_pubmed_cannot_read(
    env: dict[str, str], material: Material, tmp_path: Path
) -> None:
    bad = cli("new", "bad_query", "--title", "T", "--query", 'dry eye[Nonsense]',
              "--start-date", "2024-01-01", "--outcome", "dry eye", "--snapshot",
              str(material.snapshot), env=env)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: the query was not accepted: PubMed did not search the "
                                 "query as written, it reported FieldNotFound 'Nonsense'")
    assert not (tmp_path / "reviews" / "bad_query").exists()


def test_new_refuses_an_existing_review(env: dict[str, str], material: Material) -> None:
    assert new_review(env, material).returncode == 0
    again = new_review(env, material)
    assert again.returncode == 2
    assert "exists already" in again.stderr and again.stderr.count("\n") == 1
