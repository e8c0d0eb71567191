"""harvest staging: what a run fetched, staged batch by batch before it is applied

``harvest_staging`` holds a run's parsed records (and DeleteCitation PMIDs, unreadable and
skipped items) keyed by run, kind and PMID (or hash), so a harvest streams its window in short
transactions and applies it to ``records`` in chunks; nothing reaches ``records`` before the
whole window is fetched. How far a run's chunks are applied is kept on the run (its last key
per kind), so applying never rewrites a staged row. The rows of a run are deleted once it is
harvested.

Revision ID: 0010_harvest_staging
Revises: 0009_outbox_claim
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_harvest_staging"
down_revision: str | None = "0009_outbox_claim"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "harvest_staging",
        sa.Column("search_run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("pmid", sa.BigInteger(), nullable=True),
        sa.Column("notice", sa.Boolean(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["search_run_id"],
            ["search_runs.id"],
            name=op.f("fk_harvest_staging_search_run_id_search_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("search_run_id", "kind", "key", name=op.f("pk_harvest_staging")),
    )


def downgrade() -> None:
    op.drop_table("harvest_staging")
