"""screening queue index: (review_id, state, stage, priority DESC, id), score included

Replaces ix_review_records_queue (review_id, state, priority): with the stage in the key the
next-record query no longer walks past records queued at the other stage, and the order
(priority DESC, id) comes straight from the index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("review_records", schema=None) as batch_op:
        batch_op.drop_index("ix_review_records_queue")
        batch_op.create_index(
            "ix_review_records_pending",
            ["review_id", "state", "stage", sa.text("priority DESC"), "id"],
            unique=False,
            postgresql_include=["score"],
        )


def downgrade() -> None:
    with op.batch_alter_table("review_records", schema=None) as batch_op:
        batch_op.drop_index("ix_review_records_pending")
        batch_op.create_index(
            "ix_review_records_queue", ["review_id", "state", "priority"], unique=False
        )
