"""A long streamed part keeps its text in the log only: ``part.deltas_to_seq``.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``part.deltas_to_seq``; forward-only. Existing rows get NULL: their
    deltas, if any, run to the end of the log, as before."""
    op.add_column("part", sa.Column("deltas_to_seq", sa.Integer, nullable=True))
