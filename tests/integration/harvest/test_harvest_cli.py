"""The command line as a user runs it: one clear line and a non-zero exit on bad input."""

from __future__ import annotations

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
