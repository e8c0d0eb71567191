"""Typed settings for every entry point (CLI, web app, Celery app, Alembic env).

Values come from environment variables (and an optional ``.env``); with no environment at all the
embedded defaults apply: a SQLite file under ``./var/`` and work done in-process. Only entry points
call :func:`get_settings`; services take plain values as arguments.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# the bundled reviews: reviews/ in a checkout, the installed ``reviews`` package otherwise
BUNDLED_REVIEWS = Path(__file__).resolve().parent.parent / "reviews"
NCBI_EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"


MIN_SECRET_LENGTH = 32
SECRET_FILE = "secret_key"
# Secrets that were ever shipped with the project (defaults, .env.example) or that people type
# when told to "set a secret": a cookie signed with any of them is forgeable by anyone.
PLACEHOLDER_SECRETS = frozenset(
    {
        "dev-insecure-change-me",
        "change-me-to-a-long-random-string",
        "change-me",
        "changeme",
        "secret",
        "secret-key",
        "secret_key",
        "your-secret-key",
        "insecure",
    }
)


class Environment(StrEnum):
    """Where the service runs; ``production`` turns nothing off, it is recorded for operators."""

    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


def check_secret(value: str) -> str:
    """``value`` if it can sign sessions; ValueError for a placeholder or a short secret."""
    lowered = value.strip().lower()
    if lowered in PLACEHOLDER_SECRETS or "change-me" in lowered or "changeme" in lowered:
        raise ValueError(
            "a known placeholder, anyone could sign sessions with it: set a random value "
            "(python3 -c 'import secrets; print(secrets.token_urlsafe(48))') or unset it "
            "to have one generated in DATA_DIR"
        )
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"too short: use at least {MIN_SECRET_LENGTH} random characters")
    return value


def load_or_create_secret(data_dir: Path) -> str:
    """The secret kept in ``data_dir/secret_key`` (mode 0600), created at random on first use.

    The file is written under a temporary name and linked into place, so concurrent first runs
    (several uvicorn workers) all end up with the one secret that won. Raises ValueError when the
    file exists but holds an unusable secret or can be read by others.
    """
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path} can be read by other users: chmod 600 it")
    try:
        return check_secret(path.read_text(encoding="ascii").strip())
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


class Settings(BaseSettings):
    """All configuration of the service; env var names are the field names upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'var' / 'living-review.sqlite3'}",
        description="SQLAlchemy URL (default ./var/living-review.sqlite3 in the working "
        "directory); postgresql+psycopg://user@host/db for PostgreSQL.",
    )
    redis_url: str | None = Field(default=None, description="Celery broker and shared limiter.")
    reviews_dir: Path = Field(default=BUNDLED_REVIEWS)
    data_dir: Path = Field(default_factory=lambda: Path.cwd() / "var")

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
    entrez_esearch_cap: int = Field(default=9_999, ge=1)
    redis_key_prefix: str = Field(
        default="living-review:",
        description="Prefix of every Redis key (locks, rate limit, debounce, beat, Celery queues), "
        "so several deployments or test runs can share one Redis database.",
    )

    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs session cookies; unset: a random one kept in DATA_DIR/secret_key.",
    )
    environment: Environment = Environment.LOCAL
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Proxies (comma-separated addresses) whose X-Forwarded-For is believed.",
    )
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
        default=10800, ge=10,
        description="Seconds after which the dashboard calls an unfinished run stopped.",
    )
    update_lock_lease: float = Field(
        default=90.0, ge=1,
        description="Seconds a review's update lock lives unless its holder's heartbeat renews "
        "it (every third of it): a holder that died frees the review within this time.",
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
    screening_lease_seconds: float | None = Field(
        default=600.0,
        gt=0,
        description="Single screening: how long a record served to a reviewer is skipped by the "
        "others' next record (ends earlier on a decision or their next request); unset (empty) "
        "turns leases off.",
    )
    web_db_busy_timeout: float = Field(
        default=3.0,
        gt=0,
        description="Seconds a web request waits for a busy database (SQLite write lock, "
        "PostgreSQL row lock) before its transaction is retried.",
    )
    web_db_attempts: int = Field(
        default=3,
        ge=1,
        description="Tries of a web request's transaction on a busy database before the answer "
        "is 503 with Retry-After.",
    )
    update_schedule: str | None = Field(
        default=None,
        description="Overrides the protocols' schedules: 'cron' or 'slug=cron;slug2=SECONDS'.",
    )

    @field_validator("queue_refit_seconds", "screening_lease_seconds", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        """An empty value (``QUEUE_REFIT_SECONDS=``) turns the feature off."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("DATABASE_URL must be sqlite:///… or postgresql+psycopg://…")
        return value

    @field_validator("secret_key")
    @classmethod
    def _usable_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() == "":
            return None
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @property
    def rate_limit(self) -> float:
        """Requests per second allowed towards NCBI (0 means no limit)."""
        if self.entrez_rate_limit is not None:
            return self.entrez_rate_limit
        return 10.0 if self.entrez_api_key else 3.0

    def session_secret(self) -> str:
        """SECRET_KEY, or the generated one kept in DATA_DIR (see :func:`load_or_create_secret`)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return load_or_create_secret(Path(self.data_dir))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
