"""Alembic environment: always run on a connection handed over by ``Database.migrate``."""

from alembic import context

from dockyard.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `dockyard migrate` (Database.migrate)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
