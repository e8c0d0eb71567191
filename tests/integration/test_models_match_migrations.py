"""The ORM models and the Alembic migrations describe the same schema (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db.models import Base
from db.session import make_engine

pytestmark = pytest.mark.integration


EXPRESSION_INDEXES = {"ix_review_records_pending"}  # (review_id, state, stage, priority DESC, id)


def _expression_index(diff: Any) -> bool:
    """Alembic cannot compare an index on an expression (``priority DESC``): it reports it as
    removed and added again, which says nothing about a real difference."""
    return (isinstance(diff, tuple) and diff[0] in ("add_index", "remove_index")
            and diff[1].name in EXPRESSION_INDEXES)


def test_models_and_migrations_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, Base.metadata) if not _expression_index(d)]
    engine.dispose()
    assert diffs == []
