"""Pending permission/question requests and session todo lists (projections).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``request`` and ``todo``; forward-only."""
    op.create_table(
        "request",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("session_id", sa.String, nullable=False),
        sa.Column("message_id", sa.String, nullable=True),
        sa.Column("call_id", sa.String, nullable=True),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("reply", sa.Text, nullable=True),
    )
    op.create_index("ix_request_status", "request", ["status", "kind"])
    op.create_index("ix_request_session", "request", ["session_id"])
    op.create_table(
        "todo",
        sa.Column("session_id", sa.String, primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
    )
