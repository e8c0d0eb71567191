"""The command line as a user runs it: one clear line and a non-zero exit on bad input."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp_path / "var"),
        "ENTREZ_BACKOFF_BASE": "0.01",
        "ENTREZ_BACKOFF_MAX": "0.05",
        "ENTREZ_MAX_TRIES": "3",
        "ENTREZ_API_KEY": "test-key",
    }


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Both databases: for the commands whose outcome depends on stored data."""
    return _env(db_url, tmp_path)


@pytest.fixture
def sqlite_env(sqlite_url: str, tmp_path: Path) -> dict[str, str]:
    """Argument checking does not depend on the database: SQLite only."""
    return _env(sqlite_url, tmp_path)


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        "DATA_DIR": str(tmp_path / "var"),
    }


def test_demo_update_then_status_json(env: dict[str, str]) -> None:
    assert cli("init", env=env).returncode == 0
    first = cli("update", "--snapshot", "demo", "--until", "2024-01-07", "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["new"] == 10
    second = cli("update", "--snapshot", "demo", "--until", "2024-01-14", "--json", env=env)
    assert json.loads(second.stdout)["window_start"] == "2024-01-04"
    status = json.loads(cli("status", "--json", env=env).stdout)[0]
    assert status["review"] == "ldh_resorption" and status["records"] == 19
    assert status["linked_to_baseline"] == 2
    assert status["last_run"]["status"] == "succeeded"
    runs = json.loads(cli("runs", "--json", env=env).stdout)
    assert [r["new"] for r in runs] == [9, 10]
    assert set(json.loads(second.stdout)) == UPDATE_KEYS
    assert set(status) == STATUS_KEYS and set(status["records_by_state"]) == RECORD_STATES
    assert set(status["last_run"]) == RUN_KEYS - {"review"}
    assert all(set(run) == RUN_KEYS for run in runs)
    documented = (ROOT / "README.md").read_text(encoding="utf-8").split("`--json` keys")[1]
    for key in UPDATE_KEYS | STATUS_KEYS | RUN_KEYS | RECORD_STATES:
        assert f"`{key}`" in documented, f"--json key {key} is not documented in README"


UPDATE_KEYS = {"review", "run_id", "status", "window_start", "window_end", "found", "fetched", "new",
               "updated", "linked", "deleted", "requests", "steps", "error", "resumed"}
STATUS_KEYS = {"review", "title", "records", "records_by_state", "linked_to_baseline", "queued",
               "excluded", "included", "studies_included", "studies_retracted", "records_retracted",
               "last_run"}
RECORD_STATES = {"new", "linked", "queued", "auto_excluded", "excluded", "included"}
RUN_KEYS = {"review", "id", "status", "window_start", "window_end", "started_at", "finished_at",
            "found", "fetched", "new", "updated", "linked", "deleted", "requests", "sub_windows",
            "protocol_hash", "quarantined", "skipped", "error"}


def test_persistent_entrez_failure_exits_non_zero_and_records_the_run(env: dict[str, str]) -> None:
    cli("init", env=env)
    result = cli("update", "--snapshot", "demo", "--fault", "500:*", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: update failed: esearch failed 3 times, last: HTTP 500")
    assert "Traceback" not in result.stderr
    runs = json.loads(cli("runs", "--json", env=env).stdout)
    assert runs[0]["status"] == "failed" and "HTTP 500" in runs[0]["error"]
    assert json.loads(cli("status", "--json", env=env).stdout)[0]["records"] == 0


def test_a_database_that_is_not_migrated_is_refused(fresh_env: dict[str, str]) -> None:
    result = cli("status", env=fresh_env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: database schema is at nothing, code expects "
        + _head()
        + ": run `living-review init` (it migrates the database)"
    )


def _head() -> str:
    from db.migrate import head_revision

    return str(head_revision())


BAD_ARGUMENTS = [
    (("update", "--review", "nope"), "error: unknown review 'nope'"),
    (
        ("update", "--snapshot", "/no/such/folder"),
        "error: snapshot folder /no/such/folder does not exist",
    ),
    (
        ("update", "--snapshot", "demo", "--fault", "teapot:1"),
        "error: fault 'teapot:1' not understood",
    ),
    (("update", "--until", "last week"), "error: --until 'last week' is not a date"),
    (("update", "--until", (dt.date.today() + dt.timedelta(days=1)).isoformat()),
     f"error: --until {dt.date.today() + dt.timedelta(days=1)} is after today"),
]


def test_bad_arguments_give_one_line(sqlite_env: dict[str, str]) -> None:
    cli("init", env=sqlite_env)
    for args, message in BAD_ARGUMENTS:
        result = cli(*args, env=sqlite_env)
        assert result.returncode == 1, args
        assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr


def test_a_malformed_protocol_names_file_and_field(
    fresh_env: dict[str, str], tmp_path: Path
) -> None:
    reviews = tmp_path / "reviews"
    shutil.copytree(ROOT / "reviews" / "ldh_resorption", reviews / "ldh_resorption")
    path = reviews / "ldh_resorption" / "protocol.toml"
    path.write_text(path.read_text().replace("recall_target = 0.95", 'recall_target = "high"'))
    result = cli("init", env={**fresh_env, "REVIEWS_DIR": str(reviews)})
    assert result.returncode == 1
    assert "protocol.toml: field screening.recall_target" in result.stderr
    assert not (tmp_path / "empty.sqlite3").exists()  # refused before touching the database


def test_the_demo_script_runs_twice(tmp_path: Path) -> None:
    """`./scripts/demo` is the README's main job: a second run must succeed and change nothing."""
    env = {**os.environ, "LR_VENV": sys.prefix, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
           "DATA_DIR": str(tmp_path / "var")}
    first = subprocess.run(["bash", str(ROOT / "scripts" / "demo")], env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    # the backfill of the baseline period gives the first update a trained model
    assert "36 inferred excludes" in first.stdout and "cold start" not in first.stdout
    second = subprocess.run(["bash", str(ROOT / "scripts" / "demo")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "already up to date: run 3 searched up to 2024-01-14" in second.stdout
    assert "44 found, 0 new, 0 linked to included studies, 0 inferred excludes" in second.stdout
    status = [line for line in second.stdout.splitlines() if line.startswith("ldh_resorption: ")]
    assert status[-1] == [line for line in first.stdout.splitlines()
                          if line.startswith("ldh_resorption: ")][-1]


def test_a_step_failing_after_harvest_gives_one_error_line_and_a_failed_run(
        sqlite_env: dict[str, str], sqlite_url: str) -> None:
    from sqlalchemy import create_engine, text

    assert cli("init", env=sqlite_env).returncode == 0
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:  # the recompute step will find no table to write
        connection.execute(text("DROP TABLE outbox_emails"))
        connection.execute(text("DROP TABLE estimate_snapshots"))
    engine.dispose()
    result = cli("update", "--snapshot", "demo", "--until", "2024-01-07", env=sqlite_env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: update failed (OperationalError)")
    assert "Traceback" not in result.stderr
    runs = json.loads(cli("runs", "--json", env=sqlite_env).stdout)
    assert [(r["status"], r["new"]) for r in runs] == [("failed", 10)]
    assert "no such table: estimate_snapshots" in runs[0]["error"]
