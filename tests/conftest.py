"""Shared fixtures: fresh migrated databases (SQLite and PostgreSQL), Redis, the demo snapshot.

Each test that asks for ``db_url`` gets its own database, cloned from a template migrated once
per session: a copied SQLite file, or ``CREATE DATABASE … TEMPLATE`` on PostgreSQL. Data are
really committed, so subprocesses, threads and workers see them.

PostgreSQL and Redis are expected at 127.0.0.1 (override with TEST_PG_ADMIN_URL / TEST_REDIS_URL).
When one is down the tests that need it are skipped locally, but fail under CI
(``LR_REQUIRE_SERVICES=1``, set by .ci/run), so CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from availability import unavailable
from sqlalchemy.orm import Session, sessionmaker

from db.migrate import upgrade
from db.session import make_engine, make_sessionmaker

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
RUN_PREFIX = f"lr-test-{uuid.uuid4().hex[:8]}:"  # one per test run: never flushdb a shared Redis



def _pg_connect(dbname: str = "postgres"):  # type: ignore[no-untyped-def]
    import psycopg

    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def _sa_url(dbname: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head, used as the template of per-test databases."""
    import psycopg

    try:
        admin = _pg_connect()
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    name = f"lr_tpl_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_sa_url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"lr_t_{uuid.uuid4().hex[:12]}"
    with _pg_connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _sa_url(name)
    with _pg_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite file for one test."""
    path = tmp_path / "test.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The test runs twice: on a fresh SQLite file and on a fresh PostgreSQL database."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def session_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def redis_url() -> str:
    """The test Redis (TEST_REDIS_URL); shared, so tests keep to their ``redis_prefix``."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix of this test alone (REDIS_KEY_PREFIX); its keys are deleted after."""
    import redis

    prefix = f"{RUN_PREFIX}{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def demo_snapshot() -> Path:
    return ROOT / "reviews" / "ldh_resorption" / "demo"


@pytest.fixture(scope="session")
def reviews_dir() -> Path:
    return ROOT / "reviews"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Debian Chromium the browser tests drive (no Playwright browser download)."""
    path = "/usr/bin/chromium"
    if shutil.which(path) is None:
        unavailable("Chromium", f"{path} is not installed (apt-get install chromium)")
    return path
