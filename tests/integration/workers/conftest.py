"""Fixtures of the workers' tests: a throw-away PostgreSQL database, a Redis DB number of our
own, an aiosmtpd server on a free port, Celery worker subprocesses (helpers in wk_parts.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from availability import unavailable
from sqlalchemy import select, text
from wk_parts import DEMO, PG_ADMIN, ROOT, Inbox, SmtpServer, WorkerProcess, free_port

from db.migrate import upgrade
from db.models import Review
from db.session import make_engine, make_sessionmaker
from services.pubmed.replay import ReplayServer


@pytest.fixture(scope="session")
def wk_pg_url() -> Iterator[str]:
    name = f"lr_wk_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def wk_engine(wk_pg_url: str) -> Iterator[Any]:
    engine = make_engine(wk_pg_url)
    with engine.begin() as conn:
        tables = (
            conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname='public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    yield engine
    engine.dispose()


@pytest.fixture
def wk_sessions(wk_engine: Any) -> Any:
    return make_sessionmaker(wk_engine)


@pytest.fixture
def wk_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test Redis; tests keep to their ``redis_prefix`` (no flushdb)."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), Inbox())
    yield server
    server.stop()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for item in started:
        item.stop()


@pytest.fixture
def ldh(wk_sessions: Any, wk_pg_url: str) -> int:
    """The LDH review initialised by the real `living-review init` (migrations, baseline)."""
    env = dict(os.environ, DATABASE_URL=wk_pg_url)
    subprocess.run([sys.executable, "-m", "services.cli", "init"], cwd=ROOT,
                   env=env, check=True, capture_output=True, timeout=120)
    with wk_sessions() as session:
        return int(session.scalars(select(Review.id)).one())


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(DEMO) as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[tuple[int, Path, list[subprocess.Popen[bytes]]]]:
    """A redis-server of our own (see wk_parts.start_redis), so it can be stopped and restarted
    without touching the shared one; the port is free, the folder is ours."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server", "not on PATH")
    folder = Path(tempfile.mkdtemp(prefix="lr-redis-"))
    procs: list[subprocess.Popen[bytes]] = []
    yield free_port(), folder, procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    shutil.rmtree(folder, ignore_errors=True)
