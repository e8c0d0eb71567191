"""Evidence tables, risk of bias and GRADE: evidence_snapshots, rob_ratings, grade_judgements.

Revision ID: 0004_evidence
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_evidence"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _created() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "evidence_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "review_id",
            sa.Integer(),
            sa.ForeignKey("reviews.id", ondelete="CASCADE", name="fk_evidence_snapshots_review_id_reviews"),
            nullable=False,
        ),
        sa.Column(
            "estimate_snapshot_id",
            sa.Integer(),
            sa.ForeignKey(
                "estimate_snapshots.id",
                ondelete="SET NULL",
                name="fk_evidence_snapshots_estimate_snapshot_id_estimate_snapshots",
            ),
            nullable=True,
        ),
        sa.Column("predictors", JSON, nullable=False),
        sa.Column("mechanisms", JSON, nullable=False),
        sa.Column("grade", JSON, nullable=False),
        sa.Column("changes", JSON, nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_evidence_snapshots"),
    )
    op.create_index("ix_evidence_snapshots_review_id", "evidence_snapshots", ["review_id"])
    op.create_table(
        "rob_ratings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "review_id",
            sa.Integer(),
            sa.ForeignKey("reviews.id", ondelete="CASCADE", name="fk_rob_ratings_review_id_reviews"),
            nullable=False,
        ),
        sa.Column(
            "study_id",
            sa.Integer(),
            sa.ForeignKey("studies.id", ondelete="CASCADE", name="fk_rob_ratings_study_id_studies"),
            nullable=False,
        ),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_rob_ratings_user_id_users"),
            nullable=False,
        ),
        sa.Column("tool", sa.String(40), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("answers", JSON, nullable=False),
        sa.Column("overall", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_rob_ratings"),
        sa.UniqueConstraint(
            "study_id", "user_id", "tool", "role", name="uq_rob_ratings_study_id_user_id_tool_role"
        ),
    )
    op.create_index("ix_rob_ratings_review_id", "rob_ratings", ["review_id"])
    op.create_index("ix_rob_ratings_study_id", "rob_ratings", ["study_id"])
    op.create_table(
        "grade_judgements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "review_id",
            sa.Integer(),
            sa.ForeignKey(
                "reviews.id", ondelete="CASCADE", name="fk_grade_judgements_review_id_reviews"
            ),
            nullable=False,
        ),
        sa.Column("outcome", sa.String(60), nullable=False),
        sa.Column("domain", sa.String(40), nullable=False),
        sa.Column("proposed", sa.Integer(), nullable=True),
        sa.Column("downgrade", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_grade_judgements_user_id_users"),
            nullable=True,
        ),
        _created(),
        sa.PrimaryKeyConstraint("id", name="pk_grade_judgements"),
    )
    op.create_index("ix_grade_judgements_review_id", "grade_judgements", ["review_id"])


def downgrade() -> None:
    op.drop_table("grade_judgements")
    op.drop_table("rob_ratings")
    op.drop_table("evidence_snapshots")
