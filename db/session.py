"""Engines and sessions. Callers own the unit of work (``with session.begin():``).

SQLite runs with foreign keys on and WAL (readers never wait for the writer). How long a
statement waits for another transaction's lock is ``lock_wait`` seconds: SQLite's busy timeout
(30 s by default: the CLI and the workers wait out a long write) and, when given, PostgreSQL's
``lock_timeout`` (no limit by default). The web app passes a few seconds and retries
(:func:`is_busy` tells such an error from the others).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_SECONDS = 30.0
# PostgreSQL: serialization failure, deadlock detected, lock not available (lock_timeout)
BUSY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def make_engine(url: str, *, lock_wait: float | None = None, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite, create the file's folder, enforce foreign keys, use WAL.

    ``lock_wait``: seconds a statement waits for another transaction's lock (see the module
    docstring); None keeps the defaults.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        seconds = SQLITE_BUSY_SECONDS if lock_wait is None else lock_wait
        kwargs.setdefault("connect_args", {"timeout": seconds})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, round(seconds * 1000)))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if lock_wait is not None:
        kwargs.setdefault("connect_args", {"options": f"-c lock_timeout={round(lock_wait * 1000)}"})
    return create_engine(url, **kwargs)


def _sqlite_pragmas(busy_ms: int, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.close()


def is_busy(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) says the database was busy with another transaction:
    SQLite's ``database is locked``/``busy``, PostgreSQL's serialization failure, deadlock or
    lock timeout. Such a transaction, once rolled back, wrote nothing: it may be tried again."""
    seen: BaseException | None = exc
    for _ in range(3):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError):
            orig = seen.orig
            if getattr(orig, "sqlstate", None) in BUSY_SQLSTATES:
                return True
            if str(getattr(orig, "sqlite_errorname", "")).startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                return True
            text = str(orig).lower()
            if "database is locked" in text or "database table is locked" in text:
                return True
        seen = seen.__cause__
    return False


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
