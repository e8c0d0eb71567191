"""``living-review backfill`` on the LDH demo: the first update trains a model (no cold start)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.models import ReviewRecord, ScreeningDecision
from db.session import make_engine, make_sessionmaker
from tests.integration.intake.test_second_review import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": db_url, "DATA_DIR": str(tmp_path / "var"),
            "ENTREZ_API_KEY": "test-key"}


def test_backfill_gives_the_first_update_a_trained_model(env: dict[str, str], db_url: str) -> None:
    assert cli("init", env=env).returncode == 0
    done = cli("backfill", "--snapshot", "demo", "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["window_end"] == "2023-09-30"
    assert (result["found"], result["linked"], result["inferred_excludes"]) == (44, 8, 36)

    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        sources = dict(session.execute(
            select(ScreeningDecision.source, func.count()).group_by(ScreeningDecision.source)).all())
        assert sources == {"inferred": 36}  # stored as inferred, never as a person's decision
        states = dict(session.execute(
            select(ReviewRecord.state, func.count()).group_by(ReviewRecord.state)).all())
        assert states == {"inferred_excluded": 36, "linked": 8}
    engine.dispose()

    again = json.loads(cli("backfill", "--snapshot", "demo", "--json", env=env).stdout)
    assert (again["new"], again["inferred_excludes"]) == (0, 0)  # re-runnable, adds nothing

    update = cli("update", "--snapshot", "demo", "--until", "2024-01-07", "--json", env=env)
    assert update.returncode == 0, update.stderr
    payload = json.loads(update.stdout)
    assert payload["window_start"] == "2023-10-01"  # the backfill did not move the update window
    prescreen = payload["steps"]["prescreen"]
    assert prescreen["mode"] == "model", prescreen
    assert not prescreen["note"].startswith("cold start")


def test_without_backfill_the_first_update_is_a_cold_start(env: dict[str, str]) -> None:
    assert cli("init", env=env).returncode == 0
    update = cli("update", "--snapshot", "demo", "--until", "2024-01-07", "--json", env=env)
    assert json.loads(update.stdout)["steps"]["prescreen"]["mode"] == "cold_start"
