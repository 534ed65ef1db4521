"""64-bit event ids on PostgreSQL (SQLite's rowid is 64-bit already: nothing to do there).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Widen ``event.id`` and its sequence to ``bigint``; forward-only."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("event", "id", type_=sa.BigInteger, existing_nullable=False)
    op.execute("ALTER SEQUENCE event_id_seq AS bigint")
