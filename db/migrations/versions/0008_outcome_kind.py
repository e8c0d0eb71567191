"""extractions of the protocol's outcome: kind "outcome" (was the LDH review's "prevalence")

The pooled outcome's extraction was stored as kind "prevalence", the first review's word; a
review of any proportion keeps its outcome fields under the generic kind "outcome".

Revision ID: 0008_outcome_kind
Revises: 0007_run_engine
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_outcome_kind"
down_revision: str | None = "0007_run_engine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE extractions SET kind = 'outcome' WHERE kind = 'prevalence'")


def downgrade() -> None:
    op.execute("UPDATE extractions SET kind = 'prevalence' WHERE kind = 'outcome'")
