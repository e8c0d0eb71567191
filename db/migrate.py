"""Run and check Alembic migrations from code (``living-review init``, tests).

Errors: :class:`NotMigratedError` when the database's schema is not at the head revision.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class NotMigratedError(Exception):
    """The database schema is missing or older than this code."""


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to re-run."""
    command.upgrade(alembic_config(engine), revision)


def head_revision() -> str | None:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_migrated(engine: Engine) -> None:
    """Raise NotMigratedError unless the schema is at head."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise NotMigratedError(
            f"database schema is at {current or 'nothing'}, code expects {head}: "
            "run `living-review init` (it migrates the database)"
        )
