"""outbox claims: a row being sent is marked ``sending`` with a claim token and time

A sender claims a row in a short transaction, sends it over SMTP outside any transaction, then
marks it sent (or releases it) in another; a claim older than the sender's timeout is taken again.

Revision ID: 0009_outbox_claim
Revises: 0008_outcome_kind
Create Date: 2026-12-02 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_outbox_claim"
down_revision: str | None = "0008_outcome_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox_emails", sa.Column("claim_token", sa.String(length=32), nullable=True))
    op.add_column(
        "outbox_emails", sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.execute("UPDATE outbox_emails SET status = 'pending' WHERE status = 'sending'")
    with op.batch_alter_table("outbox_emails") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claim_token")
