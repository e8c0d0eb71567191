"""``INSERT … ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL alike.

Uniqueness comes from constraints: two processes writing the same row (a redelivered task, two
updates racing) both run the insert, and the constraint keeps exactly one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session


def insert_missing(
    session: Session, model: type[DeclarativeBase], rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
) -> int:
    """Insert the ``rows`` not already present by the unique columns ``conflict``; how many new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = make(model).values(list(rows)).on_conflict_do_nothing(index_elements=list(conflict))
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
