"""harvest: quarantine of unreadable PubMed articles; record columns without arbitrary limits

- ``quarantined_records``: the raw XML of an article that could not be read, with the reason,
  the run that met it and its PMID as written (one row per review and XML content).
- ``records.pub_date``, ``records.doi``, ``records.first_author`` become TEXT: a MedlineDate
  over 40 characters or a DOI over 255 was refused by PostgreSQL and kept by SQLite.
- ``records.vernacular_title`` and ``records.other_abstracts`` keep the title in the original
  language and the abstracts in other languages.
- ``records.pmid`` must be positive (CHECK), on both databases.

Revision ID: 0005_harvest_quarantine
Revises: 0004_evidence
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_harvest_quarantine"
down_revision: str | None = "0004_evidence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.alter_column("pub_date", type_=sa.Text(), existing_type=sa.String(length=40))
        batch_op.alter_column("doi", type_=sa.Text(), existing_type=sa.String(length=255))
        batch_op.alter_column("first_author", type_=sa.Text(), existing_type=sa.String(length=255))
        batch_op.add_column(sa.Column("vernacular_title", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("other_abstracts", JSON, nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.create_check_constraint("pmid_positive", "pmid > 0")
    op.create_table(
        "quarantined_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("search_run_id", sa.Integer(), nullable=True),
        sa.Column("pmid", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("xml_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["reviews.id"],
            name=op.f("fk_quarantined_records_review_id_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["search_run_id"],
            ["search_runs.id"],
            name=op.f("fk_quarantined_records_search_run_id_search_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_records")),
        sa.UniqueConstraint(
            "review_id", "xml_hash", name=op.f("uq_quarantined_records_review_id_xml_hash")
        ),
    )


def downgrade() -> None:
    op.drop_table("quarantined_records")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_constraint("pmid_positive", type_="check")
        batch_op.drop_column("other_abstracts")
        batch_op.drop_column("vernacular_title")
        batch_op.alter_column("first_author", type_=sa.String(length=255), existing_type=sa.Text())
        batch_op.alter_column("doi", type_=sa.String(length=255), existing_type=sa.Text())
        batch_op.alter_column("pub_date", type_=sa.String(length=40), existing_type=sa.Text())
