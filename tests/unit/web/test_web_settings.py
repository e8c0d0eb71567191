"""Settings: ``environment`` is one of three names; SECRET_KEY placeholders and short values are
refused whatever the environment; with none set, one random secret is generated and kept in
DATA_DIR with mode 0600."""

from __future__ import annotations

import stat
import threading

import pytest
from pydantic import ValidationError

from services.settings import (
    PLACEHOLDER_SECRETS,
    SECRET_FILE,
    Environment,
    Settings,
    load_or_create_secret,
)

GOOD = "k7Qe2-Vn9sLw0xPz4RtY8uBc6DfGh1Jm"


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch):
    for name in ("SECRET_KEY", "ENVIRONMENT", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", ["staging", "prod", "Production ", "dev", ""])
def test_unknown_environments_are_refused(name, monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", name)
    with pytest.raises(ValidationError, match="environment"):
        Settings(_env_file=None)


def test_known_environments(monkeypatch):
    for name in ("local", "test", "production"):
        monkeypatch.setenv("ENVIRONMENT", name)
        assert Settings(_env_file=None).environment is Environment(name)


@pytest.mark.parametrize("environment", ["local", "test", "production"])
@pytest.mark.parametrize(
    "secret",
    [*sorted(PLACEHOLDER_SECRETS), "CHANGE-ME-please-to-something-long", "a", "x" * 31],
)
def test_placeholder_and_short_secrets_are_refused_everywhere(secret, environment):
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(_env_file=None, secret_key=secret, environment=environment)


def test_a_set_secret_is_used_and_not_shown(tmp_path):
    settings = Settings(_env_file=None, secret_key=GOOD, data_dir=tmp_path)
    assert settings.session_secret() == GOOD
    assert GOOD not in repr(settings)
    assert not (tmp_path / SECRET_FILE).exists()


def test_without_a_secret_one_is_generated_once_with_mode_0600(tmp_path):
    data_dir = tmp_path / "fresh" / "data"
    first = Settings(_env_file=None, data_dir=data_dir).session_secret()
    second = Settings(_env_file=None, data_dir=data_dir).session_secret()
    path = data_dir / SECRET_FILE
    assert first == second and len(first) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = Settings(_env_file=None, data_dir=tmp_path / "elsewhere").session_secret()
    assert other != first


def test_concurrent_first_runs_agree_on_one_secret(tmp_path):
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_or_create_secret(tmp_path)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]


def test_a_secret_file_others_can_read_is_refused(tmp_path):
    load_or_create_secret(tmp_path)
    (tmp_path / SECRET_FILE).chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_or_create_secret(tmp_path)


def test_a_placeholder_in_the_secret_file_is_refused(tmp_path):
    path = tmp_path / SECRET_FILE
    path.write_text("dev-insecure-change-me\n")
    path.chmod(0o600)
    with pytest.raises(ValueError, match="placeholder"):
        load_or_create_secret(tmp_path)


def test_compose_requires_a_secret_and_env_example_ships_none():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    compose = (root / "docker-compose.yml").read_text()
    assert "SECRET_KEY: ${SECRET_KEY:?" in compose
    lines = (root / ".env.example").read_text().splitlines()
    shipped = [line.split("=", 1)[1] for line in lines if line.startswith("SECRET_KEY=")]
    assert shipped == [""]  # empty: compose stops and asks for one
