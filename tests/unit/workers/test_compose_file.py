"""docker-compose.yml: every service's command exists in the project and its environment is read.

No Docker engine runs here, so the file is checked statically: `living-review` commands and their
options against the real CLI, `celery -A` targets against the real module, env var names against
the Settings fields, and the ordering (migrations before web, worker and beat).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from services.cli import app
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ("migrate", "web", "worker", "beat")
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


def cli_command(args: list[str]) -> Any:
    group: Any = typer.main.get_command(app)
    command = group.commands.get(args[1])
    assert command is not None, f"`living-review {args[1]}` is not a command of the project"
    return command


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_command_exists_with_its_options(name: str) -> None:
    args = SERVICES[name]["command"]
    assert args[0] == "living-review"
    command = cli_command(args)
    known = {opt for param in command.params for opt in param.opts}
    for arg in args[2:]:
        if arg.startswith("--"):
            assert arg in known, f"{name}: `living-review {args[1]}` has no option {arg}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_env_vars_are_settings_fields(name: str) -> None:
    env = SERVICES[name]["environment"]
    unknown = sorted(set(env) - SETTINGS_ENV)
    assert not unknown, f"{name} passes env vars the app does not read: {unknown}"
    assert {"DATABASE_URL", "REDIS_URL", "SMTP_HOST", "SECRET_KEY"} <= set(env)


def test_env_example_and_dockerfile_only_name_settings() -> None:
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    assert names and not sorted(set(names) - SETTINGS_ENV)
    dockerfile = (ROOT / "Dockerfile").read_text()
    env_line = next(line for line in dockerfile.splitlines() if line.startswith("ENV REVIEWS_DIR"))
    assert {kv.split("=")[0] for kv in env_line.split()[1:]} <= SETTINGS_ENV


def test_migrations_run_before_web_worker_beat_and_infra_has_health_checks() -> None:
    assert SERVICES["migrate"]["command"][1] == "init"
    for name in ("web", "worker", "beat"):
        deps = SERVICES[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "mailpit", "web", "worker"):
        assert SERVICES[name]["healthcheck"]["test"], name
    volumes = set(COMPOSE["volumes"])
    assert {"pgdata", "redisdata"} <= volumes
    assert SERVICES["postgres"]["volumes"][0].split(":")[0] in volumes


def test_beat_runs_once_and_smtp_points_at_the_catcher() -> None:
    assert "deploy" not in SERVICES["beat"] or SERVICES["beat"]["deploy"].get("replicas", 1) == 1
    env = SERVICES["worker"]["environment"]
    assert env["SMTP_HOST"] == "mailpit" and env["REDIS_URL"].startswith("redis://redis:")


def test_every_long_running_service_restarts_when_it_exits() -> None:
    """A worker that stops after a broker outage (issue 18) is brought back by compose: every
    service except the one-shot ``migrate`` has a restart policy that restarts it on an exit with
    a failure status (the worker exits 1, not 0, when it stops unasked: workers.celery_app)."""
    one_shot = {dep for service in SERVICES.values()
                for dep, cond in (service.get("depends_on") or {}).items()
                if isinstance(cond, dict)
                and cond.get("condition") == "service_completed_successfully"}
    assert one_shot == {"migrate"} and SERVICES["migrate"]["restart"] == "no"
    for name, service in SERVICES.items():
        if name in one_shot:
            continue
        assert service.get("restart") in ("always", "unless-stopped", "on-failure"), (
            f"{name} has no restart policy")


def test_a_worker_that_stops_unasked_exits_non_zero() -> None:
    """The exit status a supervisor sees: 1 when no signal asked the worker to stop, what the
    worker chose otherwise (celery's ``worker_shutdown`` handler of workers.celery_app)."""
    from types import SimpleNamespace

    from workers import celery_app

    stopped = SimpleNamespace(exitcode=0)
    celery_app._exit_non_zero_unless_asked(sender=stopped)
    assert stopped.exitcode == 1
    celery_app._note_shutdown_asked(sig="SIGTERM")
    try:
        asked = SimpleNamespace(exitcode=0)
        celery_app._exit_non_zero_unless_asked(sender=asked)
        assert asked.exitcode == 0
    finally:
        celery_app._shutdown_asked.clear()
