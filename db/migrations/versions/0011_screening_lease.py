"""screening leases: a record served to a reviewer in single screening is skipped by the others

One row per leased review record (its primary key): the reviewer holding it, the stage and when
the lease ends. A claim is one ``INSERT … ON CONFLICT DO UPDATE … WHERE expired or mine``, so
several web processes agree on who holds a record.

Revision ID: 0011_screening_lease
Revises: 0010_harvest_staging
Create Date: 2026-12-02 13:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_screening_lease"
down_revision: str | None = "0010_harvest_staging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "screening_leases",
        sa.Column("review_record_id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("leased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_record_id"],
            ["review_records.id"],
            name=op.f("fk_screening_leases_review_record_id_review_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["reviews.id"],
            name=op.f("fk_screening_leases_review_id_reviews"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_screening_leases_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("review_record_id", name=op.f("pk_screening_leases")),
    )
    op.create_index(
        "ix_screening_leases_holder", "screening_leases", ["review_id", "user_id", "stage"]
    )


def downgrade() -> None:
    op.drop_index("ix_screening_leases_holder", table_name="screening_leases")
    op.drop_table("screening_leases")
