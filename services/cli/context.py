"""What CLI commands share: settings, a migrated database, the review's protocol."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_sessionmaker
from services.cli.errors import CliError
from services.protocol import Protocol, ProtocolError, load_protocol
from services.settings import Settings, get_settings


@dataclass
class Context:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    def sessions(self, *, migrated: bool = True) -> sessionmaker[Session]:
        """A sessionmaker; by default refuses a database that is not migrated to head."""
        if migrated:
            from db.migrate import NotMigratedError, require_migrated  # alembic: slow to import

            try:
                require_migrated(self.engine)
            except NotMigratedError as exc:
                raise CliError(str(exc)) from exc
            except OperationalError as exc:
                raise CliError(f"cannot open the database {self._safe_url()}: {exc.orig}") from exc
        return make_sessionmaker(self.engine)

    def protocol(self, slug: str) -> Protocol:
        try:
            return load_protocol(self.settings.reviews_dir, slug)
        except ProtocolError as exc:
            raise CliError(str(exc)) from exc

    def review_dir(self, slug: str) -> Path:
        return self.settings.reviews_dir / slug

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)


def context() -> Context:
    try:
        return Context(get_settings())
    except ValidationError as exc:
        raise CliError(f"bad setting: {setting_errors(exc)}") from exc


def setting_errors(exc: ValidationError) -> str:
    """The refused settings on one line, by env var name, without their values (a refused
    SECRET_KEY must not end up in a terminal's scrollback or a log)."""
    parts = []
    for error in exc.errors():
        name = "_".join(str(p) for p in error.get("loc", ())).upper() or "settings"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{name}: {message}")
    return "; ".join(parts)
