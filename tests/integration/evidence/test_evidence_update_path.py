"""The evidence tables through the real paths: `living-review init` imports the seed's Tables
2–3; an update harvests the demo snapshot; a reviewer includes a harvested record and confirms
its extraction with a predictor finding over the web API; the recompute after the confirmation
changes the predictor table and writes a digest that says so. Both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from db.models import EvidenceSnapshot, Membership, OutboxEmail, Review, User
from db.session import make_engine, make_sessionmaker
from services.accounts import hash_password
from services.settings import Settings
from services.web import create_app

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "a long enough password"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": db_url, "DATA_DIR": str(tmp_path / "var"),
            "ENTREZ_API_KEY": "test-key"}


def evidence_json(env: dict[str, str]) -> dict:
    result = cli("evidence", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def factor(data: dict, name: str) -> dict:
    return next(f for f in data["predictors"]["factors"] if f["factor"] == name)


def test_init_shows_the_seed_tables(env: dict[str, str]) -> None:
    assert cli("init", env=env).returncode == 0
    data = evidence_json(env)
    assert data["predictors"]["studies"] == 17
    assert data["mechanisms"]["studies"] == 22
    modic = factor(data, "Modic change")
    assert sorted(modic["studies"]) == [
        "Kawaguchi et al., 2018", "Lee et al., 2017", "Shan et al., 2014"
    ]
    assert modic["patients"] == 71 + 505 + 85
    assert modic["directions"]["against resorption"] == 1  # Shan 2014, as the seed's text says
    assert factor(data, "Size")["k"] == 7
    # the seed prints "Disruption of PLL"; the protocol's alias maps it to its label
    assert factor(data, "PLL disruption")["studies"] == ["Ahn et al., 2000", "Seo et al., 2016"]
    il6 = next(m for m in data["mechanisms"]["modulators"] if m["modulator"] == "IL-6")
    assert il6["k"] == 4 and il6["species"] == {"human": 2, "animal": 2}
    # every study of Table 2 appears with its factors
    assert len({row["study_id"] for row in data["predictors"]["rows"]}) == 17
    assert data["certainty"]["level"] == "very low"  # proposed from the numbers, none confirmed
    summary = cli("summary", "--json", env=env)
    sof = json.loads(summary.stdout)
    assert sof["predictor_studies"] == 17 and sof["mechanism_studies"] == 22
    assert sof["prevalence"]["k"] == 30
    table = cli("evidence", "--csv", "mechanisms", env=env).stdout.splitlines()
    assert table[0].startswith("study,modulators") and len(table) == 1 + 22
    bad = cli("evidence", "--csv", "everything", env=env)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --csv takes predictors or mechanisms, not 'everything'"


def test_confirmed_predictor_changes_table_and_digest(env: dict[str, str], db_url: str) -> None:
    assert cli("init", env=env).returncode == 0
    update = cli("update", "--snapshot", "demo", "--until", "2024-01-07", "--json", env=env)
    assert update.returncode == 0, update.stderr
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    with factory.begin() as session:
        review = session.scalars(select(Review)).one()
        user = User(email="rev@example.org", name="Rev", password_hash=hash_password(PASSWORD))
        session.add(user)
        session.flush()
        session.add(Membership(user_id=user.id, review_id=review.id, role="admin"))
        slug = review.slug
    settings = Settings(database_url=db_url, secret_key="evidence-test-" + "z" * 20,
                        environment="test", base_url="http://testserver")
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as client:
        token = client.get("/api/session").json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        signed = client.post("/api/session", json={"email": "rev@example.org", "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
        record = client.get(f"/api/reviews/{slug}/queue/next").json()["record"]
        for stage in ("title_abstract", "full_text"):
            r = client.post(f"/api/reviews/{slug}/decisions", json={
                "review_record_id": record["review_record_id"], "stage": stage,
                "decision": "include"})
            assert r.status_code == 201, r.text
        assert r.json()["record_state"] == "included"
        study_id = r.json()["study_id"]
        finding = {"factor": "Modic change", "direction": "against resorption", "measure": "OR",
                   "value": 0.42, "ci_low": 0.2, "ci_high": 0.88, "p": 0.02}
        bad = client.post(f"/api/reviews/{slug}/studies/{study_id}/extractions", json={
            "values": {"n_total": 60, "n_resorbed": 40,
                       "predictor_findings": [{**finding, "direction": "sideways"}]}})
        assert bad.status_code == 422 and "direction" in bad.text
        confirmed = client.post(f"/api/reviews/{slug}/studies/{study_id}/extractions", json={
            "values": {"n_total": 60, "n_resorbed": 40, "predictor_findings": [finding]}})
        assert confirmed.status_code == 201, confirmed.text
    app.state.engine.dispose()
    data = evidence_json(env)
    modic = factor(data, "Modic change")
    assert modic["k"] == 4 and modic["directions"]["against resorption"] == 2
    assert data["predictors"]["studies"] == 18
    with factory() as session:
        digest = session.scalars(select(OutboxEmail).order_by(OutboxEmail.id.desc())).first()
        assert digest is not None
        assert "Modic change: 3 → 4 studies, 2 against resorption" in digest.body_text
        assert "Modic change: 3 → 4 studies" in digest.body_html
        latest = session.scalars(
            select(EvidenceSnapshot).order_by(EvidenceSnapshot.id.desc())).first()
        assert latest is not None and latest.predictors["factors"]["Modic change"]["k"] == 4
    engine.dispose()
