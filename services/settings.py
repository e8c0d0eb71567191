"""Typed settings for every entry point (CLI, web app, Celery app, Alembic env).

Values come from environment variables (and an optional ``.env``); with no environment at all the
embedded defaults apply: a SQLite file under ``./var/`` and work done in-process. Only entry points
call :func:`get_settings`; services take plain values as arguments.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "dev-insecure-change-me"
NCBI_EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"


class Settings(BaseSettings):
    """All configuration of the service; env var names are the field names upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'living-review.sqlite3'}",
        description="SQLAlchemy URL; postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    redis_url: str | None = Field(default=None, description="Celery broker and shared limiter.")
    reviews_dir: Path = Field(default=PROJECT_ROOT / "reviews")
    data_dir: Path = Field(default=PROJECT_ROOT / "var")

    entrez_base_url: str = Field(default=NCBI_EUTILS, description="E-utilities base URL.")
    entrez_email: str = Field(default="living-review@example.org")
    entrez_tool: str = Field(default="living-review")
    entrez_api_key: str | None = None
    entrez_batch_size: int = Field(default=500, ge=1, le=10_000)
    entrez_timeout: float = Field(default=60.0, gt=0)
    entrez_max_tries: int = Field(default=5, ge=1)
    entrez_backoff_base: float = Field(default=1.0, ge=0)
    entrez_backoff_max: float = Field(default=60.0, ge=0)
    entrez_rate_limit: float | None = Field(
        default=None,
        description="Requests per second; default 3 without an API key, 10 with one; 0 = off.",
    )
    entrez_overlap_days: int = Field(default=3, ge=0)
    entrez_esearch_cap: int = Field(default=9_999, ge=1)

    secret_key: str = DEFAULT_SECRET
    environment: str = Field(default="local", description="local, test or production.")
    base_url: str = "http://127.0.0.1:8000"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = 30.0
    mail_from: str = "living-review <digest@living-review.local>"

    celery_visibility_timeout: int = Field(
        default=7200, ge=10, description="Seconds before Redis redelivers an unacked task."
    )
    update_lock_ttl: int = Field(
        default=10800, ge=10, description="Seconds a review's update lock lives without refresh."
    )
    recompute_debounce_seconds: float = Field(
        default=60.0, ge=0, description="Quiet time after the last confirmation before recompute."
    )
    queue_refit_seconds: float | None = Field(
        default=2.0,
        ge=0,
        description="Quiet time after a decision before the queue is refitted in the background "
        "(active learning); unset (empty) turns the refit off.",
    )
    update_schedule: str | None = Field(
        default=None,
        description="Overrides the protocols' schedules: 'cron' or 'slug=cron;slug2=SECONDS'.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("DATABASE_URL must be sqlite:///… or postgresql+psycopg://…")
        return value

    @property
    def rate_limit(self) -> float:
        """Requests per second allowed towards NCBI (0 means no limit)."""
        if self.entrez_rate_limit is not None:
            return self.entrez_rate_limit
        return 10.0 if self.entrez_api_key else 3.0

    def check_secrets(self) -> None:
        """Refuse the default secret outside local use."""
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET:
            raise ValueError("SECRET_KEY must be set to a random value in production")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
