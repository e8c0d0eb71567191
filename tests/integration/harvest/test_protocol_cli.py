"""The protocol file as a user edits it: refused with one line naming what to fix, or taken up by
the next update without `init` (SQLite and PostgreSQL, the real command line)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from test_harvest_cli import ROOT, _env, cli

from db.models import AuditLog, Review, SearchRun
from db.session import make_engine, make_sessionmaker
from services.protocol import load_protocol

pytestmark = pytest.mark.integration

BAD_EDITS = [
    ('cron = "0 3 * * 1"', 'cron = "0 25 * * 1"', "schedule.cron: cron '0 25 * * 1': hour field: '25' is not in 0-23"),
    ('timezone = "America/New_York"', 'timezone = "Mars/Olympus"', "unknown time zone 'Mars/Olympus'"),
    ('name = "country"', 'name = "design"', "two extraction fields are named 'design'; rename one"),
    ('choices_from = "designs"', 'choices_from = "study_designs"',
     "choices_from = 'study_designs' names no vocabulary of [extraction]"),
    ('events_field = "n_resorbed"', 'events_field = "n_resorbd"',
     "outcome.events_field = 'n_resorbd' names no [[extraction.fields]] entry"),
    ('events_field = "n_resorbed"\n', "", "field outcome.events_field: Field required"),
    ('total_field = "n_total"\n', "", "field outcome.total_field: Field required"),
]


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    folder = tmp_path / "reviews"
    shutil.copytree(ROOT / "reviews" / "ldh_resorption", folder / "ldh_resorption")
    return folder


@pytest.fixture
def env(db_url: str, tmp_path: Path, reviews: Path) -> dict[str, str]:
    return {**_env(db_url, tmp_path), "REVIEWS_DIR": str(reviews)}


# A bad protocol is refused before any database work, so each edit runs on SQLite and one of them
# on PostgreSQL too (that nothing is half-written there either): 8 cases, not 14 subprocess-heavy ones.
REFUSALS = [pytest.param("sqlite_url", *edit, id=f"sqlite-{i}") for i, edit in enumerate(BAD_EDITS)]
REFUSALS.append(pytest.param("pg_url", *BAD_EDITS[0], id="postgresql-0"))


def edit(reviews: Path, old: str, new: str) -> Path:
    path = reviews / "ldh_resorption" / "protocol.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(("database", "old", "new", "message"), REFUSALS)
def test_init_and_update_refuse_a_bad_protocol_with_one_line(
        request: pytest.FixtureRequest, tmp_path: Path, reviews: Path, database: str, old: str,
        new: str, message: str) -> None:
    env = {**_env(request.getfixturevalue(database), tmp_path), "REVIEWS_DIR": str(reviews)}
    assert cli("init", env=env).returncode == 0
    path = edit(reviews, old, new)
    for command in (("init",), ("update", "--snapshot", "demo", "--until", "2024-01-07")):
        result = cli(*command, env=env)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines == [lines[0]] and lines[0].startswith(f"error: {path}: "), result.stderr
        assert message in lines[0]
    runs = cli("runs", "--json", env=env)
    assert json.loads(runs.stdout) == []  # nothing half-written


def test_a_protocol_not_in_utf8_is_refused(env: dict[str, str], reviews: Path) -> None:
    path = reviews / "ldh_resorption" / "protocol.toml"
    path.write_bytes(path.read_bytes() + "# r\u00e9vision\n".encode("latin-1"))
    result = cli("init", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: not UTF-8 text (byte {path.stat().st_size - 8}); save the file as UTF-8"]


def test_an_edited_protocol_takes_effect_at_the_next_update_without_init(
        env: dict[str, str], reviews: Path, db_url: str) -> None:
    assert cli("init", env=env).returncode == 0
    first = cli("update", "--snapshot", "demo", "--until", "2024-01-07", "--json", env=env)
    assert first.returncode == 0, first.stderr
    edit(reviews, "overlap_days = 3", "overlap_days = 6")
    edit(reviews, 'recipients = ["followers@example.org"]',
         'recipients = ["followers@example.org", "editor@example.org"]')
    edited = load_protocol(reviews, "ldh_resorption")
    second = cli("update", "--snapshot", "demo", "--until", "2024-01-14", "--json", env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["window_start"] == "2024-01-01"  # 2024-01-07 minus 6 days
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        review = session.scalars(select(Review)).one()
        assert review.protocol["search"]["overlap_days"] == 6
        assert review.protocol["digest"]["recipients"][1] == "editor@example.org"
        assert review.protocol_hash == edited.digest_hash()
        changed = session.scalars(select(AuditLog).where(
            AuditLog.action == "review.protocol_changed")).all()
        assert [c.detail["to"] for c in changed] == [edited.digest_hash()]
        hashes = [r.protocol_hash for r in session.scalars(select(SearchRun).order_by(SearchRun.id))]
        assert hashes[1] == edited.digest_hash() != hashes[0]
    engine.dispose()


def test_a_stored_protocol_that_no_longer_validates_gives_one_error_line(
        env: dict[str, str], db_url: str) -> None:
    assert cli("init", env=env).returncode == 0
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as session:
        review = session.scalars(select(Review)).one()
        review.protocol = {**review.protocol, "screening": {"recall_target": 7}}
    engine.dispose()
    result = cli("digest", "--preview", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: review ldh_resorption (database copy): field screening.recall_target: "
        "Input should be less than or equal to 1; run `living-review init`"]
    # the next update refreshes the copy from the file, so it runs again
    update = cli("update", "--snapshot", "demo", "--until", "2024-01-07", env=env)
    assert update.returncode == 0, update.stderr
