"""The LDH protocol's subgroup hypotheses on the real database path (SQLite and PostgreSQL).

After ``init`` the seed's country claim is testable (Table 1 gives countries) and the herniation
and follow-up claims are not (Table 1 reports neither): ``estimates --hypotheses --json`` says so.
Two confirmed extractions per herniation group then make the ruptured-vs-contained claim testable;
the recompute that confirmations and updates share puts the verdict in the snapshot and the
digest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Extraction as ExtractionRow
from db.models import OutboxEmail, Review, Study
from db.session import make_engine, make_sessionmaker
from services.digest.estimates import recompute_and_queue
from services.meta_analysis.regression import meta_regression
from services.meta_analysis.store import load_studies

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def _cli(args: list[str], db: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db, "DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_hypotheses_after_init_and_after_confirmations(db_url: str, tmp_path: Path) -> None:
    assert _cli(["init"], db_url, tmp_path).returncode == 0
    out = _cli(["estimates", "--hypotheses", "--json"], db_url, tmp_path)
    assert out.returncode == 0, out.stderr
    found = {h["name"]: h for h in json.loads(out.stdout)["hypotheses"]}
    assert len(found) == 3
    ruptured = found["Ruptured herniations resorb more often than contained ones"]
    assert ruptured["status"] == "untestable" and "herniation_type" in ruptured["reason"]
    countries = found["Resorption differs between countries"]
    assert countries["status"] in ("supported", "not supported")
    factory = make_sessionmaker(make_engine(db_url))
    with factory() as session:
        review = session.scalars(select(Review)).one()
        studies = load_studies(session, review.id, events_field="n_resorbed", total_field="n_total")
    tested = [s for s in studies if s.country and sum(t.country == s.country for t in studies) > 1]
    model = meta_regression(
        [s for s in tested if s.events is not None and s.events <= (s.total or 0)],
        "country",
        kind="categorical",
    )
    assert countries["k"] == model.k and countries["p"] == pytest.approx(model.qm_p, rel=1e-9)

    with factory.begin() as session:
        review = session.scalars(select(Review)).one()
        for label, kind, x, n in [
            ("New A 2024", "Extrusion", 46, 50),
            ("New B 2024", "Sequestration", 37, 40),
            ("New C 2024", "Protrusion", 11, 40),
            ("New D 2024", "Bulging", 9, 36),
        ]:
            study = Study(
                review_id=review.id, label=label, year=2024, source="screening", status="included"
            )
            session.add(study)
            session.flush()
            session.add(
                ExtractionRow(
                    study_id=study.id,
                    kind="outcome",
                    status="confirmed",
                    source="reviewer",
                    data={"n_resorbed": x, "n_total": n, "herniation_type": kind},
                )
            )
        snapshot, rows = recompute_and_queue(session, review, trigger="confirmation")
        verdicts = {h["name"]: h for h in snapshot.result["hypotheses"]}
        assert verdicts[ruptured["name"]]["status"] == "supported"
        assert verdicts[ruptured["name"]]["groups"]["ruptured"]["k"] == 2
        assert any(
            r.startswith("hypothesis untestable → Ruptured") for r in snapshot.changes["reasons"]
        )
        assert not any(
            f["code"] == "hypothesis_untestable" and "Ruptured" in f["message"]
            for f in snapshot.audit
        )
        assert rows, "the changed verdict must produce a digest"
    with factory() as session:
        body = session.scalars(select(OutboxEmail.body_text)).first()
        assert body is not None and "Ruptured herniations resorb more often" in body
        assert "QM = " in body
        # every digest lists all the hypotheses with their test, changed or not
        listed = body.split("The review's hypotheses, tested on this estimate:")[1]
        assert "Resorption differs between countries: " in listed
        assert "Resorption happens mainly within the first 6 months: not testable yet" in listed
