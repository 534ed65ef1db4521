"""Streamed text stays in the log until its part is updated whole: ``part.deltas_from_seq``.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``part.deltas_from_seq``; forward-only. Existing rows get NULL: their
    ``data`` already holds every delta folded so far."""
    op.add_column("part", sa.Column("deltas_from_seq", sa.Integer, nullable=True))
