"""The event log, its projections (session, message, part), session_head and run.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the initial tables; forward-only, never edited after release."""
    op.create_table(
        "event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("session_id", "seq", name="uq_event_session_seq"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "session_head",
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "session",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("parent_id", sa.String, nullable=True),
        sa.Column("directory", sa.String, nullable=False),
        sa.Column("title", sa.String, nullable=False),
        sa.Column("time_created", sa.BigInteger, nullable=False),
        sa.Column("time_updated", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_session_parent", "session", ["parent_id"])
    op.create_index("ix_session_updated", "session", ["time_updated"])
    op.create_table(
        "message",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("role", sa.String, nullable=False),
        sa.Column("time_created", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_message_session", "message", ["session_id", "id"])
    op.create_table(
        "part",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("message_id", sa.String, nullable=False),
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_part_message", "part", ["message_id", "id"])
    op.create_index("ix_part_session", "part", ["session_id"])
    op.create_table(
        "run",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("message_id", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("assistant_message_id", sa.String, nullable=True),
        sa.Column("time_created", sa.BigInteger, nullable=False),
        sa.Column("time_updated", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("message_id", name="uq_run_message"),
    )
    op.create_index("ix_run_session_status", "run", ["session_id", "status"])
    op.create_index("ix_run_status", "run", ["status"])
