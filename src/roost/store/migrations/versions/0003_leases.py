"""Run leases, the process groups runs started, and per-run recovery counts.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``run_lease``, ``run_process`` and ``run_recovery``; forward-only."""
    op.create_table(
        "run_lease",
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("owner", sa.String, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
    )
    op.create_index("ix_run_lease_expires", "run_lease", ["expires_at_ms"])
    op.create_table(
        "run_process",
        sa.Column("owner", sa.String, primary_key=True),
        sa.Column("pgid", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("call_id", sa.String, nullable=True),
        sa.Column("start_ticks", sa.String, nullable=True),
        sa.Column("time_created", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_run_process_run", "run_process", ["run_id"])
    op.create_table(
        "run_recovery",
        sa.Column("run_id", sa.String, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
