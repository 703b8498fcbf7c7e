"""Alembic's environment: migrations run only on the connection that signaling.store.migrate hands
over (the server's own engine, SQLite or PostgreSQL), never from an URL in a config file."""

from __future__ import annotations

from alembic import context

from signaling.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations through signaling.store.migrate (urok serve does)")
# batch mode: SQLite cannot ALTER most things, Alembic copies the table instead
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
