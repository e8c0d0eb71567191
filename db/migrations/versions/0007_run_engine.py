"""run engine: run states under a CHECK constraint, the protocol hash on each run,
one update snapshot per run and trigger

Runs left ``running`` by the old code become ``started`` (the engine resumes them).

Revision ID: 0007_run_engine
Revises: 0006_session_version
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_run_engine"
down_revision: str | None = "0006_session_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "'started', 'harvested', 'screened', 'recomputed', 'succeeded', 'failed', 'held'"


def upgrade() -> None:
    op.execute("UPDATE search_runs SET status = 'started' WHERE status = 'running'")
    with op.batch_alter_table("search_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("protocol_hash", sa.String(length=64), nullable=True))
        batch_op.create_check_constraint("ck_search_runs_status", f"status IN ({STATES})")
    with op.batch_alter_table("estimate_snapshots", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_estimate_snapshots_search_run_id_trigger", ["search_run_id", "trigger"]
        )


def downgrade() -> None:
    with op.batch_alter_table("estimate_snapshots", schema=None) as batch_op:
        batch_op.drop_constraint("uq_estimate_snapshots_search_run_id_trigger", type_="unique")
    with op.batch_alter_table("search_runs", schema=None) as batch_op:
        batch_op.drop_constraint("ck_search_runs_status", type_="check")
        batch_op.drop_column("protocol_hash")
    op.execute("UPDATE search_runs SET status = 'running' WHERE status NOT IN "
               "('succeeded', 'failed', 'harvested')")
