"""Alembic environment: migrations always run on a connection handed over by ``database.py``."""

from alembic import context

from roost.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
